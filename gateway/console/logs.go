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
	Logger    hclog.Logger
}

// MaxLogEvents bounds a non-following answer (the newest are kept).
const MaxLogEvents = 2000

// recentParallel bounds the instances one non-following answer reads at
// once.
const recentParallel = 16

// LogTail fans in the log lines of a function's instances.
type LogTail struct {
	cfg LogTailConfig
	log hclog.Logger
}

// NewLogTail builds the tail.
func NewLogTail(cfg LogTailConfig) *LogTail {
	if cfg.Rescan <= 0 {
		cfg.Rescan = 2 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &LogTail{cfg: cfg, log: cfg.Logger.Named("logs")}
}

// Recent answers the lines the function's instances keep after since,
// oldest first, at most MaxLogEvents (the newest); requestID filters.
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
	slices.SortStableFunc(out, func(a, b LogEvent) int { return a.Time.Compare(b.Time) })
	if len(out) > MaxLogEvents {
		out = out[len(out)-MaxLogEvents:]
	}
	return out, nil
}

func event(in discovery.Instance, l invokeapi.LogLine) LogEvent {
	return LogEvent{Time: l.Time, Version: in.Version, Instance: in.ID, RequestID: l.RequestID, Stream: l.Stream, Message: l.Message}
}

// Follow sends the lines after since and then every new one, from every
// instance of the function (instances that appear later included), until
// ctx ends. A slow receiver slows only its own tail (the instances keep
// their lines in their rings; a line that falls out before it is read is
// lost to this tail).
func (t *LogTail) Follow(ctx context.Context, function string, since time.Time, requestID string, send chan<- LogEvent) {
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
				err := t.cfg.Client(function, in.Version).Logs(ctx, in.Address, from, true, func(l invokeapi.LogLine) error {
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
				})
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
