package slots_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/gateway/slots"
)

// member is one gateway's Slots on its own connection to the shared NATS.
type member struct {
	nc    *nats.Conn
	slots *slots.Slots
	stop  context.CancelFunc
}

func join(t *testing.T, srv *natsembed.Server, owner string, lease time.Duration) *member {
	t.Helper()
	nc, err := srv.Connect(owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := slots.Open(context.Background(), js, slots.Config{Owner: owner, Lease: lease, ReleaseTimeout: time.Second}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go s.Run(ctx)
	return &member{nc: nc, slots: s, stop: cancel}
}

func startNATS(t *testing.T) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Many acquirers on two members never hold more than the limit at once,
// and every acquirer that was refused saw all slots taken.
func TestNeverMoreThanTheLimitAcrossMembers(t *testing.T) {
	srv := startNATS(t)
	a, b := join(t, srv, "gw-a", 5*time.Second), join(t, srv, "gw-b", 5*time.Second)
	const limit = 3
	var holding, most atomic.Int32
	var granted, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		m := []*member{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, ok, err := m.slots.Acquire(context.Background(), "fn", limit)
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				refused.Add(1)
				return
			}
			granted.Add(1)
			n := holding.Add(1)
			for {
				old := most.Load()
				if n <= old || most.CompareAndSwap(old, n) {
					break
				}
			}
			holding.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if most.Load() > limit {
		t.Fatalf("%d slots held at once, limit %d", most.Load(), limit)
	}
	if granted.Load() == 0 || granted.Load()+refused.Load() != 40 {
		t.Fatalf("granted %d, refused %d", granted.Load(), refused.Load())
	}
	if a.slots.Held()+b.slots.Held() != 0 {
		t.Fatalf("slots still held after every release: %d + %d", a.slots.Held(), b.slots.Held())
	}
	// Everything released: the limit is free again (b may still remember
	// finding the function full, for FullFor, when a's releases freed it).
	var rels []func()
	for range limit {
		gatewaytest.Eventually(t, 5*time.Second, func() bool {
			rel, ok, err := b.slots.Acquire(context.Background(), "fn", limit)
			if err != nil {
				t.Fatalf("acquire after release: %v", err)
			}
			if ok {
				rels = append(rels, rel)
			}
			return ok
		}, "a slot to be free after every release")
	}
	if _, ok, err := a.slots.Acquire(context.Background(), "fn", limit); ok || err != nil {
		t.Fatalf("a fourth slot of three: %v %v", ok, err)
	}
	for _, r := range rels {
		r()
	}
}

// A held slot outlives many leases while its holder renews it; the slots of
// a member that is gone lapse within the lease and are taken again.
func TestLeasesRenewAndLapseWhenTheHolderDies(t *testing.T) {
	srv := startNATS(t)
	const lease = time.Second
	a, b := join(t, srv, "gw-a", lease), join(t, srv, "gw-b", lease)
	relA, ok, err := a.slots.Acquire(context.Background(), "fn", 2)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	relB, ok, err := b.slots.Acquire(context.Background(), "fn", 2)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	// Renewed: after three leases both are still held.
	holds(t, 3*lease, lease/4, func() {
		if _, ok, err := b.slots.Acquire(context.Background(), "fn", 2); ok || err != nil {
			t.Fatalf("a third slot while two are held and renewed: %v %v", ok, err)
		}
	})
	// gw-a dies without releasing: its connection and renewals stop.
	a.stop()
	a.nc.Close()
	var relB2 func()
	gatewaytest.Eventually(t, 5*lease, func() bool {
		r, ok, err := b.slots.Acquire(context.Background(), "fn", 2)
		if err != nil {
			t.Fatal(err)
		}
		relB2 = r
		return ok
	}, "gw-a's slot to lapse and be taken by gw-b")
	if b.slots.Held() != 2 {
		t.Fatalf("gw-b holds %d slots, want 2", b.slots.Held())
	}
	relB()
	relB2()
	relA() // after its lease lapsed: deletes nothing of anyone's
	r, ok, err := b.slots.Acquire(context.Background(), "fn", 2)
	if err != nil || !ok {
		t.Fatalf("after all releases: %v %v", ok, err)
	}
	r()
}

// After a scan found every slot taken, Acquire answers "full" without
// asking NATS until FullFor passes or this member frees a slot.
func TestFullFunctionIsRememberedBriefly(t *testing.T) {
	srv := startNATS(t)
	nc, err := srv.Connect("gw-a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A long FullFor makes the remembered answer observable.
	a, err := slots.Open(context.Background(), js, slots.Config{Owner: "gw-a", Lease: 5 * time.Second, FullFor: time.Hour}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	b := join(t, srv, "gw-b", 5*time.Second)
	relB, ok, err := b.slots.Acquire(context.Background(), "fn", 1)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, err := a.Acquire(context.Background(), "fn", 1); ok || err != nil {
		t.Fatalf("a slot while gw-b holds the only one: %v %v", ok, err)
	}
	relB()
	// gw-b freed it, but gw-a remembers "full" (it would for FullFor).
	if _, ok, err := a.Acquire(context.Background(), "fn", 1); ok || err != nil {
		t.Fatalf("within FullFor: %v %v", ok, err)
	}
	// Another function is not affected.
	relOther, ok, err := a.Acquire(context.Background(), "other", 1)
	if err != nil || !ok {
		t.Fatalf("another function: %v %v", ok, err)
	}
	relOther()
	// A release on gw-a forgets what it remembered of that function.
	relA, ok, err := a.Acquire(context.Background(), "fn2", 2)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	relB, ok, err = b.slots.Acquire(context.Background(), "fn2", 2)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer relB()
	if _, ok, err := a.Acquire(context.Background(), "fn2", 2); ok || err != nil {
		t.Fatalf("a third slot of two: %v %v", ok, err)
	}
	relA()
	relA, ok, err = a.Acquire(context.Background(), "fn2", 2)
	if err != nil || !ok {
		t.Fatalf("after gw-a freed its own slot: %v %v", ok, err)
	}
	relA()
}

// A member configured with another lease than the bucket's renews by the
// bucket's, so its slots never lapse under it.
func TestAnExistingBucketsLeaseWins(t *testing.T) {
	srv := startNATS(t)
	a := join(t, srv, "gw-a", time.Second) // creates the bucket: max age 1s
	b := join(t, srv, "gw-b", time.Minute)
	rel, ok, err := b.slots.Acquire(context.Background(), "fn", 1)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer rel()
	// Three of the bucket's leases later the slot is still gw-b's.
	holds(t, 3*time.Second, 250*time.Millisecond, func() {
		if _, ok, err := a.slots.Acquire(context.Background(), "fn", 1); err != nil || ok {
			t.Fatalf("gw-a took gw-b's renewed slot: %v %v", ok, err)
		}
	})
}

// holds runs probe every period for the whole of within: what must stay
// true over time (a renewed lease), probed, not waited for.
func holds(t *testing.T, within, period time.Duration, probe func()) {
	t.Helper()
	tick := time.NewTicker(period)
	defer tick.Stop()
	end := time.After(within)
	for {
		probe()
		select {
		case <-end:
			return
		case <-tick.C:
		}
	}
}
