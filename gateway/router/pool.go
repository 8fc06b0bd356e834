package router

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// pool is one function version's instances and wait queue. Every field is
// guarded by Router.mu.
type pool struct {
	key    poolKey
	client *invokeapi.Client
	// meshClient calls the version's Connect-native instances over mutual
	// TLS (nil until the first such instance, or without InstanceTLS).
	meshClient *invokeapi.Client
	envPer     int

	instances map[string]*instance
	waiters   []*waiter
	inFlight  int

	// On-demand scaling: want is what the router asked for last; applied is
	// what the scaler confirmed; scaling is true while a scaler call runs.
	want, applied int
	scaling       bool
	// asserted is when the scaler last confirmed want (or was asked to
	// again): see scaleUpLocked.
	asserted time.Time

	// Idle scale-in window: peak demand since windowStart.
	windowStart time.Time
	windowPeak  int

	refreshing bool // a discovery loop runs for waiters

	// activeAt is when an invocation last acquired an environment or
	// parked here: a pool quiet since the last refresh skips status calls
	// to instances it has nothing to learn from (see statusDueLocked).
	activeAt time.Time
}

type instance struct {
	inst     discovery.Instance
	capacity int
	inFlight int
	// refusedAt: the instance said NoIdleEnvironment while we believed it had
	// room (another gateway uses it); it counts as full until one of our
	// invocations on it completes or the next status refresh.
	refused bool
	gone    bool
	// unreachable: a call failed at the transport (connection refused,
	// reset). Discovery may still list the instance (Nomad lists an
	// allocation before it listens; Consul lags a check interval), so the
	// flag is cleared only by a successful status call or invocation.
	unreachable bool
	// statusAt is when a status call last answered.
	statusAt time.Time
}

type waiter struct {
	ready chan *instance // receives the reserved instance, or nil with err set
	since time.Time
	err   error // why no instance will come (set before nil is sent)
}

func (r *Router) pool(t Target) *pool {
	r.mu.Lock()
	k := poolKey{t.Function, t.Version}
	p := r.pools[k]
	fresh := p == nil
	if fresh {
		c := &invokeapi.Client{HTTP: r.http}
		if len(r.cfg.InvokeKey) > 0 {
			c.Secret = invokeapi.DeriveSecret(r.cfg.InvokeKey, t.Function, t.Version)
		}
		p = &pool{key: k, client: c, envPer: t.EnvironmentsPerInstance,
			instances: map[string]*instance{}, windowStart: time.Now()}
		r.pools[k] = p
	}
	p.envPer = t.EnvironmentsPerInstance
	r.mu.Unlock()
	if fresh {
		r.discover(r.ctx, p)
	}
	return p
}

// clientFor is the client that calls inst: over mutual TLS with the
// gateway's mesh identity when inst is Connect-native, else plain HTTP
// with the version's invoke secret.
func (r *Router) clientFor(p *pool, inst discovery.Instance) (*invokeapi.Client, error) {
	if !inst.Mesh {
		return p.client, nil
	}
	if r.cfg.InstanceTLS == nil {
		return nil, fmt.Errorf("instance %s of %s:%s: %w", inst.ID, p.key.function, p.key.version, ErrNoMeshIdentity)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.meshClient == nil {
		p.meshClient = &invokeapi.Client{TLS: r.cfg.InstanceTLS(p.key.function)}
	}
	return p.meshClient, nil
}

// acquire reserves an environment on some instance, waiting in the pool's
// queue (and asking the scaler for capacity) when none is free.
func (r *Router) acquire(ctx context.Context, p *pool, t Target) (*instance, error) {
	r.mu.Lock()
	p.activeAt = time.Now()
	if in := r.pickLocked(p); in != nil {
		in.inFlight++
		p.inFlight++
		r.notePeakLocked(p)
		r.mu.Unlock()
		return in, nil
	}
	fs := r.fnLocked(t.Function)
	if fs.waiting >= r.cfg.WaitQueueSize {
		r.mu.Unlock()
		r.metrics.QueueFull(t.Function)
		return nil, &ThrottleError{Reason: ReasonFunctionInvocationRateLimitExceeded,
			Message: "Rate Exceeded. Too many requests are waiting for this function's capacity.", RetryAfter: time.Second}
	}
	w := &waiter{ready: make(chan *instance, 1), since: time.Now()}
	p.waiters = append(p.waiters, w)
	fs.waiting++
	r.notePeakLocked(p)
	r.scaleUpLocked(p)
	r.startDiscoveryLocked(p)
	r.mu.Unlock()

	timer := time.NewTimer(r.cfg.ColdStartWait)
	defer timer.Stop()
	select {
	case in := <-w.ready:
		if in == nil {
			return nil, w.err
		}
		r.metrics.Waited(t.Function, t.Version, time.Since(w.since), false)
		return in, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	r.mu.Lock()
	if r.removeWaiterLocked(p, w) {
		fs.waiting--
		r.mu.Unlock()
		r.metrics.Waited(t.Function, t.Version, time.Since(w.since), true)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ThrottleError{Reason: ReasonFunctionInvocationRateLimitExceeded,
			Message: "Rate Exceeded. No execution environment became available in time.", RetryAfter: time.Second}
	}
	r.mu.Unlock()
	// A slot was handed over (or the wait failed) while we were giving up.
	in := <-w.ready
	if in == nil {
		return nil, w.err
	}
	r.metrics.Waited(t.Function, t.Version, time.Since(w.since), false)
	return in, nil
}

func (r *Router) removeWaiterLocked(p *pool, w *waiter) bool {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// pickLocked returns an instance with a free environment: provisioned before
// on-demand, then the busiest that still has room (packing keeps idle
// instances idle so scale-in can reclaim them), ties by id.
func (r *Router) pickLocked(p *pool) *instance {
	var best *instance
	for _, in := range p.instances {
		if in.gone || in.refused || in.unreachable || in.inFlight >= in.capacity {
			continue
		}
		if best == nil || better(in, best) {
			best = in
		}
	}
	return best
}

func better(a, b *instance) bool {
	ap, bp := a.inst.Group == discovery.GroupProvisioned, b.inst.Group == discovery.GroupProvisioned
	if ap != bp {
		return ap
	}
	if a.inFlight != b.inFlight {
		return a.inFlight > b.inFlight
	}
	return a.inst.ID < b.inst.ID
}

// release frees the environment an invocation held and hands it to the
// first waiter, if any.
func (r *Router) release(p *pool, in *instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in.inFlight--
	p.inFlight--
	in.refused = false
	r.dispatchLocked(p)
}

// releaseRefused frees a slot on an instance that refused (or could not be
// reached); gone instances are skipped until discovery lists them again.
func (r *Router) releaseRefused(p *pool, in *instance, gone bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in.inFlight--
	p.inFlight--
	if gone {
		in.gone = true
	} else {
		in.refused = true
	}
	r.dispatchLocked(p)
}

// releaseUnreachable frees the slot of an instance that could not be
// reached and skips it until a status refresh reaches it again, so callers
// wait for capacity (and the scaler is asked for it) instead of retrying a
// dead address.
func (r *Router) releaseUnreachable(p *pool, in *instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in.inFlight--
	p.inFlight--
	// Not scaled up here: an unreachable instance is usually one the count
	// already includes (placed, not yet listening) or one Nomad already
	// removed; the caller's wait, if it comes to that, asks for capacity.
	in.unreachable = true
	r.dispatchLocked(p)
}

// dispatchLocked hands free environments to waiters in FIFO order.
func (r *Router) dispatchLocked(p *pool) {
	for len(p.waiters) > 0 {
		in := r.pickLocked(p)
		if in == nil {
			return
		}
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		r.fnLocked(p.key.function).waiting--
		in.inFlight++
		p.inFlight++
		w.ready <- in
	}
}

func (r *Router) notePeakLocked(p *pool) {
	if d := p.inFlight + len(p.waiters); d > p.windowPeak {
		p.windowPeak = d
	}
}

// onDemandNeededLocked is how many on-demand instances the demand d needs
// beyond what provisioned instances hold.
func (r *Router) onDemandNeededLocked(p *pool, d int) int {
	prov := 0
	for _, in := range p.instances {
		if !in.gone && in.inst.Group == discovery.GroupProvisioned {
			prov += in.capacity
		}
	}
	over := d - prov
	if over <= 0 {
		return 0
	}
	per := p.envPer
	if per < 1 {
		per = 1
	}
	return (over + per - 1) / per
}

// scaleUpLocked raises the on-demand target to cover running plus waiting
// requests.
func (r *Router) scaleUpLocked(p *pool) {
	need := r.onDemandNeededLocked(p, p.inFlight+len(p.waiters))
	// On-demand instances that refused us are full with other gateways'
	// traffic: they are not capacity for our demand.
	for _, in := range p.instances {
		if !in.gone && in.refused && in.inst.Group != discovery.GroupProvisioned {
			need++
		}
	}
	if need > p.want {
		p.want = need
		r.kickScalerLocked(p)
		return
	}
	r.reassertLocked(p)
}

// reassertLocked asks the scaler again for the count the router already
// set when requests wait and no instance is in sight long after the scaler
// confirmed it: the count may have been lowered behind our back (nomad job
// scale, a re-run job). The scaler compares with the real count. At most
// once per assertInterval, and never to retry a failed scale-up (that
// leaves want at applied, below what waiters need).
func (r *Router) reassertLocked(p *pool) {
	need := r.onDemandNeededLocked(p, p.inFlight+len(p.waiters))
	if need > 0 && need <= p.want && p.want == p.applied && len(p.waiters) > 0 && !p.scaling &&
		!r.anyLiveLocked(p) && time.Since(p.asserted) > assertInterval {
		p.asserted = time.Now()
		p.applied = -1
		r.kickScalerLocked(p)
	}
}

// assertInterval spaces the re-assertions of a pool's on-demand count.
const assertInterval = time.Second

// anyLiveLocked reports whether p has an instance that is or will be
// capacity.
func (r *Router) anyLiveLocked(p *pool) bool {
	for _, in := range p.instances {
		if !in.gone && !in.unreachable {
			return true
		}
	}
	return false
}

// kickScalerLocked makes sure one goroutine drives the scaler to p.want.
func (r *Router) kickScalerLocked(p *pool) {
	if p.scaling || r.scaler == nil {
		return
	}
	p.scaling = true
	go r.scaleLoop(p)
}

func (r *Router) scaleLoop(p *pool) {
	for {
		r.mu.Lock()
		want := p.want
		if want == p.applied {
			p.scaling = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
		err := r.scaler.OnDemand(ctx, p.key.function, p.key.version, want)
		cancel()
		var launchErr *LaunchError
		if errors.As(err, &launchErr) {
			// Instances that did start are capacity: list them first.
			r.discover(r.ctx, p)
		}
		r.mu.Lock()
		if err != nil {
			r.logger.Error("scaling on-demand instances", "function", p.key.function, "version", p.key.version,
				"want", want, "error", err)
			// Forget the target so the next demand asks again.
			p.want = p.applied
			p.scaling = false
			if launchErr != nil {
				r.failWaitersLocked(p, launchErr)
			}
			r.mu.Unlock()
			return
		}
		r.logger.Debug("on-demand instances scaled", "function", p.key.function, "version", p.key.version, "want", want)
		p.applied = want
		p.asserted = time.Now()
		r.mu.Unlock()
	}
}

// failWaitersLocked answers every waiter of p with err, unless p has an
// instance that will free an environment (a live one, busy or not), for
// which they keep waiting.
func (r *Router) failWaitersLocked(p *pool, err error) {
	for _, in := range p.instances {
		if !in.gone && !in.unreachable {
			return
		}
	}
	for _, w := range p.waiters {
		w.err = err
		w.ready <- nil
		r.fnLocked(p.key.function).waiting--
	}
	p.waiters = nil
}

// startDiscoveryLocked runs a discovery loop while the pool has waiters, so
// new instances are used as soon as the source reports them.
func (r *Router) startDiscoveryLocked(p *pool) {
	if p.refreshing {
		return
	}
	p.refreshing = true
	go func() {
		t := time.NewTicker(r.cfg.DiscoveryInterval)
		defer t.Stop()
		for {
			r.discover(r.ctx, p)
			r.mu.Lock()
			if len(p.waiters) == 0 || r.ctx.Err() != nil {
				p.refreshing = false
				r.mu.Unlock()
				return
			}
			// Still waiting: make sure the capacity asked for exists.
			r.reassertLocked(p)
			r.mu.Unlock()
			select {
			case <-r.ctx.Done():
			case <-t.C:
			}
		}
	}()
}

// discover reads the pool's instances from the source and merges them.
func (r *Router) discover(ctx context.Context, p *pool) {
	list, err := r.source.Instances(ctx, p.key.function, p.key.version)
	if err != nil {
		r.logger.Warn("discovering instances", "function", p.key.function, "version", p.key.version, "error", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool, len(list))
	ondemand := 0
	for _, d := range list {
		seen[d.ID] = true
		if d.Group != discovery.GroupProvisioned {
			ondemand++
		}
		in := p.instances[d.ID]
		if in == nil {
			in = &instance{inst: d, capacity: p.envPer}
			p.instances[d.ID] = in
			continue
		}
		if in.inst.Address != d.Address {
			in.inst = d
		}
		in.gone = false
	}
	for id, in := range p.instances {
		if !seen[id] {
			if in.inFlight == 0 {
				delete(p.instances, id)
			} else {
				in.gone = true
			}
		}
	}
	// Adopt capacity someone else (an earlier gateway run) started, so that
	// idle scale-in can lower it.
	if ondemand > p.want && !p.scaling {
		p.want, p.applied = ondemand, ondemand
	}
	r.dispatchLocked(p)
}

// quietStatusInterval is how often an instance of a pool without traffic
// is asked for its status when nothing else calls for it.
const quietStatusInterval = 10 * time.Second

// statusDueLocked says whether a refresh round asks in for its status.
// Every round does for a pool with traffic since the last round, and for
// instances whose view may be stale: capacity unknown, refused by another
// gateway's use, unreachable. An instance of a quiet pool is asked every
// quietStatusInterval only: with many gateways and instances the status
// calls of idle pools were most of the routers' work (bench/scale), and
// nothing routes there meanwhile; a call that arrives before the next
// status still finds out from the instance (NoIdleEnvironment, shutting
// down, unreachable) and tries another.
func (r *Router) statusDueLocked(p *pool, in *instance, now time.Time) bool {
	switch {
	case in.capacity <= 0 || in.refused || in.unreachable || in.statusAt.IsZero():
		return true
	case p.inFlight > 0 || len(p.waiters) > 0 || now.Sub(p.activeAt) < 2*r.cfg.RefreshInterval:
		return true
	}
	return now.Sub(in.statusAt) >= quietStatusInterval
}

// statusCalls starts one status call per live instance of p on g, each
// bounded by StatusTimeout; each applies its answer when it comes.
func (r *Router) statusCalls(ctx context.Context, g *errgroup.Group, p *pool) {
	r.mu.Lock()
	now := time.Now()
	insts := make(map[string]discovery.Instance, len(p.instances))
	for id, in := range p.instances {
		if !in.gone && r.statusDueLocked(p, in, now) {
			insts[id] = in.inst
		}
	}
	r.mu.Unlock()
	for id, inst := range insts {
		g.Go(func() error {
			c, err := r.clientFor(p, inst)
			if err != nil {
				r.logger.Warn("instance status", "function", p.key.function, "version", p.key.version, "instance", id, "error", err)
				return nil
			}
			cctx, cancel := context.WithTimeout(ctx, r.cfg.StatusTimeout)
			st, err := c.Status(cctx, inst.Address)
			cancel()
			r.mu.Lock()
			if in := p.instances[id]; in != nil && err == nil && st.Max > 0 {
				in.statusAt = time.Now()
				in.unreachable = false
				in.capacity = st.Max
				in.refused = st.ShuttingDown
				in.gone = in.gone || st.ShuttingDown
			}
			r.mu.Unlock()
			if err != nil {
				r.logger.Debug("instance status", "function", p.key.function, "version", p.key.version, "instance", id, "error", err)
			}
			return nil // one instance's failure never stops the others
		})
	}
}

// Run refreshes pools and lowers idle on-demand capacity until ctx is done.
func (r *Router) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.refreshRound(ctx)
	}
}

// refreshRound re-reads every pool's instances, then asks every instance
// for its status, then lowers idle capacity. Discovery reads and status
// calls each run RefreshConcurrency at a time and are each bounded by
// StatusTimeout, so a round with unreachable instances (or a hanging
// discovery source) takes about one StatusTimeout per phase, not one per
// instance.
func (r *Router) refreshRound(ctx context.Context) {
	r.mu.Lock()
	pools := make([]*pool, 0, len(r.pools))
	for _, p := range r.pools {
		pools = append(pools, p)
	}
	r.mu.Unlock()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.RefreshConcurrency)
	for _, p := range pools {
		g.Go(func() error {
			dctx, cancel := context.WithTimeout(gctx, r.cfg.StatusTimeout)
			defer cancel()
			r.discover(dctx, p)
			return nil
		})
	}
	_ = g.Wait()

	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.RefreshConcurrency)
	for _, p := range pools {
		r.statusCalls(gctx, g, p)
	}
	_ = g.Wait()

	now := time.Now()
	for _, p := range pools {
		r.mu.Lock()
		r.dispatchLocked(p)
		r.mu.Unlock()
		r.scaleIn(p, now)
	}
}

// scaleIn lowers the on-demand target to what the peak demand of the last
// idle window needed.
func (r *Router) scaleIn(p *pool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(p.windowStart) < r.cfg.IdleScaleIn {
		return
	}
	need := r.onDemandNeededLocked(p, p.windowPeak)
	if need < p.want && len(p.waiters) == 0 {
		r.logger.Info("lowering idle on-demand capacity", "function", p.key.function, "version", p.key.version,
			"from", p.want, "to", need)
		p.want = need
		r.kickScalerLocked(p)
	}
	p.windowStart = now
	p.windowPeak = p.inFlight + len(p.waiters)
}

// Track makes sure a pool exists for every target (so its instances and
// gauges are known before traffic arrives: provisioned instances run
// without any) and forgets idle pools of versions no longer listed.
func (r *Router) Track(targets []Target) {
	keep := make(map[poolKey]Target, len(targets))
	for _, t := range targets {
		if t.EnvironmentsPerInstance < 1 {
			t.EnvironmentsPerInstance = 1
		}
		keep[poolKey{t.Function, t.Version}] = t
	}
	r.mu.Lock()
	var missing []Target
	for k, t := range keep {
		if p, ok := r.pools[k]; !ok {
			missing = append(missing, t)
		} else {
			p.envPer = t.EnvironmentsPerInstance
		}
	}
	for k, p := range r.pools {
		if _, ok := keep[k]; !ok && p.inFlight == 0 && len(p.waiters) == 0 && !p.scaling && p.want == 0 {
			delete(r.pools, k)
		}
	}
	r.mu.Unlock()
	for _, t := range missing {
		r.pool(t)
	}
}

// Instances reports the pool's known instances (for tests and the console).
func (r *Router) Instances(function, version string) []discovery.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pools[poolKey{function, version}]
	if p == nil {
		return nil
	}
	out := make([]discovery.Instance, 0, len(p.instances))
	for _, in := range p.instances {
		if !in.gone {
			out = append(out, in.inst)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
