package console

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// LogEvent is one line of a function's log as the console shows it.
type LogEvent struct {
	Time      time.Time `json:"time"`
	Version   string    `json:"version"`
	Instance  string    `json:"instance"`
	RequestID string    `json:"requestId"`
	Stream    string    `json:"stream"`
	Message   string    `json:"message"`
}

// LogTailConfig wires the log tail.
type LogTailConfig struct {
	// Instances lists every running instance of a function (all versions).
	Instances func(ctx context.Context, function string) ([]discovery.Instance, error)
	// Client answers the invoke client of one function version (its secret).
	Client func(function, version string) *invokeapi.Client
	// Rescan is how often a live tail looks for new instances. Default 2s.
	Rescan time.Duration
	// Heartbeat is how often an idle live tail sends an SSE comment.
	// Default 15s.
	Heartbeat time.Duration
	// Keep is how many recent lines the gateway keeps per function (the
	// newest), so that the lines of an instance that has since gone
	// (scaled in, crashed, replaced by an update) still show in the tail
	// and the recent lines. Default 1000.
	Keep int
	// KeepFunctions bounds the functions whose lines are kept: over it,
	// the one invoked least recently is forgotten. Default 100.
	KeepFunctions int
	// KeepIdle: the gateway follows a function's instances into the kept
	// lines from its first invocation through this gateway until it has
	// been idle this long (the kept lines stay until pushed out). Default
	// 15m.
	KeepIdle time.Duration
	Logger   hclog.Logger
}

// MaxLogEvents bounds a non-following answer (the newest are kept).
const MaxLogEvents = 2000

// recentParallel bounds the instances one non-following answer reads at
// once.
const recentParallel = 16

// LogTail fans in the log lines of a function's instances, and keeps the
// recent lines of the functions invoked through this gateway (it is a
// metrics.Observer: an invocation starts or extends the keeping).
//
// Lock rule: LogTail.mu guards kept and every keeper's fields; nothing
// else is taken while it is held.
type LogTail struct {
	cfg LogTailConfig
	log hclog.Logger

	ctx    context.Context // ends at Close: every keeper stops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	kept   map[string]*keeper
	closed bool
}

// keeper holds one function's kept lines and runs its collector.
type keeper struct {
	lines []LogEvent // oldest first, at most cfg.Keep
	// last is the newest kept line's time per instance: a collector that
	// starts again does not keep a line twice.
	last   map[string]time.Time
	active time.Time          // the last invocation
	stop   context.CancelFunc // nil: no collector runs
}

// NewLogTail builds the tail.
func NewLogTail(cfg LogTailConfig) *LogTail {
	if cfg.Rescan <= 0 {
		cfg.Rescan = 2 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 1000
	}
	if cfg.KeepFunctions <= 0 {
		cfg.KeepFunctions = 100
	}
	if cfg.KeepIdle <= 0 {
		cfg.KeepIdle = 15 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &LogTail{cfg: cfg, log: cfg.Logger.Named("logs"), ctx: ctx, cancel: cancel, kept: map[string]*keeper{}}
}

// Close stops keeping lines and waits for the collectors to end.
func (t *LogTail) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
}

// Invocation keeps function's lines from now on (metrics.Observer).
func (t *LogTail) Invocation(function, _ string, _ bool, _, _ time.Duration, _ bool) {
	t.Watch(function)
}

// PlatformError keeps function's lines too: a platform error (an
// instance that crashed) is when they matter most (metrics.Observer).
func (t *LogTail) PlatformError(function, _ string) { t.Watch(function) }

// Throttle changes nothing: no instance ran (metrics.Observer).
func (t *LogTail) Throttle(string, string) {}

// Watch starts (or extends) keeping function's recent lines: a collector
// follows its instances until it has been idle for KeepIdle.
func (t *LogTail) Watch(function string) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	k, ok := t.kept[function]
	if !ok {
		if len(t.kept) >= t.cfg.KeepFunctions {
			t.evictLocked()
		}
		k = &keeper{last: map[string]time.Time{}}
		t.kept[function] = k
	}
	k.active = now
	if k.stop != nil {
		return
	}
	ctx, stop := context.WithCancel(t.ctx)
	k.stop = stop
	// Lines from a little before the first invocation: it has ended by
	// the time it is observed, and its instance keeps them in its ring.
	since := now.Add(-time.Minute)
	t.wg.Go(func() { t.collect(ctx, function, k, since) })
}

// evictLocked forgets the least recently invoked function's lines.
func (t *LogTail) evictLocked() {
	var oldest string
	var at time.Time
	for fn, k := range t.kept {
		if oldest == "" || k.active.Before(at) {
			oldest, at = fn, k.active
		}
	}
	if k := t.kept[oldest]; k != nil && k.stop != nil {
		k.stop()
	}
	delete(t.kept, oldest)
}

// collect follows function's live instances into k until ctx ends or the
// function has been idle for KeepIdle.
func (t *LogTail) collect(ctx context.Context, function string, k *keeper, since time.Time) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan LogEvent, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.followLive(ctx, function, since, "", keeperFlush, ch)
	}()
	defer func() {
		cancel()
		<-done
		t.mu.Lock()
		if k.stop != nil {
			k.stop()
			k.stop = nil
		}
		t.mu.Unlock()
	}()
	idle := time.NewTicker(max(t.cfg.KeepIdle/4, time.Second))
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-idle.C:
			t.mu.Lock()
			stale := time.Since(k.active) >= t.cfg.KeepIdle
			t.mu.Unlock()
			if stale {
				return
			}
		case ev := <-ch:
			t.mu.Lock()
			// A line no newer than the instance's newest kept one is
			// either out of order (REPORT is stamped when the invocation
			// ended) or read again by a restarted collector: keep it
			// unless it is held already.
			if ev.Time.After(k.last[ev.Instance]) || !slices.Contains(k.lines, ev) {
				if ev.Time.After(k.last[ev.Instance]) {
					k.last[ev.Instance] = ev.Time
				}
				k.lines = append(k.lines, ev)
				// Trim in halves so keeping costs amortised O(1) a line.
				if len(k.lines) >= 2*t.cfg.Keep {
					k.lines = append(k.lines[:0:0], k.lines[len(k.lines)-t.cfg.Keep:]...)
				}
			}
			t.mu.Unlock()
		}
	}
}

// Kept answers the lines the gateway keeps of function (oldest first, at
// most Keep), whether or not their instances still run.
func (t *LogTail) Kept(function string) []LogEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.kept[function]
	if k == nil {
		return nil
	}
	lines := k.lines
	if len(lines) > t.cfg.Keep {
		lines = lines[len(lines)-t.cfg.Keep:]
	}
	return slices.Clone(lines)
}

// keptGone answers the kept lines after since (of requestID, if given)
// of the instances not in live: theirs are read from the instances.
func (t *LogTail) keptGone(function string, live map[string]bool, since time.Time, requestID string) []LogEvent {
	var out []LogEvent
	for _, e := range t.Kept(function) {
		if live[e.Instance] || !e.Time.After(since) || (requestID != "" && e.RequestID != requestID) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// Recent answers the lines after since of the function's instances and
// the lines the gateway kept of its instances that have gone, oldest
// first, at most MaxLogEvents (the newest); requestID filters.
func (t *LogTail) Recent(ctx context.Context, function string, since time.Time, requestID string) ([]LogEvent, error) {
	insts, err := t.cfg.Instances(ctx, function)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var out []LogEvent
	var wg sync.WaitGroup
	// At most recentParallel instances are read at once.
	sem := make(chan struct{}, recentParallel)
	for _, in := range insts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			err := t.cfg.Client(function, in.Version).Logs(ctx, in.Address, since, false, func(l invokeapi.LogLine) error {
				if requestID != "" && l.RequestID != requestID {
					return nil
				}
				mu.Lock()
				out = append(out, event(in, l))
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.log.Debug("reading an instance's logs", "function", function, "instance", in.ID, "error", err)
			}
		})
	}
	wg.Wait()
	live := make(map[string]bool, len(insts))
	for _, in := range insts {
		live[in.ID] = true
	}
	out = append(out, t.keptGone(function, live, since, requestID)...)
	slices.SortStableFunc(out, func(a, b LogEvent) int { return a.Time.Compare(b.Time) })
	if len(out) > MaxLogEvents {
		out = out[len(out)-MaxLogEvents:]
	}
	return out, nil
}

func event(in discovery.Instance, l invokeapi.LogLine) LogEvent {
	return LogEvent{Time: l.Time, Version: in.Version, Instance: in.ID, RequestID: l.RequestID, Stream: l.Stream, Message: l.Message}
}

// Follow sends the lines the gateway kept (after since) of the function's
// instances that have gone, then the live instances' lines after since
// and every new one (instances that appear later included), until ctx
// ends. A slow receiver slows only its own tail (the instances keep their
// lines in their rings; a line that falls out before it is read is lost
// to this tail).
func (t *LogTail) Follow(ctx context.Context, function string, since time.Time, requestID string, send chan<- LogEvent) {
	if insts, err := t.cfg.Instances(ctx, function); err == nil {
		live := make(map[string]bool, len(insts))
		for _, in := range insts {
			live[in.ID] = true
		}
		for _, e := range t.keptGone(function, live, since, requestID) {
			select {
			case send <- e:
			case <-ctx.Done():
				return
			}
		}
	}
	t.followLive(ctx, function, since, requestID, 0, send)
}

// keeperFlush is how long an instance may hold new lines before writing
// them to the gateway's keeper of lines: the keeper is not watched live,
// and batching saves a write and a read per line on the warm path.
const keeperFlush = 250 * time.Millisecond

// followLive is Follow over the live instances only; flush > 0 lets each
// instance batch its lines for that long (invokeapi.Client.LogsBatched).
func (t *LogTail) followLive(ctx context.Context, function string, since time.Time, requestID string, flush time.Duration, send chan<- LogEvent) {
	var mu sync.Mutex
	following := map[string]bool{}
	// last is the time of the last line sent per instance, so a tail that
	// re-attaches to an instance does not repeat lines.
	last := map[string]time.Time{}
	var wg sync.WaitGroup
	defer wg.Wait()
	scan := func() {
		insts, err := t.cfg.Instances(ctx, function)
		if err != nil {
			t.log.Debug("listing instances for a log tail", "function", function, "error", err)
			return
		}
		for _, in := range insts {
			mu.Lock()
			seen := following[in.ID]
			following[in.ID] = true
			mu.Unlock()
			if seen {
				continue
			}
			mu.Lock()
			from := since
			if t, ok := last[in.ID]; ok {
				from = t
			}
			mu.Unlock()
			wg.Go(func() {
				defer func() { mu.Lock(); delete(following, in.ID); mu.Unlock() }()
				onLine := func(l invokeapi.LogLine) error {
					mu.Lock()
					last[in.ID] = l.Time
					mu.Unlock()
					if requestID != "" && l.RequestID != requestID {
						return nil
					}
					select {
					case send <- event(in, l):
					case <-ctx.Done():
						return ctx.Err()
					}
					return nil
				}
				c := t.cfg.Client(function, in.Version)
				var err error
				if flush > 0 {
					err = c.LogsBatched(ctx, in.Address, from, flush, onLine)
				} else {
					err = c.Logs(ctx, in.Address, from, true, onLine)
				}
				if err != nil && ctx.Err() == nil {
					t.log.Debug("following an instance's logs", "function", function, "instance", in.ID, "error", err)
				}
			})
		}
	}
	scan()
	tick := time.NewTicker(t.cfg.Rescan)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			scan()
		}
	}
}

func (c *Console) serveLogs(w http.ResponseWriter, r *http.Request) {
	if c.opts.Logs == nil {
		writeMessage(w, http.StatusServiceUnavailable, "this gateway cannot read instance logs")
		return
	}
	fn := r.PathValue("FunctionName")
	if !functionName.MatchString(fn) {
		writeMessage(w, http.StatusBadRequest, "function name must be 1-64 letters, digits, hyphens or underscores")
		return
	}
	if c.opts.Functions != nil {
		ok, err := c.opts.Functions(r, fn)
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, "reading the function: "+err.Error())
			return
		}
		if !ok {
			writeMessage(w, http.StatusNotFound, "function not found: "+fn)
			return
		}
	}
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeMessage(w, http.StatusBadRequest, "since must be an RFC 3339 time")
			return
		}
		since = t
	}
	// A reconnecting EventSource names the last event it had: go on from
	// there rather than repeat lines.
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if t, err := time.Parse(time.RFC3339Nano, id); err == nil {
			since = t
		}
	}
	requestID := q.Get("requestId")
	follow := q.Get("follow") == "1" || q.Get("follow") == "true" || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if !follow {
		evs, err := c.opts.Logs.Recent(r.Context(), fn, since, requestID)
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, "listing instances: "+err.Error())
			return
		}
		if evs == nil {
			evs = []LogEvent{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": evs})
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeMessage(w, http.StatusInternalServerError, "this connection cannot stream")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// ": " lines are SSE comments: the client sees the stream open at once.
	_, _ = w.Write([]byte(": tailing " + fn + "\n\n"))
	flusher.Flush()
	// The answer outlives the gateway's body deadline; a tail ends when
	// the client leaves.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch := make(chan LogEvent, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.opts.Logs.Follow(ctx, fn, since, requestID, ch)
	}()
	defer func() { cancel(); <-done }()
	hb := time.NewTicker(c.opts.Logs.cfg.Heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.stopping:
			return
		case <-hb.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			flusher.Flush()
		case ev := <-ch:
			if _, err := w.Write(sseEvent(ev)); err != nil {
				return
			}
			// Send what is already queued before flushing.
			for more := true; more; {
				select {
				case ev := <-ch:
					if _, err := w.Write(sseEvent(ev)); err != nil {
						return
					}
				default:
					more = false
				}
			}
			flusher.Flush()
		}
	}
}

// sseEvent is one server-sent event: the event's time as its id (what a
// reconnecting EventSource sends back as Last-Event-ID) and its JSON.
func sseEvent(ev LogEvent) []byte {
	b, _ := json.Marshal(ev)
	out := make([]byte, 0, len(b)+64)
	out = append(out, "id: "...)
	out = ev.Time.UTC().AppendFormat(out, time.RFC3339Nano)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	return append(out, '\n', '\n')
}
