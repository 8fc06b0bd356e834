package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/specs"
)

// Mapping is one event-source mapping: a source and the function it
// invokes.
type Mapping struct {
	// UUID identifies the mapping. Spec-declared mappings get a UUID
	// derived from function and block name (SpecUUID), so every gateway
	// and every restart agrees on it.
	UUID string `json:"uuid"`
	// Name is the spec block's name ("" for API-created mappings).
	Name     string `json:"name,omitempty"`
	Function string `json:"function"`
	// Qualifier is the version or alias invoked ("" = $LATEST).
	Qualifier string `json:"qualifier,omitempty"`
	// Spec holds the settings, defaults filled.
	Spec *specs.EventSource `json:"spec"`
	// Origin is "spec" or "api".
	Origin string `json:"origin"`
	// LastModified is when the mapping last changed (zero when unknown).
	LastModified time.Time `json:"last_modified"`
}

// Origins of a mapping.
const (
	OriginSpec = "spec"
	OriginAPI  = "api"
)

// specNamespace derives spec mappings' UUIDs.
var specNamespace = uuid.MustParse("6f1c1d52-8a0e-4f0b-9b7e-2f4f6a1e3c11")

// SpecUUID is the UUID of the spec-declared mapping name of function fn.
func SpecUUID(fn, name string) string {
	return uuid.NewSHA1(specNamespace, []byte(fn+"/"+name)).String()
}

// FromFunctions lists the mappings the functions' $LATEST specs declare.
func FromFunctions(fns []*catalog.Function) []Mapping {
	var out []Mapping
	for _, f := range fns {
		l := f.Latest()
		if l == nil {
			continue
		}
		for _, es := range l.EventSources {
			out = append(out, Mapping{UUID: SpecUUID(f.Name, es.Name), Name: es.Name, Function: f.Name,
				Spec: es, Origin: OriginSpec})
		}
	}
	return out
}

// Lister lists the mappings that should run (spec-declared and
// API-created, enabled or not). With an error, the list it returns (if
// any) is partial: the engine starts and updates what it names but stops
// nothing, so one unreadable store does not stop the others' mappings.
type Lister interface {
	Mappings(ctx context.Context) ([]Mapping, error)
}

// Values of Status.LastProcessingResult (Lambda's words where it has them).
const (
	ResultNoRecords     = "No records processed"
	ResultOK            = "OK"
	ResultFunctionError = "PROBLEM: Function call failed"
	ResultProblem       = "PROBLEM: "
)

// Mapping states (Lambda's).
const (
	StateCreating = "Creating"
	StateEnabled  = "Enabled"
	StateDisabled = "Disabled"
	StateUpdating = "Updating"
	StateDeleting = "Deleting"
)

// Status is one mapping's state and counters on this gateway.
type Status struct {
	Mapping
	State                 string         `json:"state"`
	StateTransitionReason string         `json:"state_transition_reason"`
	LastProcessingResult  string         `json:"last_processing_result"`
	LastError             string         `json:"last_error,omitempty"`
	LastErrorAt           time.Time      `json:"last_error_at,omitzero"`
	LastBatchAt           time.Time      `json:"last_batch_at,omitzero"`
	RecordsIn             int64          `json:"records_in"`
	RecordsFiltered       int64          `json:"records_filtered"`
	RecordsDone           int64          `json:"records_done"`
	RecordsFailed         int64          `json:"records_failed"`
	Batches               int64          `json:"batches"`
	FunctionErrors        int64          `json:"function_errors"`
	Retries               int64          `json:"retries"`
	Buffered              int            `json:"buffered"`
	InFlight              int            `json:"in_flight"`
	OldestRecordAge       string         `json:"oldest_record_age,omitempty"`
	Lag                   []PartitionLag `json:"lag,omitempty"`
}

// Options tune the engine. Zero values take the defaults.
type Options struct {
	// ReconcileInterval is how often the mapping list is re-read. Default 2s.
	ReconcileInterval time.Duration
	// PollWait is the longest a Poll waits when nothing is buffered. Default 1s.
	PollWait time.Duration
	// RetryBase and RetryMax bound the exponential backoff between retries
	// of a failing batch and after broker errors. Defaults 500ms and 1m.
	RetryBase, RetryMax time.Duration
	// LagInterval is how often lag is read from sources that report it.
	// Default 10s.
	LagInterval time.Duration
}

func (o *Options) defaults() {
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = 2 * time.Second
	}
	if o.PollWait <= 0 {
		o.PollWait = time.Second
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 500 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Minute
	}
	if o.LagInterval <= 0 {
		o.LagInterval = 10 * time.Second
	}
}

// Deps are the engine's collaborators.
type Deps struct {
	Mappings Lister
	Catalog  Catalog
	Invoker  Invoker
	Sender   Sender
	// Enqueuer queues asynchronous invocations (schedules use it, as
	// EventBridge invokes asynchronously). The async queue.
	Enqueuer destinations.FunctionEnqueuer
	// KafkaSender builds a Sender whose Kafka destinations publish to
	// brokers, for kafka mappings whose on_failure is a topic of their own
	// cluster (nil: Sender is used as it is). close releases it.
	KafkaSender func(brokers string) (s Sender, close func(), err error)
	// Openers open a source per type ("kafka", "redis", …).
	Openers map[string]Opener
	// NATS is the gateway's own connection (nil when it has none).
	NATS    *nats.Conn
	Metrics *Metrics
	Logger  hclog.Logger
	// Region, AccountID make ARNs; Member names this gateway in groups.
	Region, AccountID, Member string
	// FunctionTimeout returns a function's timeout (claim and lease timing).
	FunctionTimeout func(fn string) time.Duration
}

// Manager runs every mapping's poller on this gateway.
type Manager struct {
	deps Deps
	opts Options
	log  hclog.Logger

	mu      sync.Mutex
	running map[string]*handle // by UUID
	stopped map[string]*Status // disabled or failed to open, by UUID
	listErr error
}

// handle is a running runner.
type handle struct {
	r      *runner
	key    string // the mapping's settings, to notice changes
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager builds the engine.
func NewManager(deps Deps, opts Options) *Manager {
	opts.defaults()
	if deps.Logger == nil {
		deps.Logger = hclog.NewNullLogger()
	}
	if deps.Member == "" {
		deps.Member = uuid.NewString()
	}
	return &Manager{deps: deps, opts: opts, log: deps.Logger.Named("sources"),
		running: map[string]*handle{}, stopped: map[string]*Status{}}
}

// Run reconciles the running pollers with the mapping list until ctx ends,
// then stops them all (each finishes its in-flight batches).
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.ReconcileInterval)
	defer t.Stop()
	lag := time.NewTicker(m.opts.LagInterval)
	defer lag.Stop()
	m.Reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			m.stopAll()
			return
		case <-t.C:
			m.Reconcile(ctx)
		case <-lag.C:
			m.readLag(ctx)
		}
	}
}

// Reconcile starts, restarts and stops pollers to match the mapping list.
func (m *Manager) Reconcile(ctx context.Context) {
	list, err := m.deps.Mappings.Mappings(ctx)
	m.mu.Lock()
	m.listErr = err
	m.mu.Unlock()
	partial := err != nil
	if err != nil {
		m.log.Warn("listing event-source mappings; keeping the running ones", "error", err)
		if len(list) == 0 {
			return
		}
	}
	want := map[string]Mapping{}
	for _, mp := range list {
		want[mp.UUID] = mp
	}
	m.mu.Lock()
	var stop []*handle
	for id, h := range m.running {
		mp, ok := want[id]
		if !ok && partial {
			continue
		}
		if !ok || !mp.Spec.Enabled || settingsKey(mp) != h.key {
			stop = append(stop, h)
			delete(m.running, id)
		}
	}
	for id := range m.stopped {
		if _, ok := want[id]; !ok && !partial {
			delete(m.stopped, id)
		}
	}
	m.mu.Unlock()
	for _, h := range stop {
		h.cancel()
		<-h.done
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		mp := want[id]
		m.mu.Lock()
		_, running := m.running[id]
		prev := m.stopped[id]
		m.mu.Unlock()
		if running {
			continue
		}
		if !mp.Spec.Enabled {
			m.setStopped(mp, StateDisabled, "USER_INITIATED", "")
			continue
		}
		if prev != nil && prev.State == StateEnabled && settingsKey(prev.Mapping) == settingsKey(mp) &&
			time.Since(prev.LastErrorAt) < m.opts.RetryBase*4 {
			continue // failed to open a moment ago: wait before trying again
		}
		if err := m.start(ctx, mp); err != nil {
			m.log.Warn("opening an event source; retrying", "mapping", mp.UUID, "function", mp.Function, "error", err)
			st := m.setStopped(mp, StateEnabled, "USER_INITIATED", ResultProblem+err.Error())
			m.mu.Lock()
			st.LastError, st.LastErrorAt = err.Error(), time.Now().UTC()
			m.mu.Unlock()
		}
	}
}

func (m *Manager) setStopped(mp Mapping, state, reason, result string) *Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stopped[mp.UUID]
	if st == nil {
		st = &Status{}
		m.stopped[mp.UUID] = st
	}
	st.Mapping, st.State, st.StateTransitionReason = mp, state, reason
	if result != "" {
		st.LastProcessingResult = result
	} else if st.LastProcessingResult == "" {
		st.LastProcessingResult = ResultNoRecords
	}
	return st
}

// settingsKey changes whenever a mapping's settings do.
func settingsKey(mp Mapping) string {
	b, _ := json.Marshal(struct {
		Q string
		F string
		S *specs.EventSource
	}{mp.Qualifier, mp.Function, mp.Spec})
	return string(b)
}

// ErrUnknownType: no source of the mapping's type is built into the gateway.
var ErrUnknownType = errors.New("event source type not supported by this gateway")

// DefaultConcurrency is the batches a mapping runs at once when
// maximum_concurrency is unset: Lambda's Amazon MQ for RabbitMQ default 1;
// queue-like sources otherwise start at 5 as SQS does; ordered sources run
// one batch per partition with no further cap.
func DefaultConcurrency(typ string, ordered bool) int {
	switch {
	case typ == "rabbitmq":
		return 1
	case ordered:
		return 1000
	}
	return 5
}

func (m *Manager) start(ctx context.Context, mp Mapping) error {
	open := m.deps.Openers[mp.Spec.Type]
	if open == nil {
		return fmt.Errorf("%w: %q", ErrUnknownType, mp.Spec.Type)
	}
	match, err := CompileFilters(mp.Spec.Filters)
	if err != nil {
		return err
	}
	var window, maxAge time.Duration
	if mp.Spec.MaximumBatchingWindow != "" {
		if window, err = time.ParseDuration(mp.Spec.MaximumBatchingWindow); err != nil {
			return fmt.Errorf("maximum_batching_window: %w", err)
		}
	}
	if mp.Spec.MaximumRecordAge != "" {
		if maxAge, err = time.ParseDuration(mp.Spec.MaximumRecordAge); err != nil {
			return fmt.Errorf("maximum_record_age: %w", err)
		}
	}
	timeout := 3 * time.Second
	if m.deps.FunctionTimeout != nil {
		timeout = m.deps.FunctionTimeout(mp.Function)
	}
	log := m.log.With("mapping", mp.UUID, "function", mp.Function)
	src, err := open(ctx, Config{UUID: mp.UUID, Function: mp.Function, Spec: mp.Spec, Member: m.deps.Member,
		FunctionTimeout: timeout, NATS: m.deps.NATS, Region: m.deps.Region, AccountID: m.deps.AccountID,
		Logger: log.Named(mp.Spec.Type)})
	if err != nil {
		return err
	}
	deps := &m.deps
	var closeSender func()
	if d := mp.Spec.OnFailure; d != nil && d.Kafka != "" && mp.Spec.Type == specs.SourceKafka && m.deps.KafkaSender != nil {
		snd, c, err := m.deps.KafkaSender(mp.Spec.URL)
		if err != nil {
			_ = src.Close()
			return fmt.Errorf("kafka producer for on_failure: %w", err)
		}
		own := m.deps
		own.Sender = snd
		deps, closeSender = &own, c
	}
	r := &runner{m: mp, deps: deps, opts: &m.opts, src: src, log: log, match: match, window: window,
		maxAge: maxAge, parts: map[string]*partition{}, trackers: map[string]*tracker{}, srcPaused: map[string]int{}, wake: make(chan struct{}, 1), freed: make(chan struct{}, 1), inflightTimes: map[int]time.Time{},
		st: &Status{Mapping: mp, State: StateEnabled, StateTransitionReason: "USER_INITIATED", LastProcessingResult: ResultNoRecords}}
	if o, ok := src.(Ordered); ok && o.Ordered() {
		r.ordered = true
	}
	if rd, ok := src.(Redeliverer); ok {
		r.redeliver = rd
	}
	if p, ok := src.(Pauser); ok && r.ordered {
		r.pauser = p
	}
	r.limit = mp.Spec.MaximumConcurrency
	if r.limit <= 0 {
		r.limit = DefaultConcurrency(mp.Spec.Type, r.ordered)
	}
	r.factor = 1
	if f := mp.Spec.ParallelizationFactor; f > 1 {
		if !r.ordered {
			_ = src.Close()
			if closeSender != nil {
				closeSender()
			}
			return fmt.Errorf("parallelization_factor %d: the %s source is not ordered, so it has no partitions to split into lanes", f, mp.Spec.Type)
		}
		r.factor = f
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &handle{r: r, key: settingsKey(mp), cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	m.running[mp.UUID] = h
	delete(m.stopped, mp.UUID)
	m.mu.Unlock()
	m.deps.Metrics.register(mp)
	log.Info("event-source mapping started", "type", mp.Spec.Type, "ordered", r.ordered, "concurrency", r.limit, "parallelization", r.factor)
	go func() {
		defer close(h.done)
		r.run(rctx)
		if closeSender != nil {
			closeSender()
		}
	}()
	return nil
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	hs := make([]*handle, 0, len(m.running))
	for id, h := range m.running {
		hs = append(hs, h)
		delete(m.running, id)
	}
	m.mu.Unlock()
	for _, h := range hs {
		h.cancel()
	}
	for _, h := range hs {
		<-h.done
	}
}

// readLag asks every running source that can for its backlog.
func (m *Manager) readLag(ctx context.Context) {
	m.mu.Lock()
	hs := make([]*handle, 0, len(m.running))
	for _, h := range m.running {
		hs = append(hs, h)
	}
	m.mu.Unlock()
	for _, h := range hs {
		m.deps.Metrics.oldest(h.r.m, h.r.oldestAge())
		l, ok := h.r.src.(Lagger)
		if !ok {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lag, err := l.Lag(lctx)
		cancel()
		if err != nil {
			m.log.Debug("reading lag", "mapping", h.r.m.UUID, "error", err)
			continue
		}
		h.r.count(func(s *Status) { s.Lag = lag })
		m.deps.Metrics.lag(h.r.m, lag)
	}
}

// Statuses lists every known mapping's status, sorted by function and name.
func (m *Manager) Statuses() []Status {
	m.mu.Lock()
	out := make([]Status, 0, len(m.running)+len(m.stopped))
	rs := make([]*runner, 0, len(m.running))
	for _, h := range m.running {
		rs = append(rs, h.r)
	}
	for _, st := range m.stopped {
		out = append(out, *st)
	}
	m.mu.Unlock()
	for _, r := range rs {
		out = append(out, r.status())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].UUID < out[j].UUID
	})
	return out
}

// Status returns one mapping's status.
func (m *Manager) Status(id string) (Status, bool) {
	m.mu.Lock()
	h, ok := m.running[id]
	st := m.stopped[id]
	m.mu.Unlock()
	if ok {
		return h.r.status(), true
	}
	if st != nil {
		return *st, true
	}
	return Status{}, false
}
