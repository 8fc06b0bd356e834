package harness

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/autoscaler/apm/apmtest"
	"github.com/nimbus-fn/nimbus/autoscaler/policy"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
	"github.com/nimbus-fn/nimbus/autoscaler/strategy"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestPluginsRefuseToRunWithoutTheHandshake(t *testing.T) {
	for _, name := range []string{policy.APMDriver, policy.StrategyDriver} {
		out, err := exec.Command(MustBuild(t, name)).Output()
		if err == nil {
			t.Errorf("%s ran without the magic cookie", name)
		}
		if strings.Contains(string(out), "|grpc") {
			t.Errorf("%s printed a handshake line without the cookie: %q", name, out)
		}
	}
}

func TestStrategyPluginOverGRPC(t *testing.T) {
	c := StartStrategy(t, MustBuild(t, policy.StrategyDriver))
	if err := Load(ctx(t), c, policy.APMDriver, sdk.TypeStrategy, nil); err == nil || !strings.Contains(err.Error(), "remote info doesn't match") {
		t.Fatalf("Load with the wrong driver name: %v", err)
	}
	agentConfig := map[string]string{"nomad_address": "http://127.0.0.1:4646", "nomad_block-query-wait-time": "5m0s"}
	if err := Load(ctx(t), c, policy.StrategyDriver, sdk.TypeStrategy, agentConfig); err != nil {
		t.Fatal(err)
	}
	// A reload calls SetConfig again.
	if err := c.SetConfig(ctx(t), agentConfig); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	pts := func(vals ...float64) []sdk.Metric {
		out := make([]sdk.Metric, len(vals))
		for i, v := range vals {
			out[i] = sdk.Metric{Timestamp: now.Add(time.Duration(i-len(vals)) * 10 * time.Second), Value: v}
		}
		return out
	}
	check := func(cfg map[string]string) sdk.Check {
		return sdk.Check{Name: policy.CheckName, Source: policy.APMName, Query: "orders/3", QueryWindow: time.Minute,
			Strategy: policy.StrategyName, StrategyConfig: cfg}
	}
	cases := []struct {
		name    string
		cfg     map[string]string
		metrics []sdk.Metric
		count   int64
		want    int64
		dir     sdk.Direction
	}{
		// None must arrive as SCALING_DIRECTION_NONE: the client rejects
		// UNSPECIFIED exactly as the agent does.
		{"steady keeps with an explicit none", map[string]string{"target": "0.7"}, pts(0.7, 0.68), 4, 4, sdk.None},
		{"saturated scales up", map[string]string{"target": "0.7", "min": "1", "max": "50"}, pts(1, 1), 4, 6, sdk.Up},
		{"idle scales in to the floor", map[string]string{"target": "0.7", "min": "2"}, pts(0, 0, 0), 6, 2, sdk.Down},
		{"below the floor scales up", map[string]string{"min": "3"}, pts(0), 0, 3, sdk.Up},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			act, err := c.Run(ctx(t), sdk.RunRequest{Check: check(tc.cfg), Metrics: tc.metrics, Count: tc.count})
			if err != nil {
				t.Fatal(err)
			}
			if act.Count != tc.want || act.Direction != tc.dir || act.Reason == "" {
				t.Fatalf("got %+v; want count %d direction %v with a reason", act, tc.want, tc.dir)
			}
			// Meta crossed the wire as JSON: numbers come back as float64.
			if act.Meta[strategy.MetaTarget] != 0.7 {
				t.Fatalf("meta %v", act.Meta)
			}
		})
	}

	_, err := c.Run(ctx(t), sdk.RunRequest{Check: check(map[string]string{"target": "seventy", "min": "x"}), Metrics: pts(0.5), Count: 1})
	if err == nil || !strings.Contains(err.Error(), `target = "seventy": not a number`) || !strings.Contains(err.Error(), `min = "x"`) {
		t.Fatalf("bad config over gRPC: %v", err)
	}
}

func TestAPMPluginOverGRPC(t *testing.T) {
	g1, g2 := apmtest.NewGateway(t), apmtest.NewGateway(t)
	// Both gateways see the same 4 provisioned environments; 1 + 2 in flight.
	g1.Set("orders", "3", "provisioned", 4, 1)
	g2.Set("orders", "3", "provisioned", 4, 2)
	g1.Set("orders", "3", "ondemand", 2, 2)
	g2.Set("orders", "$LATEST", "provisioned", 2, 0)

	c := StartAPM(t, MustBuild(t, policy.APMDriver))
	err := Load(ctx(t), c, policy.APMDriver, sdk.TypeAPM, map[string]string{"gateways": "nowhere"})
	if err == nil || !strings.Contains(err.Error(), `gateway "nowhere"`) {
		t.Fatalf("bad gateways config: %v", err)
	}
	cfg := map[string]string{
		"gateways":      g1.Addr() + "," + apmtest.DownAddr(t) + "," + g2.Server.URL + "/metrics",
		"cache_ttl":     "0s",
		"nomad_address": "http://127.0.0.1:4646",
	}
	if err := Load(ctx(t), c, policy.APMDriver, sdk.TypeAPM, cfg); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	r := sdk.TimeRange{From: now.Add(-time.Minute), To: now}
	for _, tc := range []struct {
		query string
		want  float64
	}{
		{"orders/3", 0.75},
		{"utilization:orders/3", 0.75},
		{"in_flight:orders/3", 3},
		{"environments:orders/3", 4},
		{"orders/$LATEST", 0},
		{"unknown/1", 0},
	} {
		ms, err := c.Query(ctx(t), tc.query, r)
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		last := ms[len(ms)-1]
		if last.Value != tc.want || last.Timestamp.Before(now.Add(-time.Second)) {
			t.Errorf("%s = %+v, want value %v timestamped now", tc.query, ms, tc.want)
		}
	}
	if _, err := c.Query(ctx(t), "orders", r); err == nil || !strings.Contains(err.Error(), "want [<metric>:]<function>/<version>") {
		t.Errorf("bad query: %v", err)
	}
	if n, err := c.QueryMultiple(ctx(t), "orders/3", r); err != nil || n != 0 {
		t.Errorf("QueryMultiple = %d, %v", n, err)
	}

	// Every gateway down: an error, not a silent zero.
	g1.Server.Close()
	g2.Server.Close()
	if _, err := c.Query(ctx(t), "orders/3", r); err == nil || !strings.Contains(err.Error(), "no gateway answered") {
		t.Fatalf("all gateways down: %v", err)
	}
}

// TestEvaluationTicks replays the agent's evaluation loop across both real
// plugin processes while the gateway's load changes.
func TestEvaluationTicks(t *testing.T) {
	g := apmtest.NewGateway(t)
	apm := StartAPM(t, MustBuild(t, policy.APMDriver))
	strat := StartStrategy(t, MustBuild(t, policy.StrategyDriver))
	if err := Load(ctx(t), apm, policy.APMDriver, sdk.TypeAPM, map[string]string{"gateways": g.Addr(), "cache_ttl": "0s"}); err != nil {
		t.Fatal(err)
	}
	if err := Load(ctx(t), strat, policy.StrategyDriver, sdk.TypeStrategy, nil); err != nil {
		t.Fatal(err)
	}
	p := Policy{Min: 2, Max: 5, Check: sdk.Check{
		Name: policy.CheckName, Source: policy.APMName, Query: "orders/3", Strategy: policy.StrategyName,
		StrategyConfig: map[string]string{policy.KeyTarget: "0.7", policy.KeyMin: "2", policy.KeyMax: "6"},
	}}

	// One environment per instance; the provisioned group has 2, all busy.
	count := int64(2)
	g.Set("orders", "3", "provisioned", 2, 2)
	out, err := Evaluate(ctx(t), apm, strat, p, count, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !out.Scale || out.Action.Count != 3 || out.Action.Direction != sdk.Up {
		t.Fatalf("saturated tick: %+v", out)
	}
	count = out.Action.Count

	// Still saturated at 3: ceil(3/0.7) = 5, then 5/0.7 = 8 is capped by the
	// policy max 5 (the strategy's own max is 6).
	g.Set("orders", "3", "provisioned", 3, 3)
	out, err = Evaluate(ctx(t), apm, strat, p, count, time.Now())
	if err != nil || out.Action.Count != 5 || !out.Scale {
		t.Fatalf("second tick: %+v, %v", out, err)
	}
	count = 5
	g.Set("orders", "3", "provisioned", 5, 5)
	out, err = Evaluate(ctx(t), apm, strat, p, count, time.Now())
	if err != nil || !out.Capped || out.Scale || out.Action.Count != 5 {
		t.Fatalf("capped tick: %+v, %v", out, err)
	}

	// Traffic gone: the window still holds the busy samples, so no scale-in
	// yet; once the window has only idle samples, scale in to the floor.
	g.Set("orders", "3", "provisioned", 5, 0)
	out, err = Evaluate(ctx(t), apm, strat, p, count, time.Now())
	if err != nil || out.Scale || out.Action.Direction != sdk.None {
		t.Fatalf("first idle tick: %+v, %v", out, err)
	}
	later := time.Now().Add(2 * time.Minute)
	out, err = Evaluate(ctx(t), apm, strat, Policy{Min: p.Min, Max: p.Max, Check: p.Check}, count, later)
	if err != nil {
		t.Fatal(err)
	}
	// The range [later-1m, later] holds no recorded sample; the fresh idle
	// sample answers, and the strategy scales in to its floor.
	if !out.Scale || out.Action.Count != 2 || out.Action.Direction != sdk.Down || len(out.Metrics) != 1 || out.Metrics[0].Value != 0 {
		t.Fatalf("idle window tick: %+v", out)
	}
}
