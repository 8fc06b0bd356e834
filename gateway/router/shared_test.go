package router_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/gateway/slots"
)

// sharedRouter is one gateway's router whose reserved concurrency is held
// in slots on the shared NATS through its own connection.
type sharedRouter struct {
	*router.Router
	nc    *nats.Conn
	renew context.CancelFunc
}

func newSharedRouter(t *testing.T, srv *natsembed.Server, name string, src *gatewaytest.Source, lease time.Duration) *sharedRouter {
	t.Helper()
	return newSharedRouterWith(t, srv, name, src, lease, router.Config{}, false)
}

func newSharedRouterWith(t *testing.T, srv *natsembed.Server, name string, src *gatewaytest.Source, lease time.Duration,
	cfg router.Config, account bool) *sharedRouter {
	t.Helper()
	nc, err := srv.Connect(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := slots.Open(context.Background(), js, slots.Config{Owner: name, Lease: lease, ReleaseTimeout: time.Second}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go sl.Run(ctx)
	r := newRouter(t, cfg, src, nil)
	r.SetShared(sl, account)
	return &sharedRouter{Router: r, nc: nc, renew: cancel}
}

// Item 12 of issue 11: two gateways (routers) sharing one NATS admit a
// function's reserved concurrency together, not each; the slots of one
// that dies come back within the lease.
func TestReservedConcurrencyHoldsAcrossTwoRouters(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	g := newGate()
	// One instance with room for all ten: only admission limits them.
	in := gatewaytest.StartInstance(t, "f", "$LATEST", 10, secret("f", "$LATEST"), g.handle)
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(g.release) }) }
	t.Cleanup(releaseAll) // before the instance closes, should the test fail early
	src := gatewaytest.NewSource()
	src.Set("f", "$LATEST", in.Discovery("i1", discovery.GroupOnDemand))
	const lease = 3 * time.Second
	a := newSharedRouter(t, srv, "gw-a", src, lease)
	b := newSharedRouter(t, srv, "gw-b", src, lease)
	two := 2
	tg := router.Target{Function: "f", Version: "$LATEST", Reserved: &two, EnvironmentsPerInstance: 10}

	type result struct{ err error }
	results := make(chan result, 10)
	var wg sync.WaitGroup
	for i := range 10 {
		r := []*sharedRouter{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := invoke(t, r.Router, tg, `{}`)
			results <- result{err}
		}()
	}
	// Eight are refused while two run (they wait at the gate); a third
	// one entering the function fails the test at once.
	throttled, entered := 0, 0
	for throttled < 8 || entered < 2 {
		select {
		case res := <-results:
			if reason := throttleReason(res.err); reason != router.ReasonReservedFunctionConcurrentInvocationLimitExceeded {
				t.Fatalf("invocation ended with %v before any was released; want a reserved-concurrency throttle", res.err)
			}
			throttled++
		case <-g.entered:
			if entered++; entered > 2 {
				t.Fatalf("%d invocations running at once, reserved concurrency 2", entered)
			}
		}
	}
	if busy := in.Busy(); busy != 2 {
		t.Fatalf("%d invocations running at the instance, reserved concurrency 2", busy)
	}
	releaseAll()
	wg.Wait()
	close(results)
	for res := range results {
		if res.err != nil {
			t.Fatalf("an admitted invocation failed: %v", res.err)
		}
	}
	if m := in.MaxBusy(); m != 2 || in.Invocations() != 2 {
		t.Fatalf("instance saw %d at once and %d in all; want 2 and 2", m, in.Invocations())
	}

	// gw-a takes a slot of h and dies holding it: its renewals and its
	// NATS connection end, so its release cannot reach NATS either.
	in2 := gatewaytest.StartInstance(t, "h", "$LATEST", 10, secret("h", "$LATEST"), nil)
	src.Set("h", "$LATEST", in2.Discovery("i2", discovery.GroupOnDemand))
	th := router.Target{Function: "h", Version: "$LATEST", Reserved: &two, EnvironmentsPerInstance: 10}
	held, err := a.Invoke(context.Background(), th, &invokeapi.Request{Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	a.renew()
	a.nc.Close()
	_ = held.Body.Close()
	// Holding two at once through gw-b: one now, both once gw-a's lease
	// lapsed (measured by the NATS server).
	both := func() bool {
		r1, err := b.Invoke(context.Background(), th, &invokeapi.Request{Payload: []byte(`{}`)})
		if err != nil {
			t.Fatalf("gw-b's first slot: %v", err)
		}
		defer r1.Body.Close()
		r2, err := b.Invoke(context.Background(), th, &invokeapi.Request{Payload: []byte(`{}`)})
		if throttleReason(err) != "" {
			return false
		}
		if err != nil {
			t.Fatalf("gw-b's second slot: %v", err)
		}
		_ = r2.Body.Close()
		return true
	}
	if both() {
		t.Fatal("gw-b held two slots while gw-a's lease still ran")
	}
	gatewaytest.Eventually(t, 5*lease, both, "gw-a's slot to lapse and come back to gw-b")
}

// With the account shared, the unreserved pool holds across routers too;
// without, a function with a reservation is the only thing shared.
func TestUnreservedPoolHoldsAcrossTwoRoutersWhenShared(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	g := newGate()
	in := gatewaytest.StartInstance(t, "u", "$LATEST", 10, secret("u", "$LATEST"), g.handle)
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(g.release) }) }
	t.Cleanup(releaseAll)
	src := gatewaytest.NewSource()
	src.Set("u", "$LATEST", in.Discovery("i1", discovery.GroupOnDemand))
	// An unreserved pool of 3 on each router.
	cfg := router.Config{AccountConcurrency: 3, UnreservedMin: 3}
	a := newSharedRouterWith(t, srv, "gw-a", src, 5*time.Second, cfg, true)
	b := newSharedRouterWith(t, srv, "gw-b", src, 5*time.Second, cfg, true)
	tg := router.Target{Function: "u", Version: "$LATEST", EnvironmentsPerInstance: 10}
	results := make(chan error, 6)
	for i := range 6 {
		r := []*sharedRouter{a, b}[i%2]
		go func() {
			_, err := invoke(t, r.Router, tg, `{}`)
			results <- err
		}()
	}
	throttled, entered := 0, 0
	for throttled < 3 || entered < 3 {
		select {
		case err := <-results:
			if throttleReason(err) != router.ReasonConcurrentInvocationLimitExceeded {
				t.Fatalf("invocation ended with %v before any was released; want an account throttle", err)
			}
			throttled++
		case <-g.entered:
			if entered++; entered > 3 {
				t.Fatalf("%d unreserved invocations running at once, pool 3", entered)
			}
		}
	}
	releaseAll()
	for range 3 {
		if err := <-results; err != nil {
			t.Fatalf("an admitted invocation failed: %v", err)
		}
	}
	if m := in.MaxBusy(); m != 3 {
		t.Fatalf("instance saw %d at once, want 3", m)
	}
}
