package discovery

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// FetchFunc runs one query for the instances of a function version. index
// is the index the previous answer returned (0 on the first call); a
// blocking implementation (Consul, Nomad) waits until the data changes past
// index or its wait time ends, then returns the instances and the new index.
type FetchFunc func(ctx context.Context, function, version string, index uint64) ([]Instance, uint64, error)

// WatchConfig tunes a Watcher. The zero value takes every default.
type WatchConfig struct {
	// IdleTimeout stops a watch nobody asked about for this long.
	// Default: 5m.
	IdleTimeout time.Duration
	// MinInterval is the least time between the starts of two queries of
	// one watch, so a fast-changing (or non-blocking) source is not hammered.
	// Default: 100ms.
	MinInterval time.Duration
	// MinBackoff and MaxBackoff bound the exponential wait after a failed
	// query. Defaults: 250ms and 30s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// OnChange, when set, is called from the watch's goroutine after the
	// instance set of a function version changed (including the first
	// answer). It must not block for long and must not modify instances.
	OnChange func(function, version string, instances []Instance)
}

func (c WatchConfig) withDefaults() WatchConfig {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
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
	return c
}

// ErrClosed is returned by a Watcher after Close.
var ErrClosed = errors.New("discovery watcher closed")

// Watcher is a Source that keeps one background query loop per function
// version it was asked about: started on the first Instances call, answered
// from its cache afterwards, stopped after IdleTimeout without a call. The
// slices it returns are shared and must not be modified.
//
// Lock order: Watcher.mu before watch.mu; neither is held while fetching.
type Watcher struct {
	fetch  FetchFunc
	cfg    WatchConfig
	logger hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // guards watches, closed, janitor
	watches map[watchKey]*watch
	closed  bool
	janitor bool
}

var _ Source = (*Watcher)(nil)

type watchKey struct{ function, version string }

type watch struct {
	key      watchKey
	cancel   context.CancelFunc
	lastUsed atomic.Int64 // unix nanos

	mu        sync.Mutex // guards the fields below
	instances []Instance
	have      bool          // instances holds a successful answer
	err       error         // the last query's error, nil after a success
	changed   chan struct{} // closed and replaced after every query outcome
}

// NewWatcher returns a Watcher over fetch. logger may be nil.
func NewWatcher(fetch FetchFunc, cfg WatchConfig, logger hclog.Logger) *Watcher {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Watcher{
		fetch:   fetch,
		cfg:     cfg.withDefaults(),
		logger:  logger,
		ctx:     ctx,
		cancel:  cancel,
		watches: map[watchKey]*watch{},
	}
}

// Instances returns the cached healthy instances of a function version,
// starting a watch (and waiting for its first answer, bounded by ctx) when
// there is none. Until a watch has had one good answer it returns the last
// query error, if any; after that it serves the last good set through
// errors.
func (w *Watcher) Instances(ctx context.Context, function, version string) ([]Instance, error) {
	wt, err := w.get(watchKey{function, version})
	if err != nil {
		return nil, err
	}
	for {
		wt.mu.Lock()
		ins, have, lastErr, changed := wt.instances, wt.have, wt.err, wt.changed
		wt.mu.Unlock()
		if have {
			return ins, nil
		}
		if lastErr != nil {
			return nil, lastErr
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// Watching returns the function versions with a running watch, sorted.
func (w *Watcher) Watching() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.watches))
	for k := range w.watches {
		out = append(out, k.function+":"+k.version)
	}
	slices.Sort(out)
	return out
}

// Close stops every watch and waits for their goroutines.
func (w *Watcher) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
}

func (w *Watcher) get(k watchKey) (*watch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	// Marking use under w.mu keeps reap from stopping a watch between this
	// lookup and the caller reading it.
	if wt, ok := w.watches[k]; ok {
		wt.lastUsed.Store(time.Now().UnixNano())
		return wt, nil
	}
	ctx, cancel := context.WithCancel(w.ctx)
	wt := &watch{key: k, cancel: cancel, changed: make(chan struct{})}
	wt.lastUsed.Store(time.Now().UnixNano())
	w.watches[k] = wt
	w.wg.Add(1)
	go w.loop(ctx, wt)
	if !w.janitor {
		w.janitor = true
		w.wg.Add(1)
		go w.reap()
	}
	return wt, nil
}

// reap stops watches that went unused for IdleTimeout.
func (w *Watcher) reap() {
	defer w.wg.Done()
	t := time.NewTicker(max(w.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case now := <-t.C:
			w.mu.Lock()
			for k, wt := range w.watches {
				if now.Sub(time.Unix(0, wt.lastUsed.Load())) >= w.cfg.IdleTimeout {
					wt.cancel()
					delete(w.watches, k)
					w.logger.Debug("stopped idle watch", "function", k.function, "version", k.version)
				}
			}
			w.mu.Unlock()
		}
	}
}

func (w *Watcher) loop(ctx context.Context, wt *watch) {
	defer w.wg.Done()
	log := w.logger.With("function", wt.key.function, "version", wt.key.version)
	var (
		index   uint64
		backoff time.Duration
	)
	for {
		started := time.Now()
		ins, next, err := w.fetch(ctx, wt.key.function, wt.key.version, index)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			backoff = min(max(backoff*2, w.cfg.MinBackoff), w.cfg.MaxBackoff)
			log.Warn("discovery query failed; retrying", "error", err, "backoff", backoff)
			wt.publish(nil, err, w.cfg.OnChange)
			if !sleep(ctx, backoff) {
				return
			}
			continue
		}
		backoff = 0
		// An index that goes backwards means the source reset (e.g. a
		// snapshot restore); start over rather than wait for it to catch up.
		if next < index {
			next = 0
		}
		index = next
		slices.SortFunc(ins, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
		wt.publish(ins, nil, w.cfg.OnChange)
		if !sleep(ctx, w.cfg.MinInterval-time.Since(started)) {
			return
		}
	}
}

// publish records one query outcome and wakes waiters. A failure keeps the
// last good set.
func (wt *watch) publish(ins []Instance, err error, onChange func(string, string, []Instance)) {
	wt.mu.Lock()
	changed := false
	if err != nil {
		wt.err = err
	} else {
		changed = !wt.have || !slices.Equal(wt.instances, ins)
		if changed {
			if ins == nil {
				ins = []Instance{}
			}
			wt.instances = ins
		}
		wt.have, wt.err = true, nil
	}
	close(wt.changed)
	wt.changed = make(chan struct{})
	cur := wt.instances
	wt.mu.Unlock()
	if changed && onChange != nil {
		onChange(wt.key.function, wt.key.version, cur)
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
