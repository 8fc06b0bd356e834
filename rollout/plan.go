package rollout

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid marks a plan, threshold or record that cannot be used.
var ErrInvalid = errors.New("invalid rollout")

// Plan is how the alias moves: the percentages of traffic the new version
// gets at each step (ascending, the last one 100) and how long each step
// below 100 is watched before the next.
type Plan struct {
	Steps    []int
	Interval time.Duration
}

// strategies are CodeDeploy's predefined Lambda deployment configurations.
var strategies = map[string]Plan{}

func init() {
	for _, m := range []int{5, 10, 15, 30} {
		strategies[strings.ToLower(fmt.Sprintf("Canary10Percent%dMinutes", m))] = Plan{[]int{10, 100}, time.Duration(m) * time.Minute}
	}
	linear := []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	for _, m := range []int{1, 2, 3, 10} {
		unit := "Minutes"
		if m == 1 {
			unit = "Minute"
		}
		strategies[strings.ToLower(fmt.Sprintf("Linear10PercentEvery%d%s", m, unit))] = Plan{linear, time.Duration(m) * time.Minute}
	}
	strategies["allatonce"] = Plan{[]int{100}, 0}
}

// StrategyNames lists the predefined configurations as CodeDeploy spells them.
func StrategyNames() []string {
	return []string{"Canary10Percent5Minutes", "Canary10Percent10Minutes", "Canary10Percent15Minutes",
		"Canary10Percent30Minutes", "Linear10PercentEvery1Minute", "Linear10PercentEvery2Minutes",
		"Linear10PercentEvery3Minutes", "Linear10PercentEvery10Minutes", "AllAtOnce"}
}

// ParseStrategy returns the plan of a CodeDeploy configuration name, in any
// letter case, with or without CodeDeploy's "CodeDeployDefault.Lambda"
// prefix.
func ParseStrategy(name string) (Plan, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "codedeploydefault.lambda")
	p, ok := strategies[n]
	if !ok {
		return Plan{}, fmt.Errorf("unknown strategy %q (one of %s, or --steps with --interval): %w",
			name, strings.Join(StrategyNames(), ", "), ErrInvalid)
	}
	p.Steps = append([]int(nil), p.Steps...)
	return p, nil
}

// ParseSteps reads custom steps, "10,50,100", with the interval each step
// below 100 is watched.
func ParseSteps(steps string, interval time.Duration) (Plan, error) {
	var p Plan
	for _, f := range strings.Split(steps, ",") {
		f = strings.TrimSuffix(strings.TrimSpace(f), "%")
		n, err := strconv.Atoi(f)
		if err != nil {
			return Plan{}, fmt.Errorf("steps %q: %q is not a whole percentage: %w", steps, f, ErrInvalid)
		}
		p.Steps = append(p.Steps, n)
	}
	p.Interval = interval
	if err := p.Validate(); err != nil {
		return Plan{}, err
	}
	return p, nil
}

// Validate checks the steps rise strictly within 1..100 and end at 100, and
// that a plan with steps below 100 has an interval to watch them for.
func (p Plan) Validate() error {
	if len(p.Steps) == 0 {
		return fmt.Errorf("no steps: %w", ErrInvalid)
	}
	prev := 0
	for _, s := range p.Steps {
		if s < 1 || s > 100 {
			return fmt.Errorf("step %d%% is outside 1..100: %w", s, ErrInvalid)
		}
		if s <= prev {
			return fmt.Errorf("steps must rise: %d%% after %d%%: %w", s, prev, ErrInvalid)
		}
		prev = s
	}
	if prev != 100 {
		return fmt.Errorf("the last step is %d%%; a rollout ends with the new version at 100%%: %w", prev, ErrInvalid)
	}
	switch {
	case p.Interval < 0:
		return fmt.Errorf("interval %s is negative: %w", p.Interval, ErrInvalid)
	case len(p.Steps) > 1 && p.Interval == 0:
		return fmt.Errorf("steps below 100%% need an interval to watch them for: %w", ErrInvalid)
	}
	return nil
}

// Duration is the plan's whole length: every step below 100 watched for
// the interval.
func (p Plan) Duration() time.Duration {
	return time.Duration(len(p.Steps)-1) * p.Interval
}

// Alias is an alias's definition: its version, the weights of additional
// versions, its description; RevisionID is the revision the gateway gave
// it (not part of the definition).
type Alias struct {
	Version     string             `json:"Version"`
	Weights     map[string]float64 `json:"Weights,omitempty"`
	Description string             `json:"Description,omitempty"`
	RevisionID  string             `json:"-"`
}

// Same reports whether a and b define the same alias (revisions aside).
func (a Alias) Same(b Alias) bool {
	if a.Version != b.Version || a.Description != b.Description || len(a.Weights) != len(b.Weights) {
		return false
	}
	for v, w := range a.Weights {
		if bw, ok := b.Weights[v]; !ok || bw != w {
			return false
		}
	}
	return true
}

// Weight is the alias weight of a step's percentage.
func Weight(percent int) float64 { return float64(percent) / 100 }

// AliasAt is the alias a step writes, starting from original and moving
// to version to: below 100% the alias stays on the original version and
// to gets the step's weight; at 100% the alias is on to with no weights.
func AliasAt(original Alias, to string, percent int) Alias {
	a := Alias{Version: original.Version, Description: original.Description}
	if percent >= 100 {
		a.Version = to
		return a
	}
	a.Weights = map[string]float64{to: Weight(percent)}
	return a
}

// ParseRate reads an error-rate threshold: a fraction ("0.05") or a
// percentage with its sign ("5%"). The result is a fraction in [0,1].
func ParseRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("error rate %q: give a fraction (0.05) or a percentage (5%%): %w", s, ErrInvalid)
	}
	if pct {
		f /= 100
	}
	if f < 0 || f > 1 || f != f {
		return 0, fmt.Errorf("error rate %q is outside 0..1: give a fraction (0.05) or a percentage (5%%): %w", s, ErrInvalid)
	}
	return f, nil
}
