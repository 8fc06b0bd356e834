package local

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/cronexpr"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/specs"
)

// ProvisionedLauncher is a Launcher that can also start instances of a
// version's provisioned group: the instance initialises every environment
// at start with initialization type "provisioned-concurrency"
// (AWS_LAMBDA_INITIALIZATION_TYPE), and LaunchProvisioned returns only once
// all of them finished init (an instance whose init fails is stopped and
// its error returned). The instance is reported with
// discovery.GroupProvisioned.
type ProvisionedLauncher interface {
	LaunchProvisioned(ctx context.Context, fn *specs.Function, version string) (discovery.Instance, error)
}

// Lister is the part of a catalog Provision reads to find every version
// with provisioned concurrency.
type Lister interface {
	Functions(ctx context.Context) ([]*catalog.Function, error)
}

// defaultScheduleDuration is a schedule window's length when the spec
// leaves it out (specs.Schedule: default "1h").
const defaultScheduleDuration = time.Hour

// ProvisionedInstances is how many provisioned instances spec wants at now:
// ceil(envs / environments_per_instance), where envs is the block's min, or
// the largest min among the schedule windows open at now when that is
// higher. A window opens at each start its cron expression gives (in its
// time zone, UTC by default) and stays open for its duration, as the
// autoscaler's strategy plugin reads it in a cluster.
func ProvisionedInstances(spec *specs.Function, now time.Time) (int, error) {
	if spec == nil || spec.Provisioned == nil {
		return 0, nil
	}
	envs := spec.Provisioned.Min
	var errs []error
	for _, s := range spec.Provisioned.Schedules {
		open, err := scheduleOpen(s, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", s.Name, err))
			continue
		}
		if open && s.Min > envs {
			envs = s.Min
		}
	}
	per := max(spec.EnvironmentsPerInstance, 1)
	return (max(envs, 0) + per - 1) / per, errors.Join(errs...)
}

// scheduleOpen reports whether a window of s that started in
// (now-duration, now] is still open.
func scheduleOpen(s *specs.Schedule, now time.Time) (bool, error) {
	expr, err := cronexpr.Parse(s.Cron)
	if err != nil {
		return false, fmt.Errorf("cron %q: %w", s.Cron, err)
	}
	d := defaultScheduleDuration
	if s.Duration != "" {
		if d, err = time.ParseDuration(s.Duration); err != nil {
			return false, fmt.Errorf("duration %q: %w", s.Duration, err)
		}
	}
	loc := time.UTC
	if s.Timezone != "" {
		if loc, err = time.LoadLocation(s.Timezone); err != nil {
			return false, fmt.Errorf("timezone %q: %w", s.Timezone, err)
		}
	}
	local := now.In(loc)
	start := expr.Next(local.Add(-d))
	return !start.IsZero() && !start.After(local), nil
}

// SetClock replaces time.Now for schedule windows (tests). Call before use.
func (p *Pool) SetClock(now func() time.Time) { p.now = now }

// Provision brings every version's provisioned instances to what its spec
// wants now (ProvisionedInstances): it launches missing ones through the
// launcher's LaunchProvisioned, replaces those started from an outdated spec
// or code (new ones first, so the version keeps warm capacity while they
// initialise) and stops the rest, including those of versions no longer in
// the catalog. Versions are reconciled concurrently, each under its own lock
// and against the spec the catalog holds once that lock is taken, so
// overlapping calls (a reload during a RunProvisioned tick) never act on a
// stale spec. The error joins every version's problems.
func (p *Pool) Provision(ctx context.Context) error {
	fns, err := p.lister.Functions(ctx)
	if err != nil {
		return fmt.Errorf("listing functions for provisioned concurrency: %w", err)
	}
	keys := map[key]bool{}
	for _, fn := range fns {
		for ver, s := range fn.Versions {
			if s != nil && s.Provisioned != nil {
				keys[key{fn.Name, ver}] = true
			}
		}
	}
	p.mu.Lock()
	for k, v := range p.versions {
		if len(v.provisioned) > 0 {
			keys[k] = true // maybe gone from the catalog, or no longer provisioned
		}
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	var emu sync.Mutex
	var errs []error
	for k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.reconcileProvisioned(ctx, k); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// provisionedSpec is k's spec as the catalog holds it now (nil when the
// function or version is gone); other lookup errors are returned.
func (p *Pool) provisionedSpec(ctx context.Context, k key) (*specs.Function, error) {
	fn, err := p.catalog.Function(ctx, k.function)
	if errors.Is(err, catalog.ErrFunctionNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s for provisioned concurrency: %w", k.function, err)
	}
	return fn.Versions[k.version], nil
}

// ProvisionedStatus reports how many provisioned instances of a version
// finished init and run, and the error of its last reconcile (a failed
// launch), nil when it succeeded.
func (p *Pool) ProvisionedStatus(function, version string) (ready int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.versions[key{function, version}]
	if v == nil {
		return 0, nil
	}
	return len(v.provisioned), v.provisionErr
}

// RunProvisioned calls Provision now and then every interval until ctx ends,
// so schedule windows open and close and failed launches are retried.
// Errors are logged.
func (p *Pool) RunProvisioned(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := p.Provision(ctx); err != nil && ctx.Err() == nil {
			p.logger.Error("provisioning instances", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcileProvisioned brings k's provisioned instances to what its
// current spec wants.
func (p *Pool) reconcileProvisioned(ctx context.Context, k key) (err error) {
	v := p.version(k)
	v.provision.Lock()
	defer v.provision.Unlock()
	defer func() {
		p.mu.Lock()
		v.provisionErr = err
		p.mu.Unlock()
	}()
	spec, err := p.provisionedSpec(ctx, k)
	if err != nil {
		return err // keep what runs: the catalog may be briefly unreadable
	}
	var errs []error
	want, err := ProvisionedInstances(spec, p.now())
	if err != nil {
		// A bad window is skipped; the floor and the other windows apply.
		errs = append(errs, fmt.Errorf("provisioned concurrency of %s:%s: %w", k.function, k.version, err))
	}
	current := ""
	if spec != nil {
		current = p.specKey(spec)
	}
	p.mu.Lock()
	if p.closed {
		want = 0
	}
	keep := 0
	for _, r := range v.provisioned {
		if r.spec == current {
			keep++
		}
	}
	missing := want - keep
	p.mu.Unlock()

	var orphans []*running // launched after Close took the list
	if missing > 0 {
		if p.provLauncher == nil {
			p.warnNoProvisioned.Do(func() {
				p.logger.Warn("the launcher cannot start provisioned instances; provisioned concurrency runs on demand",
					"function", k.function, "version", k.version)
			})
			missing = 0
		}
		var wg sync.WaitGroup
		var emu sync.Mutex
		launched := make([]*running, 0, missing)
		for i := 0; i < missing; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				inst, err := p.provLauncher.LaunchProvisioned(ctx, spec, k.version)
				emu.Lock()
				defer emu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("launching provisioned %s:%s: %w", k.function, k.version, err))
					return
				}
				inst.Group = discovery.GroupProvisioned
				launched = append(launched, &running{inst: inst, spec: current})
				p.logger.Info("provisioned instance ready", "function", k.function, "version", k.version,
					"instance", inst.ID, "address", inst.Address)
			}()
		}
		wg.Wait()
		sort.Slice(launched, func(i, j int) bool { return launched[i].inst.ID < launched[j].inst.ID })
		p.mu.Lock()
		if p.closed {
			orphans, launched = launched, nil
		}
		v.provisioned = append(v.provisioned, launched...)
		p.mu.Unlock()
	}

	// Outdated instances go once the version has its new ones (or the
	// launches failed: stale code must not keep serving); then surplus.
	p.mu.Lock()
	var stop []*running
	kept := v.provisioned[:0:0]
	for _, r := range v.provisioned {
		if r.spec != current || p.closed {
			stop = append(stop, r)
		} else {
			kept = append(kept, r)
		}
	}
	for len(kept) > want {
		stop = append(stop, kept[len(kept)-1])
		kept = kept[:len(kept)-1]
	}
	v.provisioned = kept
	p.mu.Unlock()
	for _, r := range append(stop, orphans...) {
		p.logger.Info("stopping provisioned instance", "function", k.function, "version", k.version, "instance", r.inst.ID)
		if err := p.launcher.Stop(context.WithoutCancel(ctx), r.inst.ID); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", r.inst.ID, err))
		}
	}
	return errors.Join(errs...)
}
