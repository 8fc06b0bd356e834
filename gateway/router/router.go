package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
)

// Scaler sets how many on-demand instances a function version should have.
// The router calls it when requests wait for capacity (want goes up, from
// zero included) and after idle time (want goes down). In a cluster it sets
// the `ondemand` group's count; in dev mode it launches and stops local
// instances.
type Scaler interface {
	OnDemand(ctx context.Context, function, version string, want int) error
}

// Shared holds reserved concurrency across gateways (gateway/slots):
// Acquire takes one of a function's limit slots, ok false when every slot
// is held by some gateway; release frees it. An error means the shared
// state could not decide, and the router refuses the invocation.
type Shared interface {
	Acquire(ctx context.Context, function string, limit int) (release func(), ok bool, err error)
}

// ErrShared is wrapped when the shared reserved-concurrency state could not
// be reached: the invocation is refused rather than admitted unchecked.
var ErrShared = errors.New("reserved concurrency across gateways could not be checked")

// TooManyRequestsException reasons (Lambda's values).
const (
	ReasonConcurrentInvocationLimitExceeded                 = "ConcurrentInvocationLimitExceeded"
	ReasonReservedFunctionConcurrentInvocationLimitExceeded = "ReservedFunctionConcurrentInvocationLimitExceeded"
	ReasonFunctionInvocationRateLimitExceeded               = "FunctionInvocationRateLimitExceeded"
)

// ThrottleError refuses an invocation; the API answers 429
// TooManyRequestsException with Reason.
type ThrottleError struct {
	Reason  string
	Message string
	// RetryAfter, when set, is when a retry may succeed: the API sends it
	// as Retry-After (the SDK's RetryAfterSeconds). Zero when no retry
	// can succeed (reserved concurrency 0).
	RetryAfter time.Duration
}

func (e *ThrottleError) Error() string { return "throttled: " + e.Reason + ": " + e.Message }

// LaunchError says that capacity for a function version cannot start, for a
// reason that waiting does not fix: its code does not build, a layer it
// names is not published, its instance config is refused. A Scaler returns
// it (wrapped or joined with other errors is fine). The router then fails
// the requests waiting for that version's capacity with it at once, unless
// the version still has instances that will free environments, instead of
// letting them wait out ColdStartWait and answer 429.
type LaunchError struct {
	Function, Version string
	Err               error // the cause, as the launcher reported it
}

func (e *LaunchError) Error() string {
	return "no execution environment of " + e.Function + ":" + e.Version + " could start: " + e.Err.Error()
}

func (e *LaunchError) Unwrap() error { return e.Err }

// ErrNoCapacity is wrapped when no instance could take the invocation for a
// reason other than throttling (every known instance failed).
var ErrNoCapacity = errors.New("no instance could run the invocation")

// Config tunes the router. Zero values take the defaults noted.
type Config struct {
	// AccountConcurrency caps all functions together. Default 1000.
	AccountConcurrency int
	// UnreservedMin is the least concurrency kept for functions without
	// reserved concurrency, whatever the reservations add up to. Default 100.
	UnreservedMin int
	// WaitQueueSize bounds the requests one function may park while capacity
	// starts. Default 100.
	WaitQueueSize int
	// ColdStartWait is how long a parked request waits for an environment
	// before it is refused (429). Default 10s.
	ColdStartWait time.Duration
	// IdleScaleIn is how long on-demand capacity stays unused before the
	// router lowers it. Default 5m.
	IdleScaleIn time.Duration
	// InvokeKey derives each version's instance secret
	// (invokeapi.DeriveSecret); empty means instances without auth (dev mode).
	InvokeKey []byte
	// DiscoveryInterval is how often pools re-read the discovery source while
	// requests wait. Default 25ms.
	DiscoveryInterval time.Duration
	// RefreshInterval is how often Run re-reads every pool's instances and
	// their status, and checks for idle capacity. Default 1s.
	RefreshInterval time.Duration
	// StatusTimeout bounds one instance status call and one discovery read
	// of a refresh round. Default 2s.
	StatusTimeout time.Duration
	// RefreshConcurrency is how many discovery reads and status calls a
	// refresh round runs at once, so unreachable instances cost a round
	// about one StatusTimeout, not one each. Default 32.
	RefreshConcurrency int
	// HTTP is the client for instance calls; nil means a shared
	// invokeapi.NewTransport client.
	HTTP *http.Client
	// InstanceTLS returns the mesh client config for calling function's
	// Connect-native instances (discovery.Instance.Mesh): the gateway's
	// leaf as client certificate, the instance's service identity
	// verified. Each function version's pool keeps its own keep-alive
	// connections over it, so a call pays no handshake once warm. Nil
	// means the gateway is not in the mesh: a Connect-native instance is
	// then refused with ErrNoMeshIdentity.
	InstanceTLS InstanceTLSFunc
}

// InstanceTLSFunc returns the mesh client config for calling a function's
// Connect-native instances (see Config.InstanceTLS).
type InstanceTLSFunc func(function string) *tls.Config

// ErrNoMeshIdentity is wrapped when discovery lists a Connect-native
// instance but the gateway has no mesh identity to call it with.
var ErrNoMeshIdentity = errors.New("the function's instances are Connect-native (mutual TLS) but this gateway has no mesh identity: enable the gateway's connect block")

func (c *Config) defaults() {
	if c.AccountConcurrency == 0 {
		c.AccountConcurrency = 1000
	}
	if c.UnreservedMin == 0 {
		c.UnreservedMin = 100
	}
	if c.WaitQueueSize == 0 {
		c.WaitQueueSize = 100
	}
	if c.ColdStartWait == 0 {
		c.ColdStartWait = 10 * time.Second
	}
	if c.IdleScaleIn == 0 {
		c.IdleScaleIn = 5 * time.Minute
	}
	if c.DiscoveryInterval == 0 {
		c.DiscoveryInterval = 25 * time.Millisecond
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = time.Second
	}
	if c.StatusTimeout == 0 {
		c.StatusTimeout = 2 * time.Second
	}
	if c.RefreshConcurrency < 1 {
		c.RefreshConcurrency = 32
	}
}

// Target is what to invoke: a resolved function version and the function
// settings admission needs.
type Target struct {
	Function string
	Version  string
	// Reserved is the function's reserved concurrency (nil: unreserved).
	Reserved *int
	// EnvironmentsPerInstance is the spec's value, used as an instance's
	// capacity until its status says otherwise. Default 1.
	EnvironmentsPerInstance int
}

// Router places invocations. Create with New, start Run, call Invoke.
type Router struct {
	cfg     Config
	source  discovery.Source
	scaler  Scaler
	metrics *metrics.Metrics
	logger  hclog.Logger
	http    *http.Client

	ctx    context.Context // lives as long as Run's; scaler and discovery calls use it
	cancel context.CancelFunc

	mu            sync.Mutex
	pools         map[poolKey]*pool
	functions     map[string]*fnState
	unreserved    int // admitted invocations of unreserved functions
	reservedTotal int
	draining      bool
	idle          *sync.Cond // signalled when an admitted invocation finishes
	shared        Shared     // nil: reserved concurrency is counted here only
	shareAccount  bool       // the unreserved pool is shared too
}

type poolKey struct{ function, version string }

type fnState struct {
	active  int // admitted: running + waiting
	waiting int
}

// New builds a router over a discovery source and a scaler.
func New(cfg Config, source discovery.Source, scaler Scaler, m *metrics.Metrics, logger hclog.Logger) *Router {
	cfg.defaults()
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Router{
		cfg:       cfg,
		source:    source,
		scaler:    scaler,
		metrics:   m,
		logger:    logger.Named("router"),
		http:      cfg.HTTP,
		ctx:       ctx,
		cancel:    cancel,
		pools:     map[poolKey]*pool{},
		functions: map[string]*fnState{},
	}
	r.idle = sync.NewCond(&r.mu)
	return r
}

// SetReservedTotal tells the router how much concurrency all functions
// reserve together; the unreserved pool is the account limit minus that (but
// never below UnreservedMin).
func (r *Router) SetReservedTotal(n int) {
	r.mu.Lock()
	r.reservedTotal = n
	r.mu.Unlock()
}

// SetShared makes reserved concurrency hold across the gateways sharing s:
// an invocation of a function with a reservation is admitted only when it
// also takes one of the function's shared slots. With account set, the
// unreserved pool is shared too: every other invocation takes one of its
// slots (named UnreservedSlots). Call before serving.
func (r *Router) SetShared(s Shared, account bool) {
	r.mu.Lock()
	r.shared, r.shareAccount = s, account
	r.mu.Unlock()
}

// UnreservedSlots is the name the unreserved pool's slots go by in Shared;
// no function name can contain "=".
const UnreservedSlots = "=unreserved"

// UnreservedLimit is the concurrency functions without a reservation share.
func (r *Router) UnreservedLimit() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreservedLimitLocked()
}

func (r *Router) unreservedLimitLocked() int {
	n := r.cfg.AccountConcurrency - r.reservedTotal
	if n < r.cfg.UnreservedMin {
		n = r.cfg.UnreservedMin
	}
	return n
}

// AccountConcurrency returns the configured account limit.
func (r *Router) AccountConcurrency() int { return r.cfg.AccountConcurrency }

// UnreservedMin is the least concurrency kept for unreserved functions.
func (r *Router) UnreservedMin() int { return r.cfg.UnreservedMin }

// Invoke admits the invocation, places it and runs it. The response body
// holds the environment until it is closed. Refusals are *ThrottleError;
// an instance's own refusals that no other instance could absorb, or
// transport failures, are returned wrapped.
func (r *Router) Invoke(ctx context.Context, t Target, req *invokeapi.Request) (*invokeapi.Response, error) {
	if t.EnvironmentsPerInstance < 1 {
		t.EnvironmentsPerInstance = 1
	}
	done, err := r.admitShared(ctx, t)
	if err != nil {
		return nil, err
	}
	admitted := true
	defer func() {
		if admitted {
			done()
		}
	}()
	p := r.pool(t)
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		inst, err := r.acquire(ctx, p, t)
		if err != nil {
			return nil, err
		}
		c, err := r.clientFor(p, inst.inst)
		if err != nil {
			r.release(p, inst)
			return nil, err
		}
		resp, err := c.Invoke(ctx, inst.inst.Address, req)
		if err == nil {
			if r.spilledOver(p, inst) {
				r.metrics.Spillover(t.Function, t.Version)
			}
			admitted = false // the body's Close releases it
			resp.Body = &releaser{ReadCloser: resp.Body, release: func() {
				r.release(p, inst)
				done()
			}}
			return resp, nil
		}
		lastErr = err
		var ie *invokeapi.Error
		switch {
		case errors.As(err, &ie) && ie.Retryable():
			r.releaseRefused(p, inst, ie.Code == invokeapi.CodeShuttingDown)
			r.logger.Debug("instance refused; trying another", "function", t.Function, "version", t.Version,
				"instance", inst.inst.ID, "error", err)
		case errors.As(err, &ie):
			r.release(p, inst)
			return nil, err // the request's own fault (too large, bad request) or auth
		case ctx.Err() != nil:
			r.release(p, inst)
			return nil, ctx.Err()
		default:
			// Transport failure: the instance is gone or not listening
			// yet. Skip it until a status refresh reaches it.
			r.releaseUnreachable(p, inst)
			r.logger.Warn("instance unreachable; trying another", "function", t.Function, "version", t.Version,
				"instance", inst.inst.ID, "error", err)
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrNoCapacity, lastErr)
}

// spilledOver reports whether an invocation placed on in ran beyond the
// version's provisioned capacity: in is on-demand while the pool has at least
// one live provisioned instance (Lambda counts such invocations as
// ProvisionedConcurrencySpilloverInvocations). A version without provisioned
// instances never spills over.
func (r *Router) spilledOver(p *pool, in *instance) bool {
	if in.inst.Group == discovery.GroupProvisioned {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range p.instances {
		if !x.gone && x.inst.Group == discovery.GroupProvisioned {
			return true
		}
	}
	return false
}

type releaser struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releaser) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}

// admitShared admits t here, then, with a Shared set, takes one of the
// function's slots across gateways (a function with a reservation), or one
// of the unreserved pool's (the others, when the account is shared). done
// undoes both.
func (r *Router) admitShared(ctx context.Context, t Target) (done func(), err error) {
	if err := r.admit(t); err != nil {
		return nil, err
	}
	r.mu.Lock()
	shared, account, unreserved := r.shared, r.shareAccount, r.unreservedLimitLocked()
	r.mu.Unlock()
	name, limit := t.Function, 0
	reason := ReasonReservedFunctionConcurrentInvocationLimitExceeded
	switch {
	case shared == nil:
	case t.Reserved != nil:
		limit = *t.Reserved
	case account:
		name, limit, reason = UnreservedSlots, unreserved, ReasonConcurrentInvocationLimitExceeded
	default:
		shared = nil
	}
	if shared == nil {
		return func() { r.unadmit(t) }, nil
	}
	release, ok, err := shared.Acquire(ctx, name, limit)
	if err != nil {
		r.unadmit(t)
		return nil, fmt.Errorf("%w: %w", ErrShared, err)
	}
	if !ok {
		r.unadmit(t)
		return nil, &ThrottleError{Reason: reason, Message: "Rate Exceeded.", RetryAfter: time.Second}
	}
	return func() {
		r.unadmit(t)
		release()
	}, nil
}

// admit applies reserved and account concurrency as counted here.
func (r *Router) admit(t Target) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining {
		return &ThrottleError{Reason: ReasonConcurrentInvocationLimitExceeded, Message: "Rate Exceeded. The gateway is shutting down.", RetryAfter: time.Second}
	}
	fs := r.fnLocked(t.Function)
	if t.Reserved != nil {
		if fs.active >= *t.Reserved {
			te := &ThrottleError{Reason: ReasonReservedFunctionConcurrentInvocationLimitExceeded, Message: "Rate Exceeded."}
			if *t.Reserved > 0 {
				// A slot frees when a running invocation ends. With reserved
				// concurrency 0 no retry can succeed, so none is suggested.
				te.RetryAfter = time.Second
			}
			return te
		}
	} else if r.unreserved >= r.unreservedLimitLocked() {
		return &ThrottleError{Reason: ReasonConcurrentInvocationLimitExceeded, Message: "Rate Exceeded.", RetryAfter: time.Second}
	}
	fs.active++
	if t.Reserved == nil {
		r.unreserved++
	}
	return nil
}

func (r *Router) unadmit(t Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fs := r.fnLocked(t.Function)
	fs.active--
	if t.Reserved == nil {
		r.unreserved--
	}
	r.idle.Broadcast()
}

func (r *Router) fnLocked(name string) *fnState {
	fs := r.functions[name]
	if fs == nil {
		fs = &fnState{}
		r.functions[name] = fs
	}
	return fs
}

// Drain refuses new invocations and waits until every admitted one finished
// (response bodies closed) or ctx is done.
func (r *Router) Drain(ctx context.Context) error {
	r.mu.Lock()
	r.draining = true
	r.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.idle.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.activeLocked() > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("draining: %d invocations still in flight: %w", r.activeLocked(), ctx.Err())
		}
		r.idle.Wait()
	}
	return nil
}

// Draining reports whether Drain was called.
func (r *Router) Draining() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.draining
}

func (r *Router) activeLocked() int {
	n := 0
	for _, fs := range r.functions {
		n += fs.active
	}
	return n
}

// Close stops background work started by Run and by pools.
func (r *Router) Close() { r.cancel() }

// PoolStats implements metrics.StatsSource.
func (r *Router) PoolStats() []metrics.PoolStat {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]metrics.PoolStat, 0, len(r.pools))
	for k, p := range r.pools {
		st := metrics.PoolStat{Function: k.function, Version: k.version,
			Environments: map[string]int{}, InFlight: map[string]int{}, Waiting: len(p.waiters)}
		for _, in := range p.instances {
			g := groupOf(in.inst)
			if !in.gone {
				st.Environments[g] += in.capacity
			}
			st.InFlight[g] += in.inFlight
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// FunctionStats implements metrics.StatsSource.
func (r *Router) FunctionStats() []metrics.FunctionStat {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]metrics.FunctionStat, 0, len(r.functions))
	for name, fs := range r.functions {
		out = append(out, metrics.FunctionStat{Function: name, Concurrency: fs.active})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function < out[j].Function })
	return out
}

// Concurrency returns the admitted invocations of one function (running or waiting).
func (r *Router) Concurrency(function string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fs := r.functions[function]; fs != nil {
		return fs.active
	}
	return 0
}

func groupOf(in discovery.Instance) string {
	if in.Group == discovery.GroupProvisioned {
		return metrics.GroupProvisioned
	}
	return metrics.GroupOnDemand
}
