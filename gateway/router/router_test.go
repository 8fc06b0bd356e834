package router_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/router"
)

var key = []byte("0123456789abcdef-test-key")

func secret(fn, v string) string { return invokeapi.DeriveSecret(key, fn, v) }

// gate is a handler that holds invocations until released.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) handle(w http.ResponseWriter, _ *http.Request, payload []byte) {
	g.entered <- struct{}{}
	<-g.release
	gatewaytest.Echo(w, nil, payload)
}

func newRouter(t *testing.T, cfg router.Config, src *gatewaytest.Source, sc router.Scaler) *router.Router {
	t.Helper()
	cfg.InvokeKey = key
	r := router.New(cfg, src, sc, metrics.New(), nil)
	t.Cleanup(r.Close)
	return r
}

func invoke(t *testing.T, r *router.Router, tg router.Target, payload string) (string, error) {
	t.Helper()
	resp, err := r.Invoke(context.Background(), tg, &invokeapi.Request{Payload: []byte(payload)})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func throttleReason(err error) string {
	var te *router.ThrottleError
	if errors.As(err, &te) {
		return te.Reason
	}
	return ""
}

func TestInvokeWarmInstanceAndReleaseOnClose(t *testing.T) {
	in := gatewaytest.StartInstance(t, "f", "$LATEST", 1, secret("f", "$LATEST"), nil)
	src := gatewaytest.NewSource()
	src.Set("f", "$LATEST", in.Discovery("i1", discovery.GroupOnDemand))
	r := newRouter(t, router.Config{}, src, nil)
	tg := router.Target{Function: "f", Version: "$LATEST"}
	for i := 0; i < 3; i++ {
		out, err := invoke(t, r, tg, `{"n":1}`)
		if err != nil || out != `{"n":1}` {
			t.Fatalf("invoke %d = %q, %v", i, out, err)
		}
	}
	if got := in.Invocations(); got != 3 {
		t.Fatalf("instance ran %d invocations, want 3", got)
	}
	if c := r.Concurrency("f"); c != 0 {
		t.Fatalf("concurrency after closed bodies = %d, want 0", c)
	}
	if got := in.LastRequest().Header.Get(invokeapi.HeaderAuthorization); got != "Bearer "+secret("f", "$LATEST") {
		t.Fatalf("authorization header = %q", got)
	}
}

func TestReservedConcurrencyThrottles(t *testing.T) {
	g := newGate()
	in := gatewaytest.StartInstance(t, "f", "$LATEST", 4, secret("f", "$LATEST"), g.handle)
	src := gatewaytest.NewSource()
	src.Set("f", "$LATEST", in.Discovery("i1", discovery.GroupOnDemand))
	r := newRouter(t, router.Config{}, src, nil)
	one := 1
	tg := router.Target{Function: "f", Version: "$LATEST", Reserved: &one, EnvironmentsPerInstance: 4}
	done := make(chan error, 1)
	go func() { _, err := invoke(t, r, tg, `1`); done <- err }()
	<-g.entered
	_, err := invoke(t, r, tg, `2`)
	if got := throttleReason(err); got != router.ReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Fatalf("second invoke: err %v, reason %q", err, got)
	}
	if got := retryAfter(err); got != time.Second {
		t.Fatalf("reserved concurrency throttle suggests a retry after %s, want 1s", got)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("first invoke: %v", err)
	}
	zero := 0
	_, err = invoke(t, r, router.Target{Function: "f", Version: "$LATEST", Reserved: &zero}, `3`)
	if throttleReason(err) == "" {
		t.Fatalf("reserved 0 must throttle, got %v", err)
	}
	if got := retryAfter(err); got != 0 {
		t.Fatalf("reserved 0 suggests a retry after %s; no retry can succeed", got)
	}
}

func retryAfter(err error) time.Duration {
	var te *router.ThrottleError
	if errors.As(err, &te) {
		return te.RetryAfter
	}
	return -1
}

func TestAccountLimitKeepsUnreservedMinimum(t *testing.T) {
	g := newGate()
	in := gatewaytest.StartInstance(t, "f", "$LATEST", 4, secret("f", "$LATEST"), g.handle)
	src := gatewaytest.NewSource()
	src.Set("f", "$LATEST", in.Discovery("i1", discovery.GroupOnDemand))
	r := newRouter(t, router.Config{AccountConcurrency: 10, UnreservedMin: 2}, src, nil)
	r.SetReservedTotal(9) // leaves 1, below the minimum of 2
	if got := r.UnreservedLimit(); got != 2 {
		t.Fatalf("unreserved limit = %d, want 2", got)
	}
	tg := router.Target{Function: "f", Version: "$LATEST", EnvironmentsPerInstance: 4}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = invoke(t, r, tg, `1`) }()
		<-g.entered
	}
	_, err := invoke(t, r, tg, `3`)
	if got := throttleReason(err); got != router.ReasonConcurrentInvocationLimitExceeded {
		t.Fatalf("third invoke: err %v, reason %q", err, got)
	}
	if got := retryAfter(err); got != time.Second {
		t.Fatalf("account limit throttle suggests a retry after %s, want 1s", got)
	}
	close(g.release)
	wg.Wait()
}

func TestScaleFromZeroAndBackToZero(t *testing.T) {
	src := gatewaytest.NewSource()
	sc := &gatewaytest.Scaler{}
	var mu sync.Mutex
	started := 0
	sc.React = func(fn, v string, want int) error {
		mu.Lock()
		defer mu.Unlock()
		if want == 0 {
			src.Set(fn, v)
			return nil
		}
		for started < want {
			started++
			in := gatewaytest.StartInstance(t, fn, v, 1, secret(fn, v), nil)
			src.Add(in.Discovery("od-"+string(rune('0'+started)), discovery.GroupOnDemand))
		}
		return nil
	}
	r := newRouter(t, router.Config{IdleScaleIn: 50 * time.Millisecond, RefreshInterval: 10 * time.Millisecond}, src, sc)
	tg := router.Target{Function: "f", Version: "$LATEST"}
	out, err := invoke(t, r, tg, `"cold"`)
	if err != nil || out != `"cold"` {
		t.Fatalf("cold invoke = %q, %v", out, err)
	}
	if calls := sc.Calls(); len(calls) == 0 || calls[0].Want != 1 {
		t.Fatalf("scaler calls %+v, want first want=1", calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	gatewaytest.Eventually(t, 5*time.Second, func() bool { return sc.Last() == 0 }, "idle scale-in to zero; calls %+v", sc.Calls())
	gatewaytest.Eventually(t, 5*time.Second, func() bool { return len(r.Instances("f", "$LATEST")) == 0 }, "instances forgotten")
}

func TestWaitQueueBoundAndColdStartDeadline(t *testing.T) {
	src := gatewaytest.NewSource()
	sc := &gatewaytest.Scaler{} // never adds capacity
	r := newRouter(t, router.Config{WaitQueueSize: 1, ColdStartWait: 200 * time.Millisecond}, src, sc)
	tg := router.Target{Function: "f", Version: "$LATEST"}
	first := make(chan error, 1)
	go func() { _, err := invoke(t, r, tg, `1`); first <- err }()
	gatewaytest.Eventually(t, 5*time.Second, func() bool {
		for _, p := range r.PoolStats() {
			if p.Waiting == 1 {
				return true
			}
		}
		return false
	}, "first request waiting")
	_, err := invoke(t, r, tg, `2`)
	if got := throttleReason(err); got != router.ReasonFunctionInvocationRateLimitExceeded {
		t.Fatalf("queue-full invoke: %v (reason %q)", err, got)
	}
	if got := throttleReason(<-first); got != router.ReasonFunctionInvocationRateLimitExceeded {
		t.Fatalf("waiting request must time out with a throttle, got reason %q", got)
	}
	if c := r.Concurrency("f"); c != 0 {
		t.Fatalf("concurrency after refusals = %d", c)
	}
}

func TestNoIdleEnvironmentTriesAnotherInstance(t *testing.T) {
	g := newGate()
	busy := gatewaytest.StartInstance(t, "f", "$LATEST", 1, secret("f", "$LATEST"), g.handle)
	free := gatewaytest.StartInstance(t, "f", "$LATEST", 1, secret("f", "$LATEST"), nil)
	// Another gateway's invocation occupies "a" (the router packs onto it first).
	go func() {
		c := &invokeapi.Client{Secret: secret("f", "$LATEST")}
		resp, err := c.Invoke(context.Background(), busy.Addr(), &invokeapi.Request{Payload: []byte(`0`)})
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-g.entered
	src := gatewaytest.NewSource()
	src.Set("f", "$LATEST", busy.Discovery("a", discovery.GroupOnDemand), free.Discovery("b", discovery.GroupOnDemand))
	r := newRouter(t, router.Config{}, src, nil)
	out, err := invoke(t, r, router.Target{Function: "f", Version: "$LATEST"}, `"x"`)
	if err != nil || out != `"x"` {
		t.Fatalf("invoke = %q, %v", out, err)
	}
	if free.Invocations() != 1 {
		t.Fatalf("free instance ran %d invocations, want 1", free.Invocations())
	}
	close(g.release)
}

func TestProvisionedFirstThenSpillOver(t *testing.T) {
	g := newGate()
	prov := gatewaytest.StartInstance(t, "f", "1", 1, secret("f", "1"), g.handle)
	od := gatewaytest.StartInstance(t, "f", "1", 1, secret("f", "1"), nil)
	src := gatewaytest.NewSource()
	src.Set("f", "1", od.Discovery("z-od", discovery.GroupOnDemand), prov.Discovery("a-prov", discovery.GroupProvisioned))
	r := newRouter(t, router.Config{}, src, nil)
	tg := router.Target{Function: "f", Version: "1"}
	done := make(chan error, 1)
	go func() { _, err := invoke(t, r, tg, `1`); done <- err }()
	<-g.entered
	stats := r.PoolStats()
	if len(stats) != 1 || stats[0].InFlight[metrics.GroupProvisioned] != 1 || stats[0].Environments[metrics.GroupProvisioned] != 1 {
		t.Fatalf("pool stats while provisioned busy: %+v", stats)
	}
	if u := metrics.Utilization(stats[0]); u != 1 {
		t.Fatalf("provisioned utilization = %v, want 1", u)
	}
	if _, err := invoke(t, r, tg, `2`); err != nil {
		t.Fatalf("spill-over invoke: %v", err)
	}
	if od.Invocations() != 1 {
		t.Fatalf("on-demand ran %d, want 1 (spill-over)", od.Invocations())
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if prov.Invocations() != 1 {
		t.Fatalf("provisioned ran %d, want 1", prov.Invocations())
	}
}

func TestWaiterGetsReleasedEnvironmentFIFO(t *testing.T) {
	g := newGate()
	in := gatewaytest.StartInstance(t, "f", "$LATEST", 1, secret("f", "$LATEST"), g.handle)
	src := gatewaytest.NewSource()
	src.Set("f", "$LATEST", in.Discovery("i1", discovery.GroupOnDemand))
	r := newRouter(t, router.Config{}, src, &gatewaytest.Scaler{})
	tg := router.Target{Function: "f", Version: "$LATEST"}
	results := make(chan string, 2)
	go func() { out, _ := invoke(t, r, tg, `"a"`); results <- out }()
	<-g.entered
	go func() { out, _ := invoke(t, r, tg, `"b"`); results <- out }()
	gatewaytest.Eventually(t, 5*time.Second, func() bool { return r.PoolStats()[0].Waiting == 1 }, "second waits")
	g.release <- struct{}{}
	<-g.entered // the waiter now runs on the freed environment
	g.release <- struct{}{}
	got := map[string]bool{<-results: true, <-results: true}
	if !got[`"a"`] || !got[`"b"`] {
		t.Fatalf("results %v", got)
	}
	if in.MaxBusy() != 1 {
		t.Fatalf("instance ran %d at once, want 1", in.MaxBusy())
	}
}

func TestDrainWaitsForInFlight(t *testing.T) {
	g := newGate()
	in := gatewaytest.StartInstance(t, "f", "$LATEST", 1, secret("f", "$LATEST"), g.handle)
	src := gatewaytest.NewSource()
	src.Set("f", "$LATEST", in.Discovery("i1", discovery.GroupOnDemand))
	r := newRouter(t, router.Config{}, src, nil)
	tg := router.Target{Function: "f", Version: "$LATEST"}
	done := make(chan error, 1)
	go func() { _, err := invoke(t, r, tg, `1`); done <- err }()
	<-g.entered
	drained := make(chan error, 1)
	go func() { drained <- r.Drain(context.Background()) }()
	gatewaytest.Eventually(t, 5*time.Second, r.Draining, "router draining")
	if _, err := invoke(t, r, tg, `2`); throttleReason(err) == "" {
		t.Fatalf("invoke while draining: %v, want a throttle", err)
	}
	select {
	case err := <-drained:
		t.Fatalf("drain returned before the invocation finished: %v", err)
	default:
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
}

func TestTrackCreatesPoolsBeforeTrafficAndForgetsRemoved(t *testing.T) {
	in := gatewaytest.StartInstance(t, "f", "1", 2, secret("f", "1"), nil)
	src := gatewaytest.NewSource()
	src.Set("f", "1", in.Discovery("p1", discovery.GroupProvisioned))
	r := newRouter(t, router.Config{}, src, nil)
	r.Track([]router.Target{{Function: "f", Version: "1", EnvironmentsPerInstance: 2}, {Function: "g", Version: "$LATEST"}})
	stats := r.PoolStats()
	if len(stats) != 2 || stats[0].Function != "f" || stats[0].Environments[metrics.GroupProvisioned] != 2 {
		t.Fatalf("pools after Track: %+v", stats)
	}
	r.Track([]router.Target{{Function: "f", Version: "1", EnvironmentsPerInstance: 2}})
	if stats := r.PoolStats(); len(stats) != 1 {
		t.Fatalf("removed version's pool kept: %+v", stats)
	}
}

func TestUnreachableInstanceIsSkipped(t *testing.T) {
	dead := gatewaytest.StartInstance(t, "f", "$LATEST", 1, secret("f", "$LATEST"), nil)
	live := gatewaytest.StartInstance(t, "f", "$LATEST", 1, secret("f", "$LATEST"), nil)
	src := gatewaytest.NewSource()
	// "a-dead" sorts first, so the router tries it first.
	src.Set("f", "$LATEST", dead.Discovery("a-dead", discovery.GroupOnDemand), live.Discovery("b-live", discovery.GroupOnDemand))
	r := newRouter(t, router.Config{}, src, nil)
	dead.Close()
	for i := 0; i < 3; i++ {
		if out, err := invoke(t, r, router.Target{Function: "f", Version: "$LATEST"}, `"ok"`); err != nil || out != `"ok"` {
			t.Fatalf("invoke %d with one dead instance: %q %v", i, out, err)
		}
	}
	if live.Invocations() != 3 {
		t.Fatalf("live instance ran %d, want 3", live.Invocations())
	}
}

func TestScalerFailureThrottlesThenRetries(t *testing.T) {
	src := gatewaytest.NewSource()
	sc := &gatewaytest.Scaler{}
	var mu sync.Mutex
	failing := true
	sc.React = func(fn, v string, want int) error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return errors.New("nomad unreachable")
		}
		in := gatewaytest.StartInstance(t, fn, v, 1, secret(fn, v), nil)
		src.Add(in.Discovery("od", discovery.GroupOnDemand))
		return nil
	}
	r := newRouter(t, router.Config{ColdStartWait: 300 * time.Millisecond}, src, sc)
	tg := router.Target{Function: "f", Version: "$LATEST"}
	if _, err := invoke(t, r, tg, `1`); throttleReason(err) == "" {
		t.Fatalf("with a failing scaler: %v, want a throttle", err)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if out, err := invoke(t, r, tg, `2`); err != nil || out != `2` {
		t.Fatalf("after the scaler recovered: %q %v", out, err)
	}
	if n := len(sc.Calls()); n < 2 {
		t.Fatalf("scaler called %d times, want a retry after the failure", n)
	}
}

func TestSpilloverCountsOnDemandRunsOfProvisionedVersions(t *testing.T) {
	g := newGate()
	prov := gatewaytest.StartInstance(t, "f", "1", 1, secret("f", "1"), g.handle)
	od := gatewaytest.StartInstance(t, "f", "1", 1, secret("f", "1"), nil)
	plain := gatewaytest.StartInstance(t, "g", "1", 1, secret("g", "1"), nil)
	src := gatewaytest.NewSource()
	src.Set("f", "1", od.Discovery("z-od", discovery.GroupOnDemand), prov.Discovery("a-prov", discovery.GroupProvisioned))
	src.Set("g", "1", plain.Discovery("g-od", discovery.GroupOnDemand))
	m := metrics.New()
	r := router.New(router.Config{InvokeKey: key}, src, nil, m, nil)
	t.Cleanup(r.Close)
	spill := func(fn string) float64 {
		t.Helper()
		fams, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "nimbus_provisioned_spillover_invocations_total" {
				continue
			}
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "function" && l.GetValue() == fn {
						return s.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	tg := router.Target{Function: "f", Version: "1"}
	done := make(chan error, 1)
	go func() { _, err := invoke(t, r, tg, `1`); done <- err }()
	<-g.entered
	if got := spill("f"); got != 0 {
		t.Fatalf("spill-over after a provisioned run = %v, want 0", got)
	}
	if _, err := invoke(t, r, tg, `2`); err != nil {
		t.Fatalf("spill-over invoke: %v", err)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := spill("f"); got != 1 {
		t.Fatalf("spill-over of f = %v, want 1", got)
	}
	// A version with no provisioned instances runs on demand by design:
	// that is not spill-over.
	if _, err := invoke(t, r, router.Target{Function: "g", Version: "1"}, `3`); err != nil {
		t.Fatal(err)
	}
	if got := spill("g"); got != 0 {
		t.Fatalf("spill-over of g (no provisioned instances) = %v, want 0", got)
	}
}

// An instance discovery lists but nothing listens at yet (Nomad lists an
// allocation before its task binds; Consul lags a check) must not be retried
// in a tight loop until the call fails: the call waits, and runs there once a
// status refresh reaches it. The instance is the capacity already asked for,
// so no more is requested.
func TestUnreachableInstanceIsSkippedUntilReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connections are refused until the instance "binds" below

	live := gatewaytest.StartInstance(t, "f", "$LATEST", 1, secret("f", "$LATEST"), nil)
	src := gatewaytest.NewSource()
	src.Set("f", "$LATEST", discovery.Instance{ID: "a", Address: addr, Function: "f", Version: "$LATEST", Group: discovery.GroupOnDemand})
	sc := &gatewaytest.Scaler{}
	r := newRouter(t, router.Config{RefreshInterval: 10 * time.Millisecond}, src, sc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	bound := make(chan struct{})
	go func() {
		defer close(bound)
		// Not gatewaytest.Eventually: it may FailNow, which this goroutine must not.
		deadline := time.Now().Add(5 * time.Second)
		for st := r.PoolStats(); len(st) != 1 || st[0].Waiting != 1; st = r.PoolStats() {
			if time.Now().After(deadline) {
				t.Errorf("the call never waited after the refused connection")
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("binding %s: %v", addr, err)
			return
		}
		srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: live.Addr()})}
		t.Cleanup(func() { srv.Close() })
		go srv.Serve(l)
	}()
	tg := router.Target{Function: "f", Version: "$LATEST"}
	out, err := invoke(t, r, tg, `"x"`)
	<-bound
	if err != nil || out != `"x"` {
		t.Fatalf("invoke = %q, %v; want it to wait for the instance to bind", out, err)
	}
	if live.Invocations() != 1 {
		t.Fatalf("instance ran %d invocations, want 1", live.Invocations())
	}
	if n := sc.Last(); n > 1 {
		t.Fatalf("scaler asked for %d on-demand instances; the listed one was already the capacity (calls %+v)", n, sc.Calls())
	}
}

// TestLaunchErrorFailsWaitersAtOnce: when the scaler says capacity cannot
// start (a broken build, an unpublished layer), every request waiting for
// it gets that error instead of waiting out ColdStartWait for a 429.
func TestLaunchErrorFailsWaitersAtOnce(t *testing.T) {
	src := gatewaytest.NewSource()
	sc := &gatewaytest.Scaler{}
	cause := errors.New(`layer "shared" has no published version`)
	unblock := make(chan struct{})
	sc.React = func(fn, v string, want int) error {
		<-unblock // until all three wait
		return fmt.Errorf("launching %s:%s: %w", fn, v, &router.LaunchError{Function: fn, Version: v, Err: cause})
	}
	// A wait this long would time the test out, not pass it.
	r := newRouter(t, router.Config{ColdStartWait: time.Hour}, src, sc)
	tg := router.Target{Function: "f", Version: "$LATEST"}
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { _, err := invoke(t, r, tg, `1`); errs <- err }()
	}
	gatewaytest.Eventually(t, 5*time.Second, func() bool {
		st := r.PoolStats()
		return len(st) == 1 && st[0].Waiting == 3
	}, "three requests waiting")
	close(unblock)
	for i := 0; i < 3; i++ {
		err := <-errs
		var le *router.LaunchError
		if !errors.As(err, &le) || le.Function != "f" || le.Version != "$LATEST" || !errors.Is(err, cause) {
			t.Fatalf("waiter %d: %v, want the LaunchError", i, err)
		}
		if want := `no execution environment of f:$LATEST could start: layer "shared" has no published version`; err.Error() != want {
			t.Fatalf("waiter %d: message %q, want %q", i, err, want)
		}
	}
	if c := r.Concurrency("f"); c != 0 {
		t.Fatalf("concurrency after failed waits = %d, want 0", c)
	}
	if st := r.PoolStats(); st[0].Waiting != 0 {
		t.Fatalf("still waiting: %+v", st)
	}
}

// TestLaunchErrorKeepsWaitersOfALiveInstance: a failed launch does not fail
// requests that a running instance will serve once it frees an environment.
func TestLaunchErrorKeepsWaitersOfALiveInstance(t *testing.T) {
	g := newGate()
	in := gatewaytest.StartInstance(t, "f", "$LATEST", 1, secret("f", "$LATEST"), g.handle)
	src := gatewaytest.NewSource()
	src.Set("f", "$LATEST", in.Discovery("i1", discovery.GroupOnDemand))
	sc := &gatewaytest.Scaler{}
	var mu sync.Mutex
	calls := 0
	sc.React = func(fn, v string, want int) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return &router.LaunchError{Function: fn, Version: v, Err: errors.New("build failed")}
		}
		return nil
	}
	r := newRouter(t, router.Config{ColdStartWait: time.Hour}, src, sc)
	tg := router.Target{Function: "f", Version: "$LATEST"}
	results := make(chan string, 3)
	run := func(p string) {
		out, err := invoke(t, r, tg, p)
		if err != nil {
			out = err.Error()
		}
		results <- out
	}
	go run(`"a"`)
	<-g.entered
	go run(`"b"`) // waits; its scale-up fails with the LaunchError
	gatewaytest.Eventually(t, 5*time.Second, func() bool { return len(sc.Calls()) == 1 }, "first scale-up")
	// A later request asks again only once the failed scale-up is handled.
	go run(`"c"`)
	gatewaytest.Eventually(t, 5*time.Second, func() bool { return len(sc.Calls()) == 2 }, "second scale-up")
	for i := 0; i < 3; i++ {
		g.release <- struct{}{}
		if i < 2 {
			<-g.entered
		}
	}
	got := map[string]bool{<-results: true, <-results: true, <-results: true}
	if !got[`"a"`] || !got[`"b"`] || !got[`"c"`] {
		t.Fatalf("results %v, want all three served by the live instance", got)
	}
}

// muteInstances listens on n loopback ports that accept connections, read
// the request and never answer. maxInFlight reports the most requests they
// held at once.
type muteInstances struct {
	addrs    []string
	mu       sync.Mutex
	inFlight int
	max      int
	total    int
}

func startMute(t *testing.T, n int) *muteInstances {
	t.Helper()
	m := &muteInstances{}
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		m.addrs = append(m.addrs, ln.Addr().String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go m.hold(c)
			}
		}()
	}
	return m
}

func (m *muteInstances) hold(c net.Conn) {
	defer c.Close()
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil || req.URL.Path != invokeapi.PathStatus {
		return
	}
	m.mu.Lock()
	m.inFlight++
	m.total++
	m.max = max(m.max, m.inFlight)
	m.mu.Unlock()
	_, _ = io.Copy(io.Discard, c) // until the caller gives up
	m.mu.Lock()
	m.inFlight--
	m.mu.Unlock()
}

func (m *muteInstances) stats() (inFlight, maxInFlight, total int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inFlight, m.max, m.total
}

// Item 11 of issue 11: a refresh round asks every instance of every pool
// for its status at once (bounded by RefreshConcurrency), so six
// instances that never answer hold a round for one StatusTimeout, not six:
// all six status calls are in flight together, and each round calls each
// instance once. With RefreshConcurrency 2, two calls run and the rest
// wait for a slot.
func TestRefreshAsksUnreachableInstancesConcurrently(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Bounded: four mute instances, two slots, calls that last a minute.
	limited := startMute(t, 4)
	lsrc := gatewaytest.NewSource()
	for i, addr := range limited.addrs {
		lsrc.Add(discovery.Instance{ID: string(rune('a' + i)), Address: addr, Function: "h", Version: "$LATEST", Group: discovery.GroupOnDemand})
	}
	lr := newRouter(t, router.Config{RefreshInterval: 10 * time.Millisecond, StatusTimeout: time.Minute, RefreshConcurrency: 2}, lsrc, nil)
	lr.Track([]router.Target{{Function: "h", Version: "$LATEST"}})
	go lr.Run(ctx)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { _, _, total := limited.stats(); return total == 2 },
		"two status calls with RefreshConcurrency 2")

	mute := startMute(t, 6)
	src := gatewaytest.NewSource()
	for i, addr := range mute.addrs {
		fn := []string{"f", "g"}[i%2]
		src.Add(discovery.Instance{ID: fn + string(rune('a'+i)), Address: addr, Function: fn, Version: "$LATEST", Group: discovery.GroupOnDemand})
	}
	r := newRouter(t, router.Config{RefreshInterval: 10 * time.Millisecond, StatusTimeout: time.Minute}, src, nil)
	r.Track([]router.Target{{Function: "f", Version: "$LATEST"}, {Function: "g", Version: "$LATEST"}})
	go r.Run(ctx)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { _, m, _ := mute.stats(); return m == 6 },
		"all six status calls in flight at once (a serial refresh holds one for a whole StatusTimeout)")
	if _, _, total := mute.stats(); total != 6 {
		t.Fatalf("%d status calls in the first round, want one per instance (6)", total)
	}

	// Meanwhile the bounded router still holds its two calls and started
	// no other.
	if inFlight, m, total := limited.stats(); inFlight != 2 || m != 2 || total != 2 {
		t.Fatalf("RefreshConcurrency 2: %d in flight, at most %d, %d in all; want 2, 2, 2", inFlight, m, total)
	}

	// With a short timeout, rounds follow each other: each asks every
	// instance again.
	quick := startMute(t, 4)
	qsrc := gatewaytest.NewSource()
	for i, addr := range quick.addrs {
		qsrc.Add(discovery.Instance{ID: string(rune('a' + i)), Address: addr, Function: "q", Version: "$LATEST", Group: discovery.GroupOnDemand})
	}
	qr := newRouter(t, router.Config{RefreshInterval: 10 * time.Millisecond, StatusTimeout: 100 * time.Millisecond}, qsrc, nil)
	qr.Track([]router.Target{{Function: "q", Version: "$LATEST"}})
	go qr.Run(ctx)
	gatewaytest.Eventually(t, 20*time.Second, func() bool { _, _, total := quick.stats(); return total >= 12 },
		"three rounds over the four mute instances")
}

// TestScaleUpAsksAgainAfterCapacityVanishedOutsideTheRouter: an operator
// scaled the on-demand group to 0 (or re-ran the job) after the router
// set it to 1. The router still believes 1, yet waiting requests must
// make it ask the scaler again instead of timing out.
func TestScaleUpAsksAgainAfterCapacityVanishedOutsideTheRouter(t *testing.T) {
	src := gatewaytest.NewSource()
	sc := &gatewaytest.Scaler{}
	var mu sync.Mutex
	started := 0
	sc.React = func(fn, v string, want int) error {
		mu.Lock()
		defer mu.Unlock()
		if want >= 1 && noInstances(src, fn, v) {
			started++
			in := gatewaytest.StartInstance(t, fn, v, 1, secret(fn, v), nil)
			src.Add(in.Discovery(fmt.Sprintf("od-%d", started), discovery.GroupOnDemand))
		}
		return nil
	}
	r := newRouter(t, router.Config{ColdStartWait: 20 * time.Second, RefreshInterval: 10 * time.Millisecond, IdleScaleIn: time.Hour}, src, sc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	tg := router.Target{Function: "f", Version: "$LATEST"}
	if out, err := invoke(t, r, tg, `"first"`); err != nil || out != `"first"` {
		t.Fatalf("first invoke = %q, %v", out, err)
	}
	// Outside the router: the group goes to 0 and its instance away.
	mu.Lock()
	src.Set("f", "$LATEST")
	mu.Unlock()
	gatewaytest.Eventually(t, 5*time.Second, func() bool { return len(r.Instances("f", "$LATEST")) == 0 }, "instance gone from the router's view")
	calls := len(sc.Calls())
	if out, err := invoke(t, r, tg, `"again"`); err != nil || out != `"again"` {
		t.Fatalf("invoke after the outside scale-in = %q, %v (scaler calls %+v)", out, err, sc.Calls())
	}
	if len(sc.Calls()) <= calls || sc.Last() != 1 {
		t.Fatalf("scaler calls %+v: the router never asked for capacity again", sc.Calls())
	}
}

func noInstances(src *gatewaytest.Source, fn, v string) bool {
	list, _ := src.Instances(context.Background(), fn, v)
	return len(list) == 0
}
