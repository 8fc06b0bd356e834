package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Names in the autoscaler agent config and in the job's scaling policy.
//
// Agent config:
//
//	apm "nimbus-apm"         { driver = "nimbus-autoscaler-apm" }
//	strategy "nimbus-target" { driver = "nimbus-autoscaler-strategy" }
//
// Job (provisioned group):
//
//	scaling {
//	  min = <floor>  max = <ceiling>
//	  policy {
//	    check "utilization" {
//	      source = "nimbus-apm"
//	      query  = "<function>/<version>"
//	      strategy "nimbus-target" { target = 0.7  min = <floor>  max = <ceiling>  schedules = "<json>" }
//	    }
//	  }
//	}
const (
	// APMDriver and StrategyDriver are the executables' names in the
	// agent's plugin_dir; each plugin reports its own as PluginInfo name.
	APMDriver      = "nimbus-autoscaler-apm"
	StrategyDriver = "nimbus-autoscaler-strategy"
	// APMName is the agent's apm block label, used as the check's source.
	APMName = "nimbus-apm"
	// StrategyName is the agent's strategy block label, used as the
	// check's strategy block label.
	StrategyName = "nimbus-target"
	// CheckName is the check block label the compiler uses.
	CheckName = "utilization"
	// Group is the task group the policy scales.
	Group = "provisioned"
)

// Strategy config keys (the `strategy "nimbus-target" { … }` block). The
// autoscaler hands every value over as a string formatted with Go's %v, so
// numbers may arrive as "0.7", "3" or "1e+06"; the strategy parses them as
// floats and rejects any key not listed here.
const (
	// KeyTarget is the target utilisation, a number in (0, 1].
	// Default DefaultTarget.
	KeyTarget = "target"
	// KeyMin is the provisioned floor: a whole number >= 0. The strategy
	// cannot see the policy's own min, and the autoscaler does not enforce
	// that min unless a strategy asks for a change, so the compiler writes
	// the same value here. Default 0.
	KeyMin = "min"
	// KeyMax is the ceiling (reserved concurrency, or the policy's max): a
	// whole number >= 0. Absent means no ceiling beyond the policy's max.
	KeyMax = "max"
	// KeySchedules holds the scheduled windows as a JSON array of Schedule
	// (the JSON encoding of specs' schedules has exactly this shape).
	// Absent or "" or "[]" means none.
	KeySchedules = "schedules"
	// KeyTimezone is the IANA zone for schedules that name none.
	// Default "UTC".
	KeyTimezone = "timezone"
	// KeyScaleInThreshold: scale in only when every point of the query
	// window is below target × this factor, in (0, 1]. Default
	// DefaultScaleInThreshold (as AWS target tracking does).
	KeyScaleInThreshold = "scale_in_threshold"
	// KeyMaxScaleIn limits how many instances one scale-in removes, a
	// whole number >= 0; 0 means no limit. Default 0.
	KeyMaxScaleIn = "max_scale_in"
)

// StrategyKeys lists every key the strategy accepts.
var StrategyKeys = []string{KeyTarget, KeyMin, KeyMax, KeySchedules, KeyTimezone, KeyScaleInThreshold, KeyMaxScaleIn}

// Defaults.
const (
	DefaultTarget           = 0.7
	DefaultScaleInThreshold = 0.9
	DefaultTimezone         = "UTC"
	DefaultScheduleDuration = "1h"
)

// Schedule is one scheduled window: from each start matched by Cron, for
// Duration, the floor is at least Min. Its JSON form matches specs.Schedule.
type Schedule struct {
	Name string `json:"name"`
	// Cron is the window start: 5 fields (minute hour day-of-month month
	// day-of-week) or 6 with a trailing year, evaluated in Timezone.
	Cron string `json:"cron"`
	// Duration is a Go duration ("90m", "8h"). Default DefaultScheduleDuration.
	Duration string `json:"duration"`
	// Timezone is an IANA zone name. Default: the strategy's KeyTimezone.
	Timezone string `json:"timezone,omitempty"`
	// Min is the floor inside the window.
	Min int `json:"min"`
}

// EncodeSchedules renders schedules as the KeySchedules value.
func EncodeSchedules(s []Schedule) (string, error) {
	if len(s) == 0 {
		return "", nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encoding schedules: %w", err)
	}
	return string(b), nil
}

// DecodeSchedules parses a KeySchedules value. Unknown fields are errors so
// that a misspelt field cannot silently drop a window.
func DecodeSchedules(v string) ([]Schedule, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.DisallowUnknownFields()
	var s []Schedule
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding schedules (want a JSON array of {name, cron, duration, timezone, min}): %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding schedules: trailing data after the JSON array")
	}
	return s, nil
}

// Metric selects what the APM answers for a query.
type Metric string

const (
	// MetricUtilization (the default) is in-flight invocations on
	// provisioned environments divided by provisioned environments:
	// normally in [0, 1] (in-flight is summed over gateways scraped a
	// moment apart, so it may briefly read above 1); 0 when there are no
	// provisioned environments. The nimbus-target strategy tracks this
	// metric and rejects the other two.
	MetricUtilization Metric = "utilization"
	// MetricInFlight is the number of invocations in flight on
	// provisioned environments, summed over gateways.
	MetricInFlight Metric = "in_flight"
	// MetricEnvironments is the number of provisioned environments
	// available (the maximum any gateway sees).
	MetricEnvironments Metric = "environments"
)

// Query is a parsed check query: `[<metric>:]<function>/<version>`, for
// example `orders/3`, `orders/$LATEST` or `in_flight:orders/3`.
type Query struct {
	Metric   Metric
	Function string
	Version  string
}

// ErrBadQuery is wrapped by every query parse error.
var ErrBadQuery = errors.New("bad query")

// String renders q in canonical form (the metric prefix only when it is not
// the default).
func (q Query) String() string {
	s := q.Function + "/" + q.Version
	if q.Metric != "" && q.Metric != MetricUtilization {
		s = string(q.Metric) + ":" + s
	}
	return s
}

// ParseQuery parses `[<metric>:]<function>/<version>`.
func ParseQuery(s string) (Query, error) {
	q := Query{Metric: MetricUtilization}
	rest := strings.TrimSpace(s)
	if m, r, ok := strings.Cut(rest, ":"); ok {
		switch Metric(m) {
		case MetricUtilization, MetricInFlight, MetricEnvironments:
			q.Metric = Metric(m)
		default:
			return Query{}, fmt.Errorf("%w %q: unknown metric %q (want %s, %s or %s)", ErrBadQuery, s, m, MetricUtilization, MetricInFlight, MetricEnvironments)
		}
		rest = r
	}
	fn, ver, ok := strings.Cut(rest, "/")
	if !ok || fn == "" || ver == "" || strings.Contains(ver, "/") {
		return Query{}, fmt.Errorf("%w %q: want [<metric>:]<function>/<version>, e.g. orders/3", ErrBadQuery, s)
	}
	q.Function, q.Version = fn, ver
	return q, nil
}
