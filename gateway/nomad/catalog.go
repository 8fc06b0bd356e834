package nomad

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/specs"
)

// Job meta keys the compiler writes (jobs.Meta*).
const (
	MetaSpec     = "nimbus.spec"
	MetaFunction = "nimbus.function"
	MetaVersion  = "nimbus.version"
)

// JobLister is the part of the Nomad jobs API the Catalog uses (*api.Jobs).
type JobLister interface {
	ListOptions(opts *api.JobListOptions, q *api.QueryOptions) ([]*api.JobListStub, *api.QueryMeta, error)
}

// VariableReader is the part of the Nomad variables API the Catalog uses
// (*api.Variables).
type VariableReader interface {
	PrefixList(prefix string, q *api.QueryOptions) ([]*api.VariableMetadata, *api.QueryMeta, error)
	GetVariableItems(path string, q *api.QueryOptions) (api.VariableItems, *api.QueryMeta, error)
}

var (
	_ JobLister      = (*api.Jobs)(nil)
	_ VariableReader = (*api.Variables)(nil)
)

// CatalogConfig configures a Catalog. Zero values take the defaults noted.
type CatalogConfig struct {
	// JobPrefix selects the function jobs. Default "nimbus-".
	JobPrefix string
	// VariablesPrefix selects the Nomad Variables the catalog reads.
	// Default "nimbus/".
	VariablesPrefix string
	// NoVariables turns the variables watch off (a gateway whose ACL token
	// may not read them). Default false.
	NoVariables bool
	// Namespace and Region to query. Default: the client's.
	Namespace string
	Region    string
	// WaitTime bounds each blocking query. Default 5m.
	WaitTime time.Duration
	// MinInterval is the least time between two queries of one loop.
	// Default 100ms.
	MinInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed query.
	// Defaults 250ms and 30s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// QueryTimeout bounds one query, so a Nomad that accepts connections
	// and never answers counts as failing. Default WaitTime plus Nomad's
	// jitter (WaitTime/16) plus 30s.
	QueryTimeout time.Duration
	// FirstListingWait bounds how long Function and Functions wait for the
	// first jobs listing; they fail with ErrUnavailable after it, or as
	// soon as the query has failed twice in a row. Default 10s.
	FirstListingWait time.Duration
	// MaxStale is how long Function and Functions keep answering from the
	// last listing while Nomad's queries fail; after it they fail with
	// ErrUnavailable. Default 1m.
	MaxStale time.Duration
}

// ErrUnavailable is wrapped when the catalog cannot answer because its
// Nomad queries fail (or never answered); the error says why.
var ErrUnavailable = errors.New("the nomad catalog is unavailable")

// failingAfter is how many failed queries in a row make a source count as
// failing: one failure is a blip the next retry (MinBackoff later) usually
// clears.
const failingAfter = 2

// Defaults fills empty fields.
func (c *CatalogConfig) Defaults() {
	if c.JobPrefix == "" {
		c.JobPrefix = "nimbus-"
	}
	if c.VariablesPrefix == "" {
		c.VariablesPrefix = "nimbus/"
	}
	if c.WaitTime <= 0 {
		c.WaitTime = 5 * time.Minute
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 100 * time.Millisecond
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 250 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = c.WaitTime + c.WaitTime/16 + 30*time.Second
	}
	if c.FirstListingWait <= 0 {
		c.FirstListingWait = 10 * time.Second
	}
	if c.MaxStale <= 0 {
		c.MaxStale = time.Minute
	}
}

// Version is one function version's job as the catalog saw it.
type Version struct {
	JobID     string
	Namespace string
	Function  string
	Version   string
	Spec      *specs.Function
	// JobModifyIndex changes when the job is re-registered.
	JobModifyIndex uint64
	// Status is Nomad's job status ("pending", "running", "dead").
	Status string
}

// Catalog is the cluster catalog: function versions from Nomad job meta,
// and the Nomad Variables under VariablesPrefix. Run keeps it current;
// Function and Functions wait (bounded by ctx) for the first listing. It
// implements the methods the gateway's API needs of a catalog.
type Catalog struct {
	jobs   JobLister
	vars   VariableReader
	cfg    CatalogConfig
	logger hclog.Logger

	snap     atomic.Pointer[catalog.Snapshot]
	ready    chan struct{}
	readyOne sync.Once

	notifyMu sync.Mutex // serialises watcher calls from the two loops

	mu        sync.Mutex           // guards the fields below
	versions  map[string]*Version  // by job ID
	variables map[string]*variable // by path
	watchers  []func(*catalog.Snapshot)
	queries   map[string]*queryState // by loop ("jobs", "variables")
	outcome   chan struct{}          // closed and replaced after every query
	// jobsIndex is the Nomad index of the jobs listing applied last;
	// lastReadThrough is when a catalog miss last listed jobs directly.
	jobsIndex       uint64
	lastReadThrough time.Time
}

// queryState is one loop's recent outcomes.
type queryState struct {
	lastSuccess  time.Time
	lastErr      error
	failures     int       // in a row since the last success
	failingSince time.Time // the first of those failures
}

type variable struct {
	modifyIndex uint64
	items       map[string]string
}

// NewCatalog returns a Catalog; it reads nothing until Run. vars may be nil
// when cfg.NoVariables is set.
func NewCatalog(jobs JobLister, vars VariableReader, cfg CatalogConfig, logger hclog.Logger) (*Catalog, error) {
	cfg.Defaults()
	if jobs == nil {
		return nil, errors.New("nomad catalog needs a jobs client")
	}
	if vars == nil && !cfg.NoVariables {
		return nil, errors.New("nomad catalog needs a variables client (or NoVariables)")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	c := &Catalog{
		jobs: jobs, vars: vars, cfg: cfg, logger: logger.Named("nomad-catalog"),
		ready:     make(chan struct{}),
		versions:  map[string]*Version{},
		variables: map[string]*variable{},
		queries:   map[string]*queryState{},
		outcome:   make(chan struct{}),
	}
	c.snap.Store(catalog.NewSnapshot(nil))
	return c, nil
}

// Run watches jobs (and variables) until ctx is done.
func (c *Catalog) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.loop(ctx, "jobs", c.fetchJobs)
	}()
	if !c.cfg.NoVariables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx, "variables", c.fetchVariables)
		}()
	}
	wg.Wait()
}

// Ready is closed after the first successful jobs listing.
func (c *Catalog) Ready() <-chan struct{} { return c.ready }

// Snapshot returns the current function set (empty before the first listing).
func (c *Catalog) Snapshot() *catalog.Snapshot { return c.snap.Load() }

// Function returns one function or catalog.ErrFunctionNotFound.
func (c *Catalog) Function(ctx context.Context, name string) (*catalog.Function, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	fn, err := c.snap.Load().Function(name)
	if errors.Is(err, catalog.ErrFunctionNotFound) && c.readThrough(ctx) {
		// A job registered a moment ago (nimbus deploy just returned) may
		// not have reached the blocking query yet: one direct listing.
		fn, err = c.snap.Load().Function(name)
	}
	return fn, err
}

// readThroughEvery spaces the direct listings misses cause, so calls for
// functions that do not exist cannot flood Nomad.
const readThroughEvery = 250 * time.Millisecond

// readThrough lists the jobs once, without blocking, when the last such
// listing is older than readThroughEvery; it reports whether it did.
func (c *Catalog) readThrough(ctx context.Context) bool {
	c.mu.Lock()
	if time.Since(c.lastReadThrough) < readThroughEvery {
		c.mu.Unlock()
		return false
	}
	c.lastReadThrough = time.Now()
	c.mu.Unlock()
	if _, err := c.fetchJobs(ctx, 0); err != nil {
		c.logger.Debug("reading jobs through on a catalog miss", "error", err)
		return false
	}
	return true
}

// Sync lists the jobs once, now, without blocking: a gateway that has just
// registered or removed jobs itself (a management write) calls it before
// answering, so its own next read sees them instead of the listing the
// blocking query last returned.
func (c *Catalog) Sync(ctx context.Context) error {
	_, err := c.fetchJobs(ctx, 0)
	return err
}

// Functions returns every function, sorted by name.
func (c *Catalog) Functions(ctx context.Context) ([]*catalog.Function, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.snap.Load().Functions(), nil
}

// wait returns nil once the catalog can answer: after the first jobs
// listing, and while Nomad's jobs queries have not failed for longer than
// MaxStale. Before the first listing it fails as soon as the query failed
// twice in a row, or after FirstListingWait, so a caller learns why
// instead of hanging.
func (c *Catalog) wait(ctx context.Context) error {
	var timeout <-chan time.Time
	for {
		c.mu.Lock()
		st, outcome := c.queryLocked("jobs"), c.outcome
		c.mu.Unlock()
		select {
		case <-c.ready:
			if st.failures >= failingAfter && time.Since(st.failingSince) > c.cfg.MaxStale {
				return fmt.Errorf("%w: nomad queries failing for %s, longer than the %s the last listing is used: %w",
					ErrUnavailable, time.Since(st.failingSince).Round(time.Second), c.cfg.MaxStale, st.lastErr)
			}
			return nil
		default:
		}
		if st.failures >= failingAfter {
			return fmt.Errorf("%w: no listing of the function jobs yet: %w", ErrUnavailable, st.lastErr)
		}
		if timeout == nil {
			t := time.NewTimer(c.cfg.FirstListingWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-c.ready:
		case <-outcome:
		case <-timeout:
			reason := "no answer"
			if st.lastErr != nil {
				reason = st.lastErr.Error()
			}
			return fmt.Errorf("%w: no listing of the function jobs within %s: %s", ErrUnavailable, c.cfg.FirstListingWait, reason)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the nomad catalog's first listing: %w", ctx.Err())
		}
	}
}

// CheckReady reports why the catalog cannot serve (nil when it can): no
// jobs listing yet, or Nomad's queries failing twice or more in a row.
// The gateway's health endpoint answers "not ready" with it.
func (c *Catalog) CheckReady() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.ready:
	default:
		if st := c.queryLocked("jobs"); st.lastErr != nil {
			return fmt.Errorf("%w: no listing of the function jobs yet: %w", ErrUnavailable, st.lastErr)
		}
		return fmt.Errorf("%w: no listing of the function jobs yet", ErrUnavailable)
	}
	for _, what := range []string{"jobs", "variables"} {
		if st := c.queryLocked(what); st.failures >= failingAfter {
			return fmt.Errorf("%w: nomad %s queries failing for %s (last success %s ago): %w", ErrUnavailable, what,
				time.Since(st.failingSince).Round(time.Millisecond), time.Since(st.lastSuccess).Round(time.Millisecond), st.lastErr)
		}
	}
	return nil
}

// queryLocked returns a copy of one loop's state. c.mu is held.
func (c *Catalog) queryLocked(what string) queryState {
	if st := c.queries[what]; st != nil {
		return *st
	}
	return queryState{}
}

// record notes one query's outcome and wakes waiters.
func (c *Catalog) record(what string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.queries[what]
	if st == nil {
		st = &queryState{}
		c.queries[what] = st
	}
	now := time.Now()
	if err == nil {
		st.lastSuccess, st.lastErr, st.failures, st.failingSince = now, nil, 0, time.Time{}
	} else {
		if st.failures == 0 {
			st.failingSince = now
		}
		st.failures++
		st.lastErr = err
	}
	close(c.outcome)
	c.outcome = make(chan struct{})
}

// Version returns the job behind a function version.
func (c *Catalog) Version(function, version string) (*Version, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.versions {
		if v.Function == function && v.Version == version {
			return v, true
		}
	}
	return nil, false
}

// JobID returns the job ID of a function version as listed; it has the
// signature ScalerConfig.JobID takes.
func (c *Catalog) JobID(function, version string) (string, error) {
	if v, ok := c.Version(function, version); ok {
		return v.JobID, nil
	}
	return "", fmt.Errorf("version %s of function %s: %w", version, function, catalog.ErrQualifierNotFound)
}

// Variables returns a copy of every variable read: path → items.
func (c *Catalog) Variables() map[string]map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[string]string, len(c.variables))
	for p, v := range c.variables {
		out[p] = maps.Clone(v.items)
	}
	return out
}

// Variable returns a copy of one variable's items.
func (c *Catalog) Variable(path string) (map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.variables[path]
	if !ok {
		return nil, false
	}
	return maps.Clone(v.items), true
}

// Watch registers fn to be called (from Run's goroutines, one at a time)
// after the function set or the variables changed.
func (c *Catalog) Watch(fn func(*catalog.Snapshot)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watchers = append(c.watchers, fn)
}

// loop runs fetch as a blocking query until ctx is done.
func (c *Catalog) loop(ctx context.Context, what string, fetch func(ctx context.Context, index uint64) (uint64, error)) {
	var (
		index   uint64
		backoff time.Duration
	)
	for {
		started := time.Now()
		qctx, cancel := context.WithTimeout(ctx, c.cfg.QueryTimeout)
		next, err := fetch(qctx, index)
		cancel()
		if ctx.Err() != nil {
			return
		}
		c.record(what, err)
		wait := c.cfg.MinInterval - time.Since(started)
		if err != nil {
			backoff = min(max(backoff*2, c.cfg.MinBackoff), c.cfg.MaxBackoff)
			c.logger.Warn("nomad query failed; retrying", "query", what, "error", err, "backoff", backoff)
			wait = backoff
		} else {
			backoff = 0
			if next < index {
				next = 0 // the index went backwards (e.g. a restore): start over
			}
			index = next
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (c *Catalog) queryOptions(ctx context.Context, index uint64) *api.QueryOptions {
	return (&api.QueryOptions{
		Namespace: c.cfg.Namespace,
		Region:    c.cfg.Region,
		WaitIndex: index,
		WaitTime:  c.cfg.WaitTime,
	}).WithContext(ctx)
}

func (c *Catalog) fetchJobs(ctx context.Context, index uint64) (uint64, error) {
	q := c.queryOptions(ctx, index)
	q.Prefix = c.cfg.JobPrefix
	stubs, meta, err := c.jobs.ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
	if err != nil {
		return 0, fmt.Errorf("listing jobs with prefix %s: %w", c.cfg.JobPrefix, err)
	}
	c.mu.Lock()
	if meta.LastIndex < c.jobsIndex {
		// An older answer than one already applied (a blocking query that
		// overlapped a read-through): keep the newer listing.
		c.mu.Unlock()
		return meta.LastIndex, nil
	}
	c.jobsIndex = meta.LastIndex
	next := make(map[string]*Version, len(stubs))
	for _, s := range stubs {
		if v := c.version(s); v != nil {
			next[s.ID] = v
		}
	}
	changed := !maps.EqualFunc(c.versions, next, func(a, b *Version) bool { return a == b })
	c.versions = next
	if changed {
		c.snap.Store(buildSnapshot(next))
	}
	c.mu.Unlock()
	c.readyOne.Do(func() { close(c.ready) })
	if changed {
		c.notify()
	}
	return meta.LastIndex, nil
}

// version turns a job stub into a Version, reusing the decoded spec while
// the job is unmodified. It returns nil for jobs that are not (or no longer)
// function versions. c.mu is held.
func (c *Catalog) version(s *api.JobListStub) *Version {
	if s.Stop || s.ParentID != "" {
		return nil
	}
	fn, ver, raw := s.Meta[MetaFunction], s.Meta[MetaVersion], s.Meta[MetaSpec]
	if fn == "" || ver == "" || raw == "" {
		return nil // another job that shares the prefix
	}
	if old, ok := c.versions[s.ID]; ok && old.JobModifyIndex == s.JobModifyIndex && old.Status == s.Status {
		return old
	}
	log := c.logger.With("function", fn, "version", ver, "job_id", s.ID)
	spec, err := specs.Decode([]byte(raw))
	if err != nil {
		log.Warn("ignoring job with an unreadable spec", "error", err)
		return nil
	}
	if spec.Name != fn {
		log.Warn("ignoring job whose spec names another function", "spec_function", spec.Name)
		return nil
	}
	return &Version{
		JobID: s.ID, Namespace: s.Namespace, Function: fn, Version: ver, Spec: spec,
		JobModifyIndex: s.JobModifyIndex, Status: s.Status,
	}
}

// buildSnapshot groups versions by function. When two jobs claim the same
// function version, the more recently modified one wins.
func buildSnapshot(versions map[string]*Version) *catalog.Snapshot {
	byFn := map[string]*catalog.Function{}
	chosen := map[[2]string]*Version{}
	for _, v := range versions {
		k := [2]string{v.Function, v.Version}
		if cur, ok := chosen[k]; ok && (cur.JobModifyIndex > v.JobModifyIndex ||
			cur.JobModifyIndex == v.JobModifyIndex && cur.JobID < v.JobID) {
			continue
		}
		chosen[k] = v
	}
	for k, v := range chosen {
		f, ok := byFn[k[0]]
		if !ok {
			f = &catalog.Function{Name: k[0], Versions: map[string]*specs.Function{}, Aliases: map[string]*specs.Alias{}}
			byFn[k[0]] = f
		}
		f.Versions[k[1]] = v.Spec
	}
	fns := make([]*catalog.Function, 0, len(byFn))
	for _, f := range byFn {
		// Aliases travel in $LATEST's spec until the catalog store holds them.
		if l := f.Latest(); l != nil {
			for _, a := range l.Aliases {
				f.Aliases[a.Name] = a
			}
		}
		fns = append(fns, f)
	}
	return catalog.NewSnapshot(fns)
}

func (c *Catalog) fetchVariables(ctx context.Context, index uint64) (uint64, error) {
	list, meta, err := c.vars.PrefixList(c.cfg.VariablesPrefix, c.queryOptions(ctx, index))
	if err != nil {
		return 0, fmt.Errorf("listing variables under %s: %w", c.cfg.VariablesPrefix, err)
	}
	c.mu.Lock()
	old := c.variables
	c.mu.Unlock()
	next := make(map[string]*variable, len(list))
	changed := len(list) != len(old)
	for _, m := range list {
		if !strings.HasPrefix(m.Path, c.cfg.VariablesPrefix) {
			continue
		}
		if v, ok := old[m.Path]; ok && v.modifyIndex == m.ModifyIndex {
			next[m.Path] = v
			continue
		}
		items, _, err := c.vars.GetVariableItems(m.Path, (&api.QueryOptions{Namespace: c.cfg.Namespace, Region: c.cfg.Region}).WithContext(ctx))
		if errors.Is(err, api.ErrVariablePathNotFound) {
			continue // deleted since the listing; the next listing agrees
		}
		if err != nil {
			return 0, fmt.Errorf("reading variable %s: %w", m.Path, err)
		}
		next[m.Path] = &variable{modifyIndex: m.ModifyIndex, items: items}
		changed = true
	}
	if !changed {
		for p := range old {
			if _, ok := next[p]; !ok {
				changed = true
				break
			}
		}
	}
	c.mu.Lock()
	c.variables = next
	c.mu.Unlock()
	if changed {
		c.notify()
	}
	return meta.LastIndex, nil
}

func (c *Catalog) notify() {
	c.mu.Lock()
	ws := append([]func(*catalog.Snapshot){}, c.watchers...)
	c.mu.Unlock()
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	s := c.snap.Load()
	for _, w := range ws {
		w(s)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
