package plugin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nimbus-fn/nimbus/autoscaler/proto/basepb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/sharedpb"
	"github.com/nimbus-fn/nimbus/autoscaler/proto/strategypb"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

// recordingStrategy is a test double: it answers what the test sets and
// records what arrived.
type recordingStrategy struct {
	mu       sync.Mutex
	config   map[string]string
	req      sdk.RunRequest
	deadline bool
	answer   func() (sdk.Action, error)
}

func (s *recordingStrategy) PluginInfo() sdk.Info {
	return sdk.Info{Name: "test-strategy", Type: sdk.TypeStrategy}
}

func (s *recordingStrategy) SetConfig(_ context.Context, c map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c["fail"] != "" {
		return errors.New("bad agent config: " + c["fail"])
	}
	s.config = c
	return nil
}

func (s *recordingStrategy) setAnswer(f func() (sdk.Action, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

func (s *recordingStrategy) Run(ctx context.Context, req sdk.RunRequest) (sdk.Action, error) {
	s.mu.Lock()
	s.req = req
	_, s.deadline = ctx.Deadline()
	answer := s.answer
	s.mu.Unlock()
	return answer()
}

type recordingAPM struct {
	mu    sync.Mutex
	query string
	r     sdk.TimeRange
	out   []sdk.Metric
}

func (a *recordingAPM) PluginInfo() sdk.Info                               { return sdk.Info{Name: "test-apm", Type: sdk.TypeAPM} }
func (a *recordingAPM) SetConfig(context.Context, map[string]string) error { return nil }
func (a *recordingAPM) Query(_ context.Context, q string, r sdk.TimeRange) ([]sdk.Metric, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.query, a.r = q, r
	if q == "panic" {
		panic("boom")
	}
	return a.out, nil
}

// serve runs impl through go-plugin in this process (real gRPC over a unix
// socket, the autoscaler's handshake) and returns the dispensed client and
// the raw gRPC client.
func serve(t *testing.T, impl Base, kind string) (any, *goplugin.GRPCClient) {
	t.Helper()
	cfg, err := ServeConfig(impl, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *goplugin.ReattachConfig, 1)
	closed := make(chan struct{})
	cfg.Test = &goplugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}
	go goplugin.Serve(cfg)
	var rc *goplugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-time.After(10 * time.Second):
		t.Fatal("plugin did not start serving")
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          ClientSet(),
		Reattach:         rc,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
	})
	t.Cleanup(func() {
		client.Kill()
		cancel()
		<-closed
	})
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		t.Fatal(err)
	}
	return raw, rpc.(*goplugin.GRPCClient)
}

func TestStrategyRoundTrip(t *testing.T) {
	impl := &recordingStrategy{}
	raw, _ := serve(t, impl, KeyStrategy)
	c := raw.(*StrategyClient)
	ctx := context.Background()

	info, err := c.PluginInfo(ctx)
	if err != nil || info != (sdk.Info{Name: "test-strategy", Type: sdk.TypeStrategy}) {
		t.Fatalf("PluginInfo = %+v, %v", info, err)
	}
	if err := c.SetConfig(ctx, map[string]string{"fail": "nope"}); err == nil || !strings.Contains(err.Error(), "bad agent config: nope") {
		t.Fatalf("SetConfig error not carried: %v", err)
	}
	if err := c.SetConfig(ctx, nil); err != nil || impl.config == nil {
		t.Fatalf("SetConfig(nil) = %v, stored %v", err, impl.config)
	}

	ts := time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)
	req := sdk.RunRequest{
		Check: sdk.Check{Name: "utilization", Source: "nimbus-apm", Query: "orders/3", QueryWindow: 90 * time.Second,
			Strategy: "nimbus-target", StrategyConfig: map[string]string{"target": "0.7"}},
		Metrics: []sdk.Metric{{Timestamp: ts, Value: 0.25}, {Timestamp: ts.Add(time.Second), Value: 1}},
		Count:   7,
	}
	for _, want := range []sdk.Action{
		{Count: 7, Reason: "keep", Direction: sdk.None}, // Go zero direction must go out as NONE
		{Count: 9, Reason: "up", Direction: sdk.Up, Meta: map[string]any{"nimbus.floor": float64(2), "list": []any{"a"}}},
		{Count: 3, Reason: "down", Direction: sdk.Down, Error: true},
	} {
		impl.setAnswer(func() (sdk.Action, error) { return want, nil })
		got, err := c.Run(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got.Count != want.Count || got.Direction != want.Direction || got.Reason != want.Reason || got.Error != want.Error || len(got.Meta) != len(want.Meta) {
			t.Errorf("Run = %+v, want %+v", got, want)
		}
		for k, v := range want.Meta {
			if k == "nimbus.floor" && got.Meta[k] != v {
				t.Errorf("meta %s = %v", k, got.Meta[k])
			}
		}
	}
	impl.mu.Lock()
	gotReq, deadline := impl.req, impl.deadline
	impl.mu.Unlock()
	if gotReq.Count != 7 || gotReq.Check.QueryWindow != 90*time.Second || gotReq.Check.StrategyConfig["target"] != "0.7" ||
		gotReq.Check.Strategy != "nimbus-target" || len(gotReq.Metrics) != 2 || !gotReq.Metrics[0].Timestamp.Equal(ts) || gotReq.Metrics[1].Value != 1 {
		t.Errorf("request arrived as %+v", gotReq)
	}
	if !deadline {
		t.Error("Run arrived without a deadline; the guard must add one")
	}

	impl.setAnswer(func() (sdk.Action, error) { return sdk.Action{Direction: 5}, nil })
	if _, err := c.Run(ctx, req); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "scale direction is unknown") {
		t.Errorf("unencodable direction: %v", err)
	}
	impl.setAnswer(func() (sdk.Action, error) { return sdk.Action{}, errors.New("strategy config target: bad") })
	if _, err := c.Run(ctx, req); err == nil || !strings.Contains(err.Error(), "strategy config target: bad") {
		t.Errorf("strategy error not carried: %v", err)
	}
	impl.setAnswer(func() (sdk.Action, error) { panic("strategy bug") })
	if _, err := c.Run(ctx, req); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "strategy bug") {
		t.Errorf("panic not recovered into an error: %v", err)
	}
	// The process survived the panic.
	impl.setAnswer(func() (sdk.Action, error) { return sdk.Action{Count: 1, Direction: sdk.Up}, nil })
	if got, err := c.Run(ctx, req); err != nil || got.Count != 1 {
		t.Errorf("after panic: %+v, %v", got, err)
	}
}

// TestRawMethodPaths calls the services by the literal paths the autoscaler
// uses, and checks the base service shares the type service's connection.
func TestRawMethodPaths(t *testing.T) {
	impl := &recordingStrategy{answer: func() (sdk.Action, error) { return sdk.Action{Count: 2, Direction: sdk.None}, nil }}
	_, rpc := serve(t, impl, KeyStrategy)
	ctx := context.Background()
	info := &basepb.PluginInfoResponse{}
	if err := rpc.Conn.Invoke(ctx, "/hashicorp.nomad_autoscaler.plugins.base.proto.v1.BasePluginService/PluginInfo", &basepb.PluginInfoRequest{}, info); err != nil {
		t.Fatal(err)
	}
	if info.GetName() != "test-strategy" || info.GetType() != basepb.PluginType_PLUGIN_TYPE_STRATEGY {
		t.Fatalf("info %v", info)
	}
	resp := &strategypb.RunResponse{}
	check := &sharedpb.ScalingPolicyCheck{Name: "c"}
	if err := rpc.Conn.Invoke(ctx, "/hashicorp.nomad_autoscaler.plugins.strategy.proto.v1.StrategyPluginService/Run",
		&strategypb.RunRequest{Action: &sharedpb.ScalingAction{}, Check: check, Count: 2}, resp); err != nil {
		t.Fatal(err)
	}
	if resp.GetAction().GetDirection() != sharedpb.ScalingDirection_SCALING_DIRECTION_NONE || resp.GetAction().GetMeta() != nil || resp.GetCheck().GetName() != "c" {
		t.Fatalf("run response %v", resp)
	}
}

func TestAPMRoundTrip(t *testing.T) {
	from := time.Date(2026, 11, 25, 11, 59, 0, 0, time.UTC)
	to := from.Add(time.Minute)
	impl := &recordingAPM{out: []sdk.Metric{{Timestamp: to, Value: 0.5}, {Timestamp: from, Value: 0.25}}}
	raw, _ := serve(t, impl, KeyAPM)
	c := raw.(*APMClient)
	ms, err := c.Query(context.Background(), "orders/3", sdk.TimeRange{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	// The host sorts oldest first.
	if len(ms) != 2 || ms[0].Value != 0.25 || !ms[1].Timestamp.Equal(to) {
		t.Fatalf("metrics %+v", ms)
	}
	impl.mu.Lock()
	if impl.query != "orders/3" || !impl.r.From.Equal(from) || !impl.r.To.Equal(to) {
		t.Errorf("query arrived as %q %+v", impl.query, impl.r)
	}
	impl.mu.Unlock()
	if n, err := c.QueryMultiple(context.Background(), "orders/3", sdk.TimeRange{}); err != nil || n != 0 {
		t.Errorf("QueryMultiple = %d, %v", n, err)
	}
	impl.mu.Lock()
	impl.out = nil
	impl.mu.Unlock()
	if _, err := c.Query(context.Background(), "orders/3", sdk.TimeRange{}); err == nil || err.Error() != "no metrics available" {
		t.Errorf("empty answer: %v", err)
	}
	if _, err := c.Query(context.Background(), "panic", sdk.TimeRange{}); status.Code(err) != codes.Internal {
		t.Errorf("panic: %v", err)
	}
}

func TestActionDecodingMatchesTheHost(t *testing.T) {
	if a, err := actionFromProto(nil); err != nil || a.Direction != sdk.None || a.Count != 0 {
		t.Errorf("nil action = %+v, %v", a, err)
	}
	if _, err := actionFromProto(&sharedpb.ScalingAction{Count: 3}); !errors.Is(err, ErrUnknownDirection) || !strings.Contains(err.Error(), "SCALING_DIRECTION_UNSPECIFIED") {
		t.Errorf("unspecified direction: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("not json"), []byte("[1]")} {
		_, err := actionFromProto(&sharedpb.ScalingAction{Direction: sharedpb.ScalingDirection_SCALING_DIRECTION_UP, Meta: &anypb.Any{Value: bad}})
		if err == nil {
			t.Errorf("meta %q accepted", bad)
		}
	}
	pa, err := actionToProto(sdk.Action{Count: 1, Meta: map[string]any{}})
	if err != nil || pa.GetMeta() != nil || pa.GetDirection() != sharedpb.ScalingDirection_SCALING_DIRECTION_NONE {
		t.Errorf("empty meta must be omitted and None explicit: %v, %v", pa, err)
	}
	if _, err := typeFromProto(basepb.PluginType_PLUGIN_TYPE_UNSPECIFIED); err == nil || !strings.Contains(err.Error(), "plugin is of unknown type") {
		t.Errorf("unspecified type: %v", err)
	}
	if _, err := ServerSet(&onlyBase{}); err == nil {
		t.Error("ServerSet accepted a plugin that is neither APM nor strategy")
	}
}

type onlyBase struct{}

func (onlyBase) PluginInfo() sdk.Info                               { return sdk.Info{Name: "x", Type: "target"} }
func (onlyBase) SetConfig(context.Context, map[string]string) error { return nil }
