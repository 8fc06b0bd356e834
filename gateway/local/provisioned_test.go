package local_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/local"
	"github.com/nimbus-fn/nimbus/specs"
)

// provLauncher is a launcher double that can also start provisioned
// instances; fail makes LaunchProvisioned refuse.
type provLauncher struct {
	*launcher
	mu          sync.Mutex
	fail        bool
	provisioned []string
}

func (l *provLauncher) LaunchProvisioned(ctx context.Context, fn *specs.Function, version string) (discovery.Instance, error) {
	l.mu.Lock()
	fail := l.fail
	l.mu.Unlock()
	if fail {
		return discovery.Instance{}, errors.New("init failed")
	}
	in, err := l.Launch(ctx, fn, version)
	if err != nil {
		return in, err
	}
	l.mu.Lock()
	l.provisioned = append(l.provisioned, in.ID)
	l.mu.Unlock()
	in.Group = discovery.GroupProvisioned
	return in, nil
}

func (l *provLauncher) stoppedIDs() []string {
	l.launcher.mu.Lock()
	defer l.launcher.mu.Unlock()
	return slices.Clone(l.stopped)
}

// provCat serves one function "p" with the given spec; err makes Function
// fail for another reason than a missing function.
type provCat struct {
	mu  sync.Mutex
	s   *catalog.Snapshot
	err error
}

func (c *provCat) set(fn *specs.Function) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = catalog.NewSnapshot(catalog.FromFile(&specs.File{Functions: []*specs.Function{fn}}))
}

func (c *provCat) Function(_ context.Context, name string) (*catalog.Function, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	return c.s.Function(name)
}

func (c *provCat) Functions(context.Context) ([]*catalog.Function, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.Functions(), nil
}

func provSpec(mem, min int) *specs.Function {
	fn := &specs.Function{Name: "p", MemoryMB: mem, EnvironmentsPerInstance: 2}
	if min >= 0 {
		fn.Provisioned = &specs.ProvisionedConcurrency{Min: min, Max: min}
	}
	return fn
}

func groups(list []discovery.Instance) (prov, od []string) {
	for _, in := range list {
		if in.Group == discovery.GroupProvisioned {
			prov = append(prov, in.ID)
		} else {
			od = append(od, in.ID)
		}
	}
	return prov, od
}

func TestProvisionKeepsInstancesAndReplacesThemOnSpecChange(t *testing.T) {
	l := &provLauncher{launcher: &launcher{t: t, specs: map[string]*specs.Function{}}}
	c := &provCat{}
	c.set(provSpec(128, 3)) // 3 environments at 2 per instance: 2 instances
	p := local.New(l, c, nil)
	ctx := context.Background()
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ := p.Instances(ctx, "p", catalog.Latest)
	prov, od := groups(list)
	if len(prov) != 2 || len(od) != 0 || !sameSet(l.provisioned, prov) {
		t.Fatalf("after Provision: provisioned %v on-demand %v (launched provisioned %v)", prov, od, l.provisioned)
	}
	// Idempotent: a second pass launches and stops nothing.
	if err := p.Provision(ctx); err != nil || len(l.provisioned) != 2 || len(l.stoppedIDs()) != 0 {
		t.Fatalf("second Provision: %v, launched %v, stopped %v", err, l.provisioned, l.stoppedIDs())
	}
	// On-demand capacity is separate: OnDemand adds to it and the
	// provisioned instances stay listed first.
	if err := p.OnDemand(ctx, "p", catalog.Latest, 1); err != nil {
		t.Fatal(err)
	}
	list, _ = p.Instances(ctx, "p", catalog.Latest)
	if len(list) != 3 || list[0].Group != discovery.GroupProvisioned || list[2].Group != discovery.GroupOnDemand {
		t.Fatalf("with one on-demand instance: %+v", list)
	}
	if err := p.OnDemand(ctx, "p", catalog.Latest, 0); err != nil {
		t.Fatal(err)
	}
	if list, _ = p.Instances(ctx, "p", catalog.Latest); len(list) != 2 {
		t.Fatalf("on-demand scale-in touched provisioned instances: %+v", list)
	}

	// A spec change replaces both provisioned instances.
	c.set(provSpec(256, 3))
	p.Refresh(ctx)
	list, _ = p.Instances(ctx, "p", catalog.Latest)
	prov, _ = groups(list)
	if len(prov) != 2 || slices.Contains(prov, l.provisioned[0]) || slices.Contains(prov, l.provisioned[1]) {
		t.Fatalf("after a spec change: provisioned %v, launched %v", prov, l.provisioned)
	}
	for _, id := range prov {
		if l.specs[id].MemoryMB != 256 {
			t.Fatalf("replacement %s runs memory %d, want 256", id, l.specs[id].MemoryMB)
		}
	}
	for _, id := range l.provisioned[:2] {
		if !slices.Contains(l.stoppedIDs(), id) {
			t.Fatalf("outdated %s not stopped: %v", id, l.stoppedIDs())
		}
	}
	// Raising min adds instances and keeps the running ones (the block
	// says how many run, not what they run).
	running := slices.Clone(prov)
	stopped := len(l.stoppedIDs())
	c.set(provSpec(256, 5))
	p.Refresh(ctx)
	list, _ = p.Instances(ctx, "p", catalog.Latest)
	prov, _ = groups(list)
	if len(prov) != 3 || !slices.Contains(prov, running[0]) || !slices.Contains(prov, running[1]) || len(l.stoppedIDs()) != stopped {
		t.Fatalf("after min 3 → 5: provisioned %v (was %v), stopped %v", prov, running, l.stoppedIDs())
	}
	// Lowering min stops the surplus; dropping the block stops the rest.
	c.set(provSpec(256, 1))
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ = p.Instances(ctx, "p", catalog.Latest); len(list) != 1 {
		t.Fatalf("after min=1: %+v", list)
	}
	c.set(provSpec(256, -1))
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ = p.Instances(ctx, "p", catalog.Latest); len(list) != 0 {
		t.Fatalf("without provisioned_concurrency: %+v", list)
	}
	if n := len(l.stoppedIDs()); n != len(l.provisioned)+1 { // + the on-demand one
		t.Fatalf("stopped %v, launched provisioned %v", l.stoppedIDs(), l.provisioned)
	}
}

func TestProvisionRetriesAFailedLaunchAndCloseStopsProvisioned(t *testing.T) {
	l := &provLauncher{launcher: &launcher{t: t, specs: map[string]*specs.Function{}}, fail: true}
	c := &provCat{}
	c.set(provSpec(128, 2))
	p := local.New(l, c, nil)
	ctx := context.Background()
	if err := p.Provision(ctx); err == nil {
		t.Fatal("Provision with a failing launcher returned no error")
	}
	if list, _ := p.Instances(ctx, "p", catalog.Latest); len(list) != 0 {
		t.Fatalf("failed launch listed: %+v", list)
	}
	l.mu.Lock()
	l.fail = false
	l.mu.Unlock()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.RunProvisioned(runCtx, 10*time.Millisecond); close(done) }()
	gatewaytest.Eventually(t, 5*time.Second, func() bool {
		list, _ := p.Instances(ctx, "p", catalog.Latest)
		return len(list) == 1
	}, "RunProvisioned never retried the launch")
	stop()
	<-done
	if err := p.Close(ctx); err != nil || !slices.Equal(l.stoppedIDs(), l.provisioned) {
		t.Fatalf("close: %v, stopped %v, provisioned %v", err, l.stoppedIDs(), l.provisioned)
	}
	if err := p.Provision(ctx); err != nil || len(l.provisioned) != 1 {
		t.Fatalf("Provision after Close: %v, launched %v", err, l.provisioned)
	}
}

func TestProvisionKeepsInstancesWhileTheCatalogIsUnreadable(t *testing.T) {
	l := &provLauncher{launcher: &launcher{t: t, specs: map[string]*specs.Function{}}}
	c := &provCat{}
	c.set(provSpec(128, 2))
	p := local.New(l, c, nil)
	ctx := context.Background()
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.err = errors.New("catalog store unreachable")
	c.mu.Unlock()
	if err := p.Provision(ctx); err == nil {
		t.Fatal("Provision hid the catalog error")
	}
	if list, _ := p.Instances(ctx, "p", catalog.Latest); len(list) != 1 || len(l.stoppedIDs()) != 0 {
		t.Fatalf("after a catalog error: %+v, stopped %v", list, l.stoppedIDs())
	}
	// The function is deleted: its provisioned instances stop.
	c.mu.Lock()
	c.err = nil
	c.s = catalog.NewSnapshot(nil)
	c.mu.Unlock()
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := p.Instances(ctx, "p", catalog.Latest); len(list) != 0 || len(l.stoppedIDs()) != 1 {
		t.Fatalf("after deleting the function: %+v, stopped %v", list, l.stoppedIDs())
	}
}

func TestProvisionWithoutProvisionedLauncherLaunchesNothing(t *testing.T) {
	l := &launcher{t: t, specs: map[string]*specs.Function{}}
	c := &provCat{}
	c.set(provSpec(128, 4))
	p := local.New(l, c, nil)
	if err := p.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	if list, _ := p.Instances(context.Background(), "p", catalog.Latest); len(list) != 0 || l.n != 0 {
		t.Fatalf("launched %d, listed %+v", l.n, list)
	}
}

func TestProvisionedInstancesFollowScheduleWindows(t *testing.T) {
	spec := &specs.Function{Name: "s", EnvironmentsPerInstance: 4, Provisioned: &specs.ProvisionedConcurrency{
		Min: 2, Max: 20,
		Schedules: []*specs.Schedule{
			// 09:00 on weekdays, for 8 hours, in Berlin time.
			{Name: "office", Cron: "0 9 * * MON-FRI", Duration: "8h", Timezone: "Europe/Berlin", Min: 10},
			// Midnight UTC for the default hour.
			{Name: "batch", Cron: "0 0 * * *", Min: 17},
		},
	}}
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		now  string
		want int
	}{
		{"2026-11-25T07:59:59Z", 1},      // Wednesday 08:59:59 in Berlin: floor 2 envs
		{"2026-11-25T08:00:00Z", 3},      // 09:00 Berlin: 10 envs → 3 instances
		{"2026-11-25T15:59:59Z", 3},      // 16:59:59 Berlin: still open
		{"2026-11-25T16:00:00Z", 1},      // 17:00 Berlin: closed
		{"2026-11-28T10:00:00Z", 1},      // Saturday
		{"2026-11-26T00:30:00Z", 5},      // batch window: 17 envs → 5
		{"2026-11-26T01:00:00Z", 1},      // batch window over after 1h
		{"2026-11-25T23:59:59Z", 1},      //
		{"2026-07-01T07:00:00Z", 3},      // summer: 09:00 Berlin is 07:00 UTC
		{"2026-07-01T06:59:00Z", 1},      //
		{"2026-11-25T08:00:00+01:00", 1}, // 07:00Z is 08:00 Berlin
	} {
		got, err := local.ProvisionedInstances(spec, at(c.now))
		if err != nil || got != c.want {
			t.Errorf("ProvisionedInstances at %s = %d, %v; want %d", c.now, got, err, c.want)
		}
	}
	bad := &specs.Function{Name: "b", Provisioned: &specs.ProvisionedConcurrency{Min: 1,
		Schedules: []*specs.Schedule{{Name: "x", Cron: "not cron", Min: 5}}}}
	if got, err := local.ProvisionedInstances(bad, time.Now()); err == nil || got != 1 {
		t.Fatalf("bad cron: %d, %v; want the floor and an error", got, err)
	}

	// The pool follows the clock it is given.
	l := &provLauncher{launcher: &launcher{t: t, specs: map[string]*specs.Function{}}}
	c := &provCat{}
	spec.Name = "p"
	c.set(spec)
	p := local.New(l, c, nil)
	var mu sync.Mutex
	now := at("2026-11-25T07:00:00Z")
	p.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	ctx := context.Background()
	count := func() int {
		if err := p.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		list, _ := p.Instances(ctx, "p", catalog.Latest)
		return len(list)
	}
	if n := count(); n != 1 {
		t.Fatalf("before the window: %d instances, want 1", n)
	}
	mu.Lock()
	now = at("2026-11-25T09:00:00Z")
	mu.Unlock()
	if n := count(); n != 3 {
		t.Fatalf("in the window: %d instances, want 3", n)
	}
	mu.Lock()
	now = at("2026-11-25T17:00:00Z")
	mu.Unlock()
	if n := count(); n != 1 {
		t.Fatalf("after the window: %d instances, want 1", n)
	}
}

// sameSet reports whether a and b hold the same ids in any order: the pool
// launches a version's provisioned instances concurrently.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
