package rollout

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseStrategyKnowsCodeDeploysNamesInAnyCase(t *testing.T) {
	linear := []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	cases := []struct {
		name     string
		steps    []int
		interval time.Duration
	}{
		{"canary10percent5minutes", []int{10, 100}, 5 * time.Minute},
		{"Canary10Percent10Minutes", []int{10, 100}, 10 * time.Minute},
		{"CANARY10PERCENT15MINUTES", []int{10, 100}, 15 * time.Minute},
		{"CodeDeployDefault.LambdaCanary10Percent30Minutes", []int{10, 100}, 30 * time.Minute},
		{"linear10percentevery1minute", linear, time.Minute},
		{"Linear10PercentEvery2Minutes", linear, 2 * time.Minute},
		{"Linear10PercentEvery3Minutes", linear, 3 * time.Minute},
		{"linear10percentevery10minutes", linear, 10 * time.Minute},
		{"allatonce", []int{100}, 0},
		{" AllAtOnce ", []int{100}, 0},
	}
	for _, tc := range cases {
		p, err := ParseStrategy(tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(p.Steps, tc.steps) || p.Interval != tc.interval {
			t.Errorf("%s: %v every %s, want %v every %s", tc.name, p.Steps, p.Interval, tc.steps, tc.interval)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s: its own plan is invalid: %v", tc.name, err)
		}
	}
	for _, n := range StrategyNames() {
		if _, err := ParseStrategy(n); err != nil {
			t.Errorf("listed name %s: %v", n, err)
		}
	}
	for _, bad := range []string{"", "canary", "Linear10PercentEvery1Minutes", "Canary10Percent5Minute", "linear10percentevery4minutes"} {
		if _, err := ParseStrategy(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
	// The plan is a copy: changing it does not change the table.
	p, _ := ParseStrategy("canary10percent5minutes")
	p.Steps[0] = 50
	if q, _ := ParseStrategy("canary10percent5minutes"); q.Steps[0] != 10 {
		t.Fatalf("the strategy table was changed through a returned plan: %v", q.Steps)
	}
}

func TestParseStepsValidates(t *testing.T) {
	p, err := ParseSteps("10, 50%,100", 2*time.Minute)
	if err != nil || !reflect.DeepEqual(p.Steps, []int{10, 50, 100}) || p.Interval != 2*time.Minute {
		t.Fatalf("%+v %v", p, err)
	}
	if d := p.Duration(); d != 4*time.Minute {
		t.Errorf("duration %s, want 4m (two watched steps)", d)
	}
	if p, err := ParseSteps("100", 0); err != nil || p.Duration() != 0 {
		t.Errorf("a single 100%% step: %+v %v", p, err)
	}
	for _, tc := range []struct {
		steps    string
		interval time.Duration
	}{
		{"10,50", time.Minute},      // does not end at 100
		{"50,10,100", time.Minute},  // falls
		{"10,10,100", time.Minute},  // repeats
		{"0,100", time.Minute},      // 0 is not a step
		{"10,100,150", time.Minute}, // above 100
		{"10,x,100", time.Minute},   // not a number
		{"10.5,100", time.Minute},   // not whole
		{"10,100", 0},               // no interval to watch 10% for
		{"10,100", -time.Second},    // negative
		{"", time.Minute},           // empty
	} {
		if _, err := ParseSteps(tc.steps, tc.interval); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q every %s: %v, want ErrInvalid", tc.steps, tc.interval, err)
		}
	}
}

func TestAliasAtKeepsTheOldVersionPrimaryUntil100(t *testing.T) {
	orig := Alias{Version: "3", Description: "prod"}
	for _, tc := range []struct {
		pct  int
		want Alias
	}{
		{10, Alias{Version: "3", Description: "prod", Weights: map[string]float64{"4": 0.1}}},
		{50, Alias{Version: "3", Description: "prod", Weights: map[string]float64{"4": 0.5}}},
		{99, Alias{Version: "3", Description: "prod", Weights: map[string]float64{"4": 0.99}}},
		{100, Alias{Version: "4", Description: "prod"}},
	} {
		if got := AliasAt(orig, "4", tc.pct); !got.Same(tc.want) {
			t.Errorf("%d%%: %+v, want %+v", tc.pct, got, tc.want)
		}
	}
	if (Alias{Version: "1", Weights: map[string]float64{"2": 0.1}}).Same(Alias{Version: "1", Weights: map[string]float64{"3": 0.1}}) {
		t.Error("aliases with different weighted versions compare the same")
	}
}

func TestParseRateTakesFractionsAndPercentages(t *testing.T) {
	for in, want := range map[string]float64{"0.05": 0.05, "5%": 0.05, "0": 0, "100%": 1, "1": 1, " 12.5% ": 0.125} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"5", "-0.1", "101%", "abc", "", "NaN"} {
		if _, err := ParseRate(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestMeasureAndBreach(t *testing.T) {
	base := Counters{Invocations: 100, FunctionErrors: 5, PlatformErrors: 1, Throttles: 2}
	h, reset := Measure(base, Counters{Invocations: 120, FunctionErrors: 9, PlatformErrors: 1, Throttles: 2}, 10)
	if reset || h.Invocations != 20 || h.Errors != 4 || h.Rate != 0.2 || h.TooLittleTraffic {
		t.Fatalf("%+v reset=%v", h, reset)
	}
	th := Thresholds{MaxErrorRate: 0.1, MaxThrottles: -1, MinInvocations: 10}
	if th.Breach(h) == "" {
		t.Error("rate 0.2 over 0.1 is not a breach")
	}
	if (Thresholds{MaxErrorRate: 0.2, MaxThrottles: -1, MinInvocations: 10}).Breach(h) != "" {
		t.Error("a rate equal to the threshold was judged a breach; only a rate above it is")
	}
	// Platform errors count in both the errors and the calls.
	h, _ = Measure(base, Counters{Invocations: 104, FunctionErrors: 5, PlatformErrors: 7, Throttles: 2}, 10)
	if h.Errors != 6 || h.Rate != 0.6 || h.TooLittleTraffic {
		t.Errorf("platform errors: %+v", h)
	}
	// Too little traffic is never judged on its rate.
	h, _ = Measure(base, Counters{Invocations: 103, FunctionErrors: 8, PlatformErrors: 1, Throttles: 2}, 10)
	if !h.TooLittleTraffic || h.Rate != 1 || th.Breach(h) != "" {
		t.Errorf("3 calls, all errors: %+v breach %q", h, th.Breach(h))
	}
	// Throttles, when watched, are judged with any traffic.
	h, _ = Measure(base, Counters{Invocations: 100, FunctionErrors: 5, PlatformErrors: 1, Throttles: 6}, 10)
	if (Thresholds{MaxErrorRate: 1, MaxThrottles: 3, MinInvocations: 10}).Breach(h) == "" || th.Breach(h) != "" {
		t.Errorf("4 throttles: %+v", h)
	}
	if _, reset := Measure(base, Counters{Invocations: 3}, 10); !reset {
		t.Error("counters that went down are not a reset")
	}
}

func TestRecordValidate(t *testing.T) {
	good := func() *Record {
		return &Record{Function: "fn", Alias: "live", Original: Alias{Version: "1"}, To: "2", Steps: []int{20, 50, 100},
			IntervalMillis: 1000, Thresholds: Thresholds{MaxErrorRate: 0.05, MaxThrottles: -1, MinInvocations: 10},
			MetricsURLs: []string{"http://127.0.0.1:9000/metrics"}, Step: -1, Status: Running}
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	withHooks := good()
	withHooks.PreTrafficHook, withHooks.PostTrafficHook = "check", "smoke:live"
	if err := withHooks.Validate(); err != nil {
		t.Fatalf("hooks with and without a qualifier: %v", err)
	}
	for name, spoil := range map[string]func(r *Record){
		"same version":   func(r *Record) { r.To = "1" },
		"latest":         func(r *Record) { r.To = "$LATEST" },
		"steps":          func(r *Record) { r.Steps = []int{20, 50} },
		"rate":           func(r *Record) { r.MaxErrorRate = 1.5 },
		"throttles":      func(r *Record) { r.MaxThrottles = -2 },
		"min":            func(r *Record) { r.MinInvocations = 0 },
		"step":           func(r *Record) { r.Step = 4 },
		"status":         func(r *Record) { r.Status = "Paused" },
		"metrics scheme": func(r *Record) { r.MetricsURLs = []string{"file:///etc/passwd"} },
		"no metrics":     func(r *Record) { r.MetricsURLs = nil },
		"hook":           func(r *Record) { r.PreTrafficHook = "a/b" },
		"alias":          func(r *Record) { r.Alias = "" },
		"weights":        func(r *Record) { r.Original.Weights = map[string]float64{"3": 2} },
	} {
		r := good()
		spoil(r)
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
