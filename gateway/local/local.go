package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/specs"
)

// Launcher starts and stops instances of one function version. Launch
// returns once the instance accepts invocations; the instance hosts
// fn.EnvironmentsPerInstance environments.
type Launcher interface {
	Launch(ctx context.Context, fn *specs.Function, version string) (discovery.Instance, error)
	Stop(ctx context.Context, id string) error
}

// Catalog is where the pool reads a version's spec, and (for provisioned
// concurrency) every function.
type Catalog interface {
	Function(ctx context.Context, name string) (*catalog.Function, error)
	Lister
}

// Pool launches on-demand instances for the router, and keeps each
// version's provisioned instances (Provision) when the launcher can start
// them.
//
// Lock rules: mu guards versions, closed and each version's running and
// provisioned lists; it is never held across a launch or stop. A version's
// reconcile (on-demand) and provision (provisioned) mutexes serialise its
// launches and stops per group and are taken before mu.
type Pool struct {
	launcher     Launcher
	provLauncher ProvisionedLauncher // nil: the launcher cannot
	catalog      Catalog
	lister       Lister
	logger       hclog.Logger

	mu       sync.Mutex
	versions map[key]*version
	closed   bool

	codeStamp         func(*specs.Function) string // set before use; nil: spec only
	now               func() time.Time
	warnNoProvisioned sync.Once
}

type key struct{ function, version string }

type version struct {
	reconcile sync.Mutex // serialises on-demand launches/stops of this version
	want      int
	running   []*running // ready on-demand instances, oldest first

	provision   sync.Mutex // serialises provisioned launches/stops
	provisioned []*running // initialised provisioned instances
	// provisionErr is the last reconcile's error (guarded by Pool.mu).
	provisionErr error
}

type running struct {
	inst discovery.Instance
	spec string // canonical JSON of the spec it was launched with
}

// New returns an empty pool. When l also implements ProvisionedLauncher,
// Provision keeps provisioned instances; otherwise provisioned concurrency
// is served by on-demand instances (and a warning says so once).
func New(l Launcher, cat Catalog, logger hclog.Logger) *Pool {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	pl, _ := l.(ProvisionedLauncher)
	return &Pool{launcher: l, provLauncher: pl, catalog: cat, lister: cat, logger: logger.Named("local"),
		versions: map[key]*version{}, now: time.Now}
}

// SetCodeStamp makes an instance outdated when stamp(spec) changes, not
// only when the spec does (dev mode passes a fingerprint of the code
// directory, so edited code gets fresh instances). Call before use.
func (p *Pool) SetCodeStamp(stamp func(*specs.Function) string) { p.codeStamp = stamp }

func (p *Pool) version(k key) *version {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.versions[k]
	if v == nil {
		v = &version{}
		p.versions[k] = v
	}
	return v
}

// OnDemand implements router.Scaler: it launches or stops instances until
// want are running and returns when done (each launched instance is listed
// by Instances as soon as it is ready).
func (p *Pool) OnDemand(ctx context.Context, function, ver string, want int) error {
	if want < 0 {
		return fmt.Errorf("want %d for %s:%s is negative", want, function, ver)
	}
	v := p.version(key{function, ver})
	p.mu.Lock()
	v.want = want
	p.mu.Unlock()
	return p.reconcile(ctx, function, ver, v)
}

// specKey is what an instance was launched from: the canonical spec (but
// its provisioned_concurrency block, which says how many instances run, not
// what they run) and the code stamp.
func (p *Pool) specKey(s *specs.Function) string {
	if s.Provisioned != nil {
		c := *s
		c.Provisioned = nil
		s = &c
	}
	b, _ := json.Marshal(s)
	if p.codeStamp != nil {
		return string(b) + "\x00" + p.codeStamp(s)
	}
	return string(b)
}

// reconcile stops outdated and surplus instances and launches missing ones.
func (p *Pool) reconcile(ctx context.Context, function, ver string, v *version) error {
	v.reconcile.Lock()
	defer v.reconcile.Unlock()
	fn, err := p.catalog.Function(ctx, function)
	var spec *specs.Function
	if err == nil {
		if res, rerr := fn.Resolve(ver, nil); rerr == nil {
			spec = res.Spec
		} else {
			err = rerr
		}
	}
	want := 0
	current := ""
	if spec != nil {
		current = p.specKey(spec)
	}
	p.mu.Lock()
	asked := v.want
	if spec != nil && !p.closed {
		want = v.want
	}
	var stop []*running
	keep := v.running[:0:0]
	for _, r := range v.running {
		if r.spec != current {
			stop = append(stop, r)
		} else {
			keep = append(keep, r)
		}
	}
	for len(keep) > want {
		stop = append(stop, keep[len(keep)-1])
		keep = keep[:len(keep)-1]
	}
	v.running = keep
	missing := want - len(keep)
	p.mu.Unlock()

	var errs []error
	for _, r := range stop {
		p.logger.Info("stopping instance", "function", function, "version", ver, "instance", r.inst.ID)
		if err := p.launcher.Stop(ctx, r.inst.ID); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", r.inst.ID, err))
		}
	}
	if asked > 0 && spec == nil {
		errs = append(errs, fmt.Errorf("launching %s:%s: %w", function, ver, err))
		return errors.Join(errs...)
	}
	var wg sync.WaitGroup
	var emu sync.Mutex
	for i := 0; i < missing; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst, err := p.launcher.Launch(ctx, spec, ver)
			if err != nil {
				if ctx.Err() == nil {
					// A local launch fails for what retrying does not fix
					// (code that does not build, a missing layer, a
					// refused config): the router fails the waiting
					// requests with it at once.
					err = &router.LaunchError{Function: function, Version: ver, Err: err}
				} else {
					err = fmt.Errorf("launching %s:%s: %w", function, ver, err)
				}
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
				return
			}
			p.mu.Lock()
			closed := p.closed
			if !closed {
				v.running = append(v.running, &running{inst: inst, spec: current})
			}
			p.mu.Unlock()
			if closed {
				_ = p.launcher.Stop(context.WithoutCancel(ctx), inst.ID)
				return
			}
			p.logger.Info("instance ready", "function", function, "version", ver, "instance", inst.ID, "address", inst.Address)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Instances implements discovery.Source: the version's provisioned
// instances (once initialised), then its on-demand ones.
func (p *Pool) Instances(_ context.Context, function, ver string) ([]discovery.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.versions[key{function, ver}]
	if v == nil {
		return nil, nil
	}
	out := make([]discovery.Instance, 0, len(v.provisioned)+len(v.running))
	for _, r := range v.provisioned {
		out = append(out, r.inst)
	}
	for _, r := range v.running {
		out = append(out, r.inst)
	}
	return out, nil
}

// Refresh replaces instances whose spec changed (call it after a catalog
// reload); versions keep their wanted on-demand count, and provisioned
// instances follow the new specs (Provision).
func (p *Pool) Refresh(ctx context.Context) {
	p.mu.Lock()
	keys := make([]key, 0, len(p.versions))
	for k := range p.versions {
		keys = append(keys, k)
	}
	p.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool { return keys[i].function+keys[i].version < keys[j].function+keys[j].version })
	for _, k := range keys {
		if err := p.reconcile(ctx, k.function, k.version, p.version(k)); err != nil {
			p.logger.Error("replacing instances after reload", "function", k.function, "version", k.version, "error", err)
		}
	}
	if err := p.Provision(ctx); err != nil {
		p.logger.Error("provisioning instances after reload", "error", err)
	}
}

// Close stops every instance and refuses further launches.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	var all []*running
	for _, v := range p.versions {
		all = append(all, v.provisioned...)
		all = append(all, v.running...)
		v.provisioned, v.running = nil, nil
	}
	p.mu.Unlock()
	var errs []error
	for _, r := range all {
		if err := p.launcher.Stop(ctx, r.inst.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
