package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/autoscaler/policy"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

// epsilon absorbs float noise so that count × u / target landing exactly on
// a whole number (10 × 0.7 / 0.7) does not round up to one more.
const epsilon = 1e-9

// Meta keys the strategy adds to its action (they reach the target's Scale
// call and Nomad's scaling events).
const (
	MetaUtilization = "nimbus.utilization"
	MetaTarget      = "nimbus.target"
	MetaFloor       = "nimbus.floor"
	MetaSchedule    = "nimbus.schedule"
)

// Strategy is the nimbus-target strategy plugin. Its methods are safe for
// concurrent use: it holds no per-policy state; each Run parses its check's
// config.
type Strategy struct {
	logger hclog.Logger
	now    func() time.Time
}

// Option configures a Strategy.
type Option func(*Strategy)

// WithClock replaces time.Now (tests inject a fixed clock for schedules).
func WithClock(now func() time.Time) Option { return func(s *Strategy) { s.now = now } }

// New returns the strategy, logging through logger.
func New(logger hclog.Logger, opts ...Option) *Strategy {
	s := &Strategy{logger: logger, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// PluginInfo reports the driver name the agent config uses.
func (s *Strategy) PluginInfo() sdk.Info {
	return sdk.Info{Name: policy.StrategyDriver, Type: sdk.TypeStrategy}
}

// SetConfig accepts the agent block's config. The strategy has no agent
// level settings (everything is per check); the keys the agent adds on its
// own (nomad_*) are ignored, and so is everything else, logged once per call.
func (s *Strategy) SetConfig(_ context.Context, config map[string]string) error {
	for k := range config {
		if !strings.HasPrefix(k, "nomad_") {
			s.logger.Warn("ignoring agent config key; nimbus-target is configured per check", "key", k)
		}
	}
	return nil
}

// Run evaluates one check.
func (s *Strategy) Run(_ context.Context, req sdk.RunRequest) (sdk.Action, error) {
	cfg, err := ParseConfig(req.Check.StrategyConfig)
	if err != nil {
		return sdk.Action{}, fmt.Errorf("check %q: %w", req.Check.Name, err)
	}
	// A query in our APM's syntax that selects a raw count would be read as
	// a utilisation and scale wildly; queries for other APMs pass through.
	if q, err := policy.ParseQuery(req.Check.Query); err == nil && q.Metric != policy.MetricUtilization {
		return sdk.Action{}, fmt.Errorf("check %q: %w: query %q selects %s, but %s tracks %s",
			req.Check.Name, ErrBadInput, req.Check.Query, q.Metric, policy.StrategyName, policy.MetricUtilization)
	}
	act, err := Decide(cfg, req.Metrics, req.Count, s.now())
	if err != nil {
		return sdk.Action{}, fmt.Errorf("check %q: %w", req.Check.Name, err)
	}
	logger := s.logger.With("check", req.Check.Name, "query", req.Check.Query)
	if q, err := policy.ParseQuery(req.Check.Query); err == nil {
		logger = logger.With("function", q.Function, "version", q.Version)
	}
	logger.Debug("evaluated", "count", req.Count, "new_count", act.Count, "direction", act.Direction.String(), "reason", act.Reason)
	return act, nil
}

// ErrBadInput is wrapped when the count or a metric cannot be used.
var ErrBadInput = errors.New("invalid evaluation input")

// Decide computes the action for count current instances and the check's
// points (any order) at now. The returned direction is always explicit.
func Decide(cfg Config, metrics []sdk.Metric, count int64, now time.Time) (sdk.Action, error) {
	if count < 0 {
		return sdk.Action{}, fmt.Errorf("%w: current count %d is negative", ErrBadInput, count)
	}
	for _, m := range metrics {
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || m.Value < 0 {
			return sdk.Action{}, fmt.Errorf("%w: metric value %v at %s is not a utilisation", ErrBadInput, m.Value, m.Timestamp.UTC().Format(time.RFC3339))
		}
	}

	floor, floorWhy := cfg.Min, "min"
	meta := map[string]any{MetaTarget: cfg.Target}
	for _, s := range cfg.Schedules {
		if start, open := s.OpenAt(now); open && s.Min > floor {
			floor = s.Min
			floorWhy = fmt.Sprintf("schedule %q (opened %s)", s.Name, start.Format(time.RFC3339))
			meta[MetaSchedule] = s.Name
		}
	}
	if cfg.HasMax && floor > cfg.Max {
		floor, floorWhy = cfg.Max, "max (a schedule asked for more)"
	}
	meta[MetaFloor] = floor

	want, why := track(cfg, metrics, count, meta)
	switch {
	case want < floor:
		want, why = floor, fmt.Sprintf("%s; raised to the provisioned floor %d from %s", why, floor, floorWhy)
	case cfg.HasMax && want > cfg.Max:
		want, why = cfg.Max, fmt.Sprintf("%s; capped at max %d", why, cfg.Max)
	}

	act := sdk.Action{Count: want, Direction: sdk.None, Meta: meta}
	switch {
	case want > count:
		act.Direction = sdk.Up
		act.Reason = fmt.Sprintf("scaling up from %d to %d: %s", count, want, why)
	case want < count:
		act.Direction = sdk.Down
		act.Reason = fmt.Sprintf("scaling down from %d to %d: %s", count, want, why)
	default:
		act.Reason = fmt.Sprintf("keeping %d: %s", count, why)
	}
	return act, nil
}

// track is target tracking alone, before floor and ceiling.
func track(cfg Config, metrics []sdk.Metric, count int64, meta map[string]any) (int64, string) {
	if len(metrics) == 0 {
		return count, "no utilisation points"
	}
	if count == 0 {
		return 0, "no provisioned instances to measure"
	}
	newest, highest, allLow := metrics[0], metrics[0].Value, true
	inThreshold := cfg.Target * cfg.ScaleInThreshold
	for _, m := range metrics {
		if m.Timestamp.After(newest.Timestamp) {
			newest = m
		}
		highest = math.Max(highest, m.Value)
		if m.Value >= inThreshold-epsilon {
			allLow = false
		}
	}
	u := newest.Value
	meta[MetaUtilization] = u
	switch {
	case u > cfg.Target+epsilon:
		want := ceilCount(float64(count) * u / cfg.Target)
		return want, fmt.Sprintf("utilisation %.2f above target %.2f", u, cfg.Target)
	case allLow:
		want := ceilCount(float64(count) * highest / cfg.Target)
		why := fmt.Sprintf("utilisation at most %.2f over %d points, below %.2f (%.0f%% of target %.2f)",
			highest, len(metrics), inThreshold, cfg.ScaleInThreshold*100, cfg.Target)
		if cfg.MaxScaleIn > 0 && count-want > cfg.MaxScaleIn {
			want = count - cfg.MaxScaleIn
			why += fmt.Sprintf(", step limited to %d", cfg.MaxScaleIn)
		}
		return want, why
	case u < inThreshold-epsilon:
		return count, fmt.Sprintf("utilisation %.2f below %.2f, but the window peaked at %.2f; not scaling in yet", u, inThreshold, highest)
	default:
		return count, fmt.Sprintf("utilisation %.2f within [%.2f, %.2f]", u, inThreshold, cfg.Target)
	}
}

func ceilCount(f float64) int64 {
	c := math.Ceil(f - epsilon)
	if c > maxCount {
		return maxCount
	}
	return int64(c)
}
