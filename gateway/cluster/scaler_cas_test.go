package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/nomad"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
)

// nomadGateway is one gateway's shared Scaler over a real nomad.Scaler
// talking HTTP to the Nomad double.
func nomadGateway(t *testing.T, srv *submittest.Server, id string, wrap func(Capacity) Capacity) *Scaler {
	t.Helper()
	inner, err := nomad.NewScaler(srv.Client(t).Jobs(), nomad.ScalerConfig{GatewayID: id}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	var c Capacity = inner
	if wrap != nil {
		c = wrap(c)
	}
	s, err := NewScaler(c, ScalerConfig{GatewayID: id}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func putFunctionJob(srv *submittest.Server, id string) {
	job := &nomadapi.Job{ID: new(id), Name: new(id)}
	for _, g := range []string{"provisioned", "ondemand"} {
		job.TaskGroups = append(job.TaskGroups, &nomadapi.TaskGroup{Name: new(g), Count: new(0)})
	}
	srv.Put(job)
}

func onDemandCount(t *testing.T, srv *submittest.Server, id string) int {
	t.Helper()
	for _, g := range srv.Job("", id).TaskGroups {
		if *g.Name == "ondemand" {
			return *g.Count
		}
	}
	t.Fatalf("job %s has no ondemand group", id)
	return 0
}

// between runs do once, right before the wrapped scaler's first write: it
// puts another gateway's write between this one's read and write.
type between struct {
	Capacity
	once sync.Once
	do   func()
}

func (b *between) SetIf(ctx context.Context, function, version string, want int, at nomad.Count) error {
	b.once.Do(b.do)
	return b.Capacity.SetIf(ctx, function, version, want, at)
}

// Item 12 of issue 11: a raise that lands between another gateway's read
// and write is not lost, whichever of the two needs more.
func TestConcurrentRaisesFromTwoGatewaysKeepTheHigher(t *testing.T) {
	for _, c := range []struct {
		name         string
		first, other int // the interleaved gateway's target, the other's
	}{
		{"the other needs more", 3, 5},
		{"the interleaved one needs more", 7, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := submittest.New(t)
			putFunctionJob(srv, "nimbus-fn")
			b := nomadGateway(t, srv, "gw-b", nil)
			a := nomadGateway(t, srv, "gw-a", func(inner Capacity) Capacity {
				return &between{Capacity: inner, do: func() {
					if err := b.OnDemand(context.Background(), "fn", "$LATEST", c.other); err != nil {
						t.Errorf("gw-b: %v", err)
					}
				}}
			})
			if err := a.OnDemand(context.Background(), "fn", "$LATEST", c.first); err != nil {
				t.Fatalf("gw-a: %v", err)
			}
			if n, want := onDemandCount(t, srv, "nimbus-fn"), max(c.first, c.other); n != want {
				t.Fatalf("on-demand count %d, want %d: an increase was lost", n, want)
			}
			if u := srv.Unexpected(); len(u) != 0 {
				t.Fatalf("requests the double does not serve: %+v", u)
			}
		})
	}
}

// Two gateways whose load keeps growing raise at the same time: the count
// ends at the highest target, and no write that landed lowered it.
func TestManyConcurrentRaisesEndAtTheHighest(t *testing.T) {
	srv := submittest.New(t)
	putFunctionJob(srv, "nimbus-fn")
	gws := []*Scaler{nomadGateway(t, srv, "gw-a", nil), nomadGateway(t, srv, "gw-b", nil)}
	const per = 12
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for i, gw := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; n <= per; n++ {
				want := 2*n - i // a: 2, 4, …, 24; b: 1, 3, …, 23
				if err := gw.OnDemand(context.Background(), "fn", "$LATEST", want); err != nil {
					errs <- fmt.Errorf("%s to %d: %w", gw.cfg.GatewayID, want, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := onDemandCount(t, srv, "nimbus-fn"); n != 2*per {
		t.Fatalf("on-demand count %d, want %d", n, 2*per)
	}
	// Every write that landed raised the count (scaling events newest first).
	st, err := gws[0].inner.Status(context.Background(), "fn", "$LATEST")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range st.Events {
		if *e.Count <= e.PreviousCount {
			t.Fatalf("event %d lowered the count from %d to %d", i, e.PreviousCount, *e.Count)
		}
	}
	if len(st.Events) == 0 {
		t.Fatal("no scaling events")
	}
	if u := srv.Unexpected(); len(u) != 0 {
		t.Fatalf("requests the double does not serve: %+v", u)
	}
}
