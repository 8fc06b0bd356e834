package sdk

import (
	"fmt"
	"time"
)

// PluginType is the role a plugin plays for the autoscaler.
type PluginType string

const (
	TypeAPM      PluginType = "apm"
	TypeStrategy PluginType = "strategy"
)

// Info is what a plugin reports about itself. The autoscaler requires Name
// to equal the agent block's driver (the executable's name) and Type to equal
// the block's type.
type Info struct {
	Name string
	Type PluginType
}

// TimeRange is the window a query covers.
type TimeRange struct {
	From, To time.Time
}

// Metric is one time-stamped value.
type Metric struct {
	Timestamp time.Time
	Value     float64
}

// Direction of a scaling action. The Go zero value is None; on the wire
// None has its own non-zero number, which autoscaler/plugin always sets.
type Direction int8

const (
	Down Direction = -1
	None Direction = 0
	Up   Direction = 1
)

func (d Direction) String() string {
	switch d {
	case Down:
		return "down"
	case None:
		return "none"
	case Up:
		return "up"
	}
	return fmt.Sprintf("direction(%d)", int8(d))
}

// Action is a strategy's answer: the count it wants and why.
type Action struct {
	Count     int64
	Reason    string
	Error     bool
	Direction Direction
	// Meta travels as a JSON object; values come back as JSON types
	// (numbers as float64).
	Meta map[string]any
}

// Check is the part of a policy check that reaches a strategy.
type Check struct {
	Name        string
	Source      string
	Query       string
	QueryWindow time.Duration
	// Strategy is the check's strategy block label and its config, every
	// value a string.
	Strategy       string
	StrategyConfig map[string]string
}

// RunRequest is one strategy evaluation: the check, the APM's points
// (sorted by time, oldest first) and the target's current count.
type RunRequest struct {
	Check   Check
	Metrics []Metric
	Count   int64
}
