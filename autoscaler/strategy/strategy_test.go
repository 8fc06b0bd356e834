package strategy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/autoscaler/policy"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a Wednesday

// series returns points 10 s apart ending at t0, oldest first.
func series(vals ...float64) []sdk.Metric {
	out := make([]sdk.Metric, len(vals))
	for i, v := range vals {
		out[i] = sdk.Metric{Timestamp: t0.Add(time.Duration(i-len(vals)+1) * 10 * time.Second), Value: v}
	}
	return out
}

func mustConfig(t *testing.T, m map[string]string) Config {
	t.Helper()
	cfg, err := ParseConfig(m)
	if err != nil {
		t.Fatalf("ParseConfig(%v): %v", m, err)
	}
	return cfg
}

func berlin(t *testing.T, day, hour, minute int) time.Time {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2026, 11, day, hour, minute, 0, 0, loc)
}

func TestDecide(t *testing.T) {
	business := `[{"name":"business-hours","cron":"0 8 * * 1-5","duration":"10h","timezone":"Europe/Berlin","min":10}]`
	cases := []struct {
		name    string
		config  map[string]string
		metrics []sdk.Metric
		count   int64
		now     time.Time // zero: t0
		want    int64
		dir     sdk.Direction
		reason  string
	}{
		{name: "at target keeps", metrics: series(0.7, 0.7, 0.7), count: 4, want: 4, dir: sdk.None, reason: "within"},
		{name: "exactly at target is not rounded up", metrics: series(0.7), count: 10, want: 10, dir: sdk.None},
		{name: "saturated scales out by 1/target", metrics: series(1, 1, 1), count: 4, want: 6, dir: sdk.Up, reason: "above target 0.70"},
		{name: "scale out follows the newest point", metrics: series(0.2, 0.2, 0.9), count: 7, want: 9, dir: sdk.Up},
		{name: "newest point found by timestamp, not position",
			metrics: []sdk.Metric{{Timestamp: t0, Value: 0.9}, {Timestamp: t0.Add(-20 * time.Second), Value: 0.1}, {Timestamp: t0.Add(-10 * time.Second), Value: 0.1}},
			count:   7, want: 9, dir: sdk.Up},
		{name: "custom target", config: map[string]string{"target": "0.5"}, metrics: series(0.75), count: 4, want: 6, dir: sdk.Up},
		{name: "scale in when the whole window is low", metrics: series(0.3, 0.35, 0.3), count: 10, want: 5, dir: sdk.Down, reason: "at most 0.35 over 3 points"},
		{name: "no scale in while the window peaked above threshold", metrics: series(0.65, 0.3, 0.3), count: 10, want: 10, dir: sdk.None, reason: "peaked at 0.65"},
		{name: "between threshold and target keeps", metrics: series(0.65, 0.66), count: 10, want: 10, dir: sdk.None},
		{name: "scale in step limit", config: map[string]string{"max_scale_in": "2"}, metrics: series(0.1, 0.1), count: 10, want: 8, dir: sdk.Down, reason: "step limited to 2"},
		{name: "scale in threshold 1 allows scale in just under target", config: map[string]string{"scale_in_threshold": "1"}, metrics: series(0.6), count: 10, want: 9, dir: sdk.Down},
		{name: "scale in threshold 1 keeps when rounding returns the count", config: map[string]string{"scale_in_threshold": "1"}, metrics: series(0.68), count: 10, want: 10, dir: sdk.None},
		{name: "idle scales in to the floor", config: map[string]string{"min": "3"}, metrics: series(0, 0, 0), count: 8, want: 3, dir: sdk.Down, reason: "provisioned floor 3 from min"},
		{name: "below the floor scales up even when idle", config: map[string]string{"min": "3"}, metrics: series(0), count: 1, want: 3, dir: sdk.Up, reason: "raised to the provisioned floor 3"},
		{name: "count zero without floor stays", metrics: series(0), count: 0, want: 0, dir: sdk.None, reason: "no provisioned instances"},
		{name: "count zero with floor scales up", config: map[string]string{"min": "2"}, metrics: series(0), count: 0, want: 2, dir: sdk.Up},
		{name: "ceiling caps scale out", config: map[string]string{"max": "12"}, metrics: series(1), count: 10, want: 12, dir: sdk.Up, reason: "capped at max 12"},
		{name: "above the ceiling scales down", config: map[string]string{"max": "12"}, metrics: series(0.7), count: 20, want: 12, dir: sdk.Down, reason: "capped at max 12"},
		{name: "at the ceiling keeps", config: map[string]string{"max": "12"}, metrics: series(1), count: 12, want: 12, dir: sdk.None},
		{name: "no points keeps the count within bounds", config: map[string]string{"min": "2"}, metrics: nil, count: 5, want: 5, dir: sdk.None, reason: "no utilisation points"},
		{name: "no points still enforces the floor", config: map[string]string{"min": "2"}, metrics: nil, count: 1, want: 2, dir: sdk.Up},
		{name: "schedule open raises the floor", config: map[string]string{"min": "3", "schedules": business}, metrics: series(0.1), count: 3, now: berlin(t, 25, 9, 0), want: 10, dir: sdk.Up, reason: `schedule "business-hours"`},
		{name: "schedule opens at its cron start", config: map[string]string{"min": "3", "schedules": business}, metrics: series(0.1), count: 3, now: berlin(t, 25, 8, 0), want: 10, dir: sdk.Up},
		{name: "schedule closes after its duration", config: map[string]string{"min": "3", "schedules": business}, metrics: series(0.1), count: 10, now: berlin(t, 25, 18, 0), want: 3, dir: sdk.Down},
		{name: "schedule not open on weekends", config: map[string]string{"min": "3", "schedules": business}, metrics: series(0.1), count: 3, now: berlin(t, 28, 9, 0), want: 3, dir: sdk.None},
		{name: "schedule before start", config: map[string]string{"min": "3", "schedules": business}, metrics: series(0.1), count: 3, now: berlin(t, 25, 7, 59), want: 3, dir: sdk.None},
		{name: "schedule window does not lower tracking", config: map[string]string{"schedules": business}, metrics: series(1), count: 10, now: berlin(t, 25, 9, 0), want: 15, dir: sdk.Up},
		{name: "window across midnight", config: map[string]string{"schedules": `[{"name":"night","cron":"0 22 * * *","duration":"4h","min":5}]`},
			metrics: series(0), count: 0, now: time.Date(2026, 11, 26, 1, 30, 0, 0, time.UTC), want: 5, dir: sdk.Up},
		{name: "default duration is one hour", config: map[string]string{"schedules": `[{"name":"noon","cron":"0 12 * * *","min":5}]`},
			metrics: series(0), count: 5, now: t0.Add(61 * time.Minute), want: 0, dir: sdk.Down},
		{name: "strategy timezone applies to schedules without one", config: map[string]string{"timezone": "America/New_York", "schedules": `[{"name":"ny","cron":"0 9 * * *","duration":"1h","min":4}]`},
			metrics: series(0), count: 0, now: time.Date(2026, 11, 25, 14, 30, 0, 0, time.UTC), want: 4, dir: sdk.Up},
		{name: "highest open schedule wins", config: map[string]string{"min": "1", "schedules": `[{"name":"a","cron":"0 * * * *","duration":"1h","min":4},{"name":"b","cron":"0 12 * * *","duration":"2h","min":7}]`},
			metrics: series(0.5), count: 1, want: 7, dir: sdk.Up, reason: `schedule "b"`},
		{name: "max wins over a schedule", config: map[string]string{"max": "6", "schedules": business}, metrics: series(0.5), count: 2, now: berlin(t, 25, 9, 0), want: 6, dir: sdk.Up, reason: "from max"},
		{name: "large numbers in exponent form", config: map[string]string{"min": "1e+06", "max": "2e+06"}, metrics: series(0.5), count: 10, want: 1000000, dir: sdk.Up},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustConfig(t, c.config)
			now := c.now
			if now.IsZero() {
				now = t0
			}
			act, err := Decide(cfg, c.metrics, c.count, now)
			if err != nil {
				t.Fatal(err)
			}
			if act.Count != c.want || act.Direction != c.dir {
				t.Errorf("got count %d direction %v (%s); want %d %v", act.Count, act.Direction, act.Reason, c.want, c.dir)
			}
			if !strings.Contains(act.Reason, c.reason) {
				t.Errorf("reason %q does not mention %q", act.Reason, c.reason)
			}
			if act.Reason == "" || act.Meta[MetaTarget] != cfg.Target {
				t.Errorf("action lacks reason or meta: %+v", act)
			}
		})
	}
}

// TestDecideInvariants sweeps counts, utilisations and bounds: the
// direction always agrees with the count change and the count stays in
// [floor, max].
func TestDecideInvariants(t *testing.T) {
	for _, bounds := range []map[string]string{{}, {"min": "2"}, {"min": "2", "max": "9"}, {"max": "0"}, {"max_scale_in": "1"}} {
		cfg := mustConfig(t, bounds)
		for count := int64(0); count <= 12; count++ {
			for u := 0.0; u <= 1.0; u += 0.05 {
				act, err := Decide(cfg, series(u, u), count, t0)
				if err != nil {
					t.Fatal(err)
				}
				want := sdk.None
				if act.Count > count {
					want = sdk.Up
				} else if act.Count < count {
					want = sdk.Down
				}
				if act.Direction != want {
					t.Fatalf("%v count %d u %.2f: direction %v for %d", bounds, count, u, act.Direction, act.Count)
				}
				if act.Count < cfg.Min && !(cfg.HasMax && cfg.Max < cfg.Min) || cfg.HasMax && act.Count > cfg.Max {
					t.Fatalf("%v count %d u %.2f: %d outside bounds", bounds, count, u, act.Count)
				}
				if cfg.MaxScaleIn > 0 && count-act.Count > cfg.MaxScaleIn && count > cfg.Min {
					t.Fatalf("%v count %d u %.2f: scaled in by %d", bounds, count, u, count-act.Count)
				}
			}
		}
	}
}

// TestConvergence replays a steady load through a simulated pool (two
// environments per instance) and checks tracking settles at the count that
// puts utilisation at or just under the target.
func TestConvergence(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"target": "0.7"})
	const perInstance, inflight = 2, 11.0
	count := int64(1)
	for step := 0; step < 20; step++ {
		u := min(1, inflight/float64(count*perInstance))
		act, err := Decide(cfg, series(u, u, u), count, t0)
		if err != nil {
			t.Fatal(err)
		}
		count = act.Count
	}
	// 11 in flight / (2 × 0.7) = 7.86 → 8 instances, utilisation 0.69.
	if count != 8 {
		t.Fatalf("settled at %d instances, want 8", count)
	}
}

func TestDecideBadInput(t *testing.T) {
	cfg := mustConfig(t, nil)
	if _, err := Decide(cfg, series(0.5), -1, t0); !errors.Is(err, ErrBadInput) {
		t.Errorf("negative count: %v", err)
	}
	for _, v := range []float64{-0.1, nan(), inf()} {
		if _, err := Decide(cfg, series(0.5, v), 3, t0); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "not a utilisation") {
			t.Errorf("metric %v: %v", v, err)
		}
	}
}

func TestParseConfigDefaultsAndNumbers(t *testing.T) {
	cfg := mustConfig(t, nil)
	if cfg.Target != policy.DefaultTarget || cfg.ScaleInThreshold != policy.DefaultScaleInThreshold || cfg.Min != 0 || cfg.HasMax || cfg.MaxScaleIn != 0 || cfg.Location != time.UTC {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg = mustConfig(t, map[string]string{"target": " 0.55 ", "min": "3", "max": "1e+06", "scale_in_threshold": "0.8", "max_scale_in": "2", "timezone": "Asia/Tokyo", "schedules": "[]"})
	if cfg.Target != 0.55 || cfg.Min != 3 || cfg.Max != 1000000 || !cfg.HasMax || cfg.ScaleInThreshold != 0.8 || cfg.MaxScaleIn != 2 || cfg.Location.String() != "Asia/Tokyo" || len(cfg.Schedules) != 0 {
		t.Errorf("parsed: %+v", cfg)
	}
	if cfg := mustConfig(t, map[string]string{"max": "0"}); !cfg.HasMax || cfg.Max != 0 {
		t.Errorf("max 0 must be a ceiling of 0 (reserved concurrency 0): %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		config map[string]string
		want   []string
	}{
		{map[string]string{"target": "high"}, []string{`strategy config target = "high": not a number`}},
		{map[string]string{"target": "0"}, []string{`target = "0": want a utilisation in (0, 1]`}},
		{map[string]string{"target": "1.5"}, []string{`target = "1.5": want a utilisation in (0, 1]`}},
		{map[string]string{"target": "NaN"}, []string{`target = "NaN": not a number`}},
		{map[string]string{"min": "-1"}, []string{`min = "-1": want a whole number >= 0`}},
		{map[string]string{"min": "2.5"}, []string{`min = "2.5": want a whole number >= 0`}},
		{map[string]string{"max": "lots"}, []string{`max = "lots": not a number`}},
		{map[string]string{"min": "5", "max": "4"}, []string{`min = "5": floor above max 4`}},
		{map[string]string{"scale_in_threshold": "1.2"}, []string{`scale_in_threshold = "1.2": want a fraction of target in (0, 1]`}},
		{map[string]string{"max_scale_in": "-2"}, []string{`max_scale_in = "-2": want a whole number >= 0`}},
		{map[string]string{"timezone": "Mars/Olympus"}, []string{`timezone = "Mars/Olympus": unknown IANA time zone`}},
		{map[string]string{"targte": "0.7"}, []string{`targte = "0.7": unknown key (known: target, min, max`}},
		{map[string]string{"schedules": `{"cron":"0 8 * * *"}`}, []string{"decoding schedules"}},
		{map[string]string{"schedules": `[{"name":"x","cron":"0 8 * *","min":1}]`}, []string{`schedule 0 ("x"): cron "0 8 * *" has 4 fields`}},
		{map[string]string{"schedules": `[{"name":"x","cron":"0 25 * * *","min":1}]`}, []string{`schedule 0 ("x"): cron "0 25 * * *"`}},
		{map[string]string{"schedules": `[{"name":"x","cron":"0 8 * * *","duration":"soon","min":1}]`}, []string{`duration "soon": want a positive Go duration`}},
		{map[string]string{"schedules": `[{"name":"x","cron":"0 8 * * *","duration":"-1h","min":1}]`}, []string{`duration "-1h"`}},
		{map[string]string{"schedules": `[{"name":"x","cron":"0 8 * * *","timezone":"Nowhere","min":1}]`}, []string{`timezone "Nowhere": unknown IANA time zone`}},
		{map[string]string{"schedules": `[{"name":"x","cron":"0 8 * * *","min":-1}]`}, []string{`min -1: want a count >= 0`}},
		// Every problem is reported at once.
		{map[string]string{"target": "x", "min": "y", "bogus": "1"}, []string{"target = \"x\"", "min = \"y\"", "bogus = \"1\": unknown key"}},
	}
	for _, c := range cases {
		_, err := ParseConfig(c.config)
		if err == nil {
			t.Errorf("ParseConfig(%v) succeeded", c.config)
			continue
		}
		if !errors.Is(err, ErrBadConfig) {
			t.Errorf("ParseConfig(%v) error %v does not wrap ErrBadConfig", c.config, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseConfig(%v) error %q does not contain %q", c.config, err, w)
			}
		}
	}
}

func TestRunUsesInjectedClockAndNamesTheCheck(t *testing.T) {
	now := berlin(t, 25, 9, 0)
	s := New(hclog.NewNullLogger(), WithClock(func() time.Time { return now }))
	req := sdk.RunRequest{
		Check: sdk.Check{Name: "utilization", Query: "orders/3", StrategyConfig: map[string]string{
			"min": "1", "schedules": `[{"name":"morning","cron":"0 8 * * *","duration":"2h","timezone":"Europe/Berlin","min":6}]`,
		}},
		Metrics: series(0.2),
		Count:   1,
	}
	act, err := s.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if act.Count != 6 || act.Direction != sdk.Up || act.Meta[MetaSchedule] != "morning" {
		t.Fatalf("inside the window: %+v", act)
	}
	now = berlin(t, 25, 10, 0)
	act, err = s.Run(context.Background(), req)
	if err != nil || act.Count != 1 || act.Direction != sdk.None {
		t.Fatalf("after the window: %+v, %v", act, err)
	}

	req.Check.Query = "in_flight:orders/3"
	if _, err := s.Run(context.Background(), req); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "selects in_flight") {
		t.Fatalf("raw-count query: %v", err)
	}
	// A query for some other APM is not ours to judge.
	req.Check.Query = `sum(rate(x[1m]))`
	if _, err := s.Run(context.Background(), req); err != nil {
		t.Fatalf("foreign query: %v", err)
	}

	req.Check.StrategyConfig = map[string]string{"target": "abc"}
	_, err = s.Run(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), `check "utilization"`) || !strings.Contains(err.Error(), `target = "abc"`) {
		t.Fatalf("bad config: %v", err)
	}
	if info := s.PluginInfo(); info.Name != policy.StrategyDriver || info.Type != sdk.TypeStrategy {
		t.Fatalf("info %+v", info)
	}
	if err := s.SetConfig(context.Background(), map[string]string{"nomad_address": "http://127.0.0.1:4646"}); err != nil {
		t.Fatal(err)
	}
}
