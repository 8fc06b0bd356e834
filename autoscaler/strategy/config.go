package strategy

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // schedules name IANA zones; do not depend on the host's zoneinfo

	"github.com/hashicorp/cronexpr"

	"github.com/nimbus-fn/nimbus/autoscaler/policy"
)

// ErrBadConfig is wrapped by every strategy config error.
var ErrBadConfig = errors.New("invalid strategy config")

// ConfigError names the key, the value as received and what is wrong.
type ConfigError struct {
	Key, Value, Problem string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("strategy config %s = %q: %s", e.Key, e.Value, e.Problem)
}

func (e *ConfigError) Unwrap() error { return ErrBadConfig }

// Config is one check's strategy block, parsed.
type Config struct {
	// Target utilisation in (0, 1]. Default policy.DefaultTarget (0.7).
	Target float64
	// Min is the provisioned floor. Default 0.
	Min int64
	// Max is the ceiling when HasMax; reserved concurrency or the policy's max.
	Max    int64
	HasMax bool
	// ScaleInThreshold in (0, 1]: scale in below Target × this. Default 0.9.
	ScaleInThreshold float64
	// MaxScaleIn caps instances removed per action; 0 = no cap. Default 0.
	MaxScaleIn int64
	// Location is the default zone for schedules. Default UTC.
	Location *time.Location
	// Schedules raise the floor while open.
	Schedules []Schedule
}

// Schedule is a parsed scheduled window.
type Schedule struct {
	Name     string
	Cron     string
	Duration time.Duration
	Location *time.Location
	Min      int64
	expr     *cronexpr.Expression
}

// OpenAt reports whether a window opened by a cron start in (now-Duration, now]
// is still open at now, and when it opened.
func (s Schedule) OpenAt(now time.Time) (time.Time, bool) {
	local := now.In(s.Location)
	start := s.expr.Next(local.Add(-s.Duration))
	if start.IsZero() || start.After(local) {
		return time.Time{}, false
	}
	return start, true
}

// ParseConfig parses and validates a strategy block's config. Every problem
// is reported (joined), each naming its key.
func ParseConfig(m map[string]string) (Config, error) {
	cfg := Config{Target: policy.DefaultTarget, ScaleInThreshold: policy.DefaultScaleInThreshold, Location: time.UTC}
	var errs []error
	bad := func(key, problem string) {
		errs = append(errs, &ConfigError{Key: key, Value: m[key], Problem: problem})
	}

	var unknown []string
	for k := range m {
		if !known(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		bad(k, "unknown key (known: "+strings.Join(policy.StrategyKeys, ", ")+")")
	}

	if v, ok := m[policy.KeyTarget]; ok {
		f, err := parseNumber(v)
		switch {
		case err != nil:
			bad(policy.KeyTarget, err.Error())
		case f <= 0 || f > 1:
			bad(policy.KeyTarget, "want a utilisation in (0, 1], e.g. 0.7")
		default:
			cfg.Target = f
		}
	}
	if v, ok := m[policy.KeyScaleInThreshold]; ok {
		f, err := parseNumber(v)
		switch {
		case err != nil:
			bad(policy.KeyScaleInThreshold, err.Error())
		case f <= 0 || f > 1:
			bad(policy.KeyScaleInThreshold, "want a fraction of target in (0, 1], e.g. 0.9")
		default:
			cfg.ScaleInThreshold = f
		}
	}
	if v, ok := m[policy.KeyMin]; ok {
		n, err := parseCount(v)
		if err != nil {
			bad(policy.KeyMin, err.Error())
		}
		cfg.Min = n
	}
	if v, ok := m[policy.KeyMax]; ok {
		n, err := parseCount(v)
		if err != nil {
			bad(policy.KeyMax, err.Error())
		} else {
			cfg.Max, cfg.HasMax = n, true
		}
	}
	if v, ok := m[policy.KeyMaxScaleIn]; ok {
		n, err := parseCount(v)
		if err != nil {
			bad(policy.KeyMaxScaleIn, err.Error())
		}
		cfg.MaxScaleIn = n
	}
	if cfg.HasMax && cfg.Min > cfg.Max {
		bad(policy.KeyMin, fmt.Sprintf("floor above max %d", cfg.Max))
	}
	if v, ok := m[policy.KeyTimezone]; ok && strings.TrimSpace(v) != "" {
		loc, err := time.LoadLocation(strings.TrimSpace(v))
		if err != nil {
			bad(policy.KeyTimezone, "unknown IANA time zone")
		} else {
			cfg.Location = loc
		}
	}
	if v, ok := m[policy.KeySchedules]; ok {
		scheds, err := policy.DecodeSchedules(v)
		if err != nil {
			bad(policy.KeySchedules, err.Error())
		}
		for i, s := range scheds {
			ps, problems := parseSchedule(s, cfg.Location)
			for _, p := range problems {
				bad(policy.KeySchedules, fmt.Sprintf("schedule %d (%q): %s", i, s.Name, p))
			}
			if len(problems) == 0 {
				cfg.Schedules = append(cfg.Schedules, ps)
			}
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

func parseSchedule(s policy.Schedule, defaultLoc *time.Location) (Schedule, []string) {
	var problems []string
	out := Schedule{Name: s.Name, Cron: s.Cron, Location: defaultLoc, Min: int64(s.Min)}
	if n := len(strings.Fields(s.Cron)); n != 5 && n != 6 {
		problems = append(problems, fmt.Sprintf("cron %q has %d fields, want 5 (minute hour day month weekday) or 6 (… year)", s.Cron, n))
	} else if expr, err := cronexpr.Parse(s.Cron); err != nil {
		problems = append(problems, fmt.Sprintf("cron %q: %v", s.Cron, err))
	} else {
		out.expr = expr
	}
	d := s.Duration
	if d == "" {
		d = policy.DefaultScheduleDuration
	}
	if dur, err := time.ParseDuration(d); err != nil || dur <= 0 {
		problems = append(problems, fmt.Sprintf("duration %q: want a positive Go duration such as 90m or 8h", s.Duration))
	} else {
		out.Duration = dur
	}
	if s.Timezone != "" {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			problems = append(problems, fmt.Sprintf("timezone %q: unknown IANA time zone", s.Timezone))
		} else {
			out.Location = loc
		}
	}
	if s.Min < 0 {
		problems = append(problems, fmt.Sprintf("min %d: want a count >= 0", s.Min))
	}
	return out, problems
}

func known(k string) bool {
	for _, s := range policy.StrategyKeys {
		if k == s {
			return true
		}
	}
	return false
}

// parseNumber accepts anything Go's %v prints for a number, including the
// exponent form ("1e+06") used for large values.
func parseNumber(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a number")
	}
	return f, nil
}

// maxCount keeps counts exactly representable as float64 and int64.
const maxCount = 1 << 50

func parseCount(v string) (int64, error) {
	f, err := parseNumber(v)
	if err != nil {
		return 0, err
	}
	if f < 0 || f != math.Trunc(f) || f > maxCount {
		return 0, errors.New("want a whole number >= 0")
	}
	return int64(f), nil
}
