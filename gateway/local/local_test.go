package local_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/local"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/specs"
)

// launcher starts instance doubles and records stops.
type launcher struct {
	t       *testing.T
	mu      sync.Mutex
	n       int
	stopped []string
	specs   map[string]*specs.Function
}

func (l *launcher) Launch(_ context.Context, fn *specs.Function, version string) (discovery.Instance, error) {
	l.mu.Lock()
	l.n++
	id := fmt.Sprintf("i%d", l.n)
	l.specs[id] = fn
	l.mu.Unlock()
	in := gatewaytest.StartInstance(l.t, fn.Name, version, fn.EnvironmentsPerInstance, "", nil)
	return in.Discovery(id, discovery.GroupOnDemand), nil
}

func (l *launcher) Stop(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = append(l.stopped, id)
	return nil
}

type cat struct {
	mu sync.Mutex
	s  *catalog.Snapshot
}

func (c *cat) Function(_ context.Context, name string) (*catalog.Function, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.Function(name)
}

func (c *cat) Functions(context.Context) ([]*catalog.Function, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.Functions(), nil
}

func (c *cat) set(mem int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = catalog.NewSnapshot(catalog.FromFile(&specs.File{Functions: []*specs.Function{
		{Name: "f", MemoryMB: mem, EnvironmentsPerInstance: 2},
	}}))
}

func TestPoolScalesAndReplacesOutdated(t *testing.T) {
	l := &launcher{t: t, specs: map[string]*specs.Function{}}
	c := &cat{}
	c.set(128)
	p := local.New(l, c, nil)
	ctx := context.Background()
	if err := p.OnDemand(ctx, "f", catalog.Latest, 2); err != nil {
		t.Fatal(err)
	}
	list, _ := p.Instances(ctx, "f", catalog.Latest)
	if ids := gatewaytest.SortedIDs(list); len(ids) != 2 {
		t.Fatalf("instances after want=2: %v", ids)
	}
	if err := p.OnDemand(ctx, "f", catalog.Latest, 1); err != nil {
		t.Fatal(err)
	}
	list, _ = p.Instances(ctx, "f", catalog.Latest)
	if len(list) != 1 || len(l.stopped) != 1 {
		t.Fatalf("after want=1: %d running, stopped %v", len(list), l.stopped)
	}
	c.set(256)
	p.Refresh(ctx)
	list, _ = p.Instances(ctx, "f", catalog.Latest)
	if len(list) != 1 || l.specs[list[0].ID].MemoryMB != 256 || len(l.stopped) != 2 {
		t.Fatalf("after spec change: %v, stopped %v", list, l.stopped)
	}
	if err := p.OnDemand(ctx, "missing", catalog.Latest, 1); err == nil {
		t.Fatal("launching an unknown function succeeded")
	}
	if err := p.Close(ctx); err != nil || len(l.stopped) != 3 {
		t.Fatalf("close: %v, stopped %v", err, l.stopped)
	}
}

func TestPoolReplacesInstancesWhenCodeStampChanges(t *testing.T) {
	l := &launcher{t: t, specs: map[string]*specs.Function{}}
	c := &cat{}
	c.set(128)
	p := local.New(l, c, nil)
	var mu sync.Mutex
	stamp := "v1"
	p.SetCodeStamp(func(*specs.Function) string { mu.Lock(); defer mu.Unlock(); return stamp })
	ctx := context.Background()
	if err := p.OnDemand(ctx, "f", catalog.Latest, 1); err != nil {
		t.Fatal(err)
	}
	p.Refresh(ctx)
	if len(l.stopped) != 0 {
		t.Fatalf("refresh without changes stopped %v", l.stopped)
	}
	mu.Lock()
	stamp = "v2"
	mu.Unlock()
	p.Refresh(ctx)
	list, _ := p.Instances(ctx, "f", catalog.Latest)
	if len(l.stopped) != 1 || len(list) != 1 || list[0].ID == "i1" {
		t.Fatalf("after a code change: running %v, stopped %v", list, l.stopped)
	}
}

func TestPoolCapacityContract(t *testing.T) {
	c := &cat{}
	c.set(128)
	gatewaytest.CapacityContract(t, local.New(&launcher{t: t, specs: map[string]*specs.Function{}}, c, nil), "f", catalog.Latest, 5*time.Second)
}

// brokenLauncher fails every launch, as dev's launcher does for code that
// does not build or a layer that is not published.
type brokenLauncher struct{ err error }

func (b brokenLauncher) Launch(context.Context, *specs.Function, string) (discovery.Instance, error) {
	return discovery.Instance{}, b.err
}

func (brokenLauncher) Stop(context.Context, string) error { return nil }

// TestFailedLaunchReachesTheCallerAtOnce: a launch failure is a
// router.LaunchError, so a request waiting on a router over the pool gets
// it (with the launcher's reason) instead of a 429 after ColdStartWait.
func TestFailedLaunchReachesTheCallerAtOnce(t *testing.T) {
	c := &cat{}
	c.set(128)
	cause := errors.New("function f version $LATEST: layer shared has no published version (nimbus layer publish)")
	p := local.New(brokenLauncher{err: cause}, c, nil)
	err := p.OnDemand(context.Background(), "f", catalog.Latest, 2)
	var le *router.LaunchError
	if !errors.As(err, &le) || le.Function != "f" || le.Version != catalog.Latest || !errors.Is(err, cause) {
		t.Fatalf("OnDemand: %v, want a router.LaunchError with the cause", err)
	}

	r := router.New(router.Config{ColdStartWait: time.Hour}, p, p, metrics.New(), nil)
	t.Cleanup(r.Close)
	_, err = r.Invoke(context.Background(), router.Target{Function: "f", Version: catalog.Latest}, &invokeapi.Request{Payload: []byte(`{}`)})
	want := "no execution environment of f:$LATEST could start: " + cause.Error()
	if !errors.As(err, &le) || err.Error() != want {
		t.Fatalf("Invoke: %v\nwant: %s", err, want)
	}
}
