package instance

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

// Bounds of an instance's log ring (invokeapi.PathLogs): the newest lines
// up to both limits are kept.
const (
	ringLines = 2000
	ringBytes = 1 << 20
	// subBuffer lines wait for a slow follower before it misses lines.
	subBuffer = 512
)

// logRing keeps the instance's recent log lines (the environments' output
// and the platform's START/END/REPORT lines) for the log endpoint, and
// hands new lines to followers.
//
// Lock rule: mu guards every field; sends to followers do not block (a
// full follower misses the line and is told so by dropped).
type logRing struct {
	now func() time.Time

	mu sync.Mutex
	// lines[start:] are the kept lines, oldest first. Dropping the oldest
	// only moves start; the slice is compacted once start passes
	// ringLines, so an append costs O(1) amortised even when the ring is
	// full (a shift per line cost a 2000-entry copy on every invoke).
	lines []invokeapi.LogLine
	start int
	bytes int
	subs  map[*logFollower]struct{}
}

// logFollower receives new lines; dropped counts those it missed.
type logFollower struct {
	ch      chan invokeapi.LogLine
	dropped atomic.Int64
}

func newLogRing(now func() time.Time) *logRing {
	if now == nil {
		now = time.Now
	}
	return &logRing{now: now, subs: map[*logFollower]struct{}{}}
}

// add keeps text's lines (split at newlines; a trailing newline ends the
// last one) from stream, tagged with requestID.
func (r *logRing) add(stream, requestID, text string) {
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return
	}
	t := r.now().UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	for line := range strings.SplitSeq(text, "\n") {
		for len(line) > invokeapi.MaxLogLine {
			r.appendLocked(invokeapi.LogLine{Time: t, RequestID: requestID, Stream: stream, Message: line[:invokeapi.MaxLogLine]})
			line = line[invokeapi.MaxLogLine:]
		}
		r.appendLocked(invokeapi.LogLine{Time: t, RequestID: requestID, Stream: stream, Message: strings.TrimSuffix(line, "\r")})
	}
}

func (r *logRing) appendLocked(l invokeapi.LogLine) {
	if r.start >= ringLines {
		n := copy(r.lines, r.lines[r.start:])
		clear(r.lines[n:]) // let the dropped messages be collected
		r.lines, r.start = r.lines[:n], 0
	}
	r.lines = append(r.lines, l)
	r.bytes += len(l.Message)
	for len(r.lines)-r.start > ringLines || r.bytes > ringBytes {
		r.bytes -= len(r.lines[r.start].Message)
		r.lines[r.start] = invokeapi.LogLine{}
		r.start++
	}
	for f := range r.subs {
		select {
		case f.ch <- l:
		default:
			f.dropped.Add(1)
		}
	}
}

// since answers the kept lines after t (all for the zero time).
func (r *logRing) since(t time.Time) []invokeapi.LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sinceLocked(t)
}

func (r *logRing) sinceLocked(t time.Time) []invokeapi.LogLine {
	var out []invokeapi.LogLine
	for _, l := range r.lines[r.start:] {
		if t.IsZero() || l.Time.After(t) {
			out = append(out, l)
		}
	}
	return out
}

// follow answers the kept lines after t and a follower that receives
// every later line, with no gap between them; stop ends it.
func (r *logRing) follow(t time.Time) ([]invokeapi.LogLine, *logFollower, func()) {
	f := &logFollower{ch: make(chan invokeapi.LogLine, subBuffer)}
	r.mu.Lock()
	defer r.mu.Unlock()
	backlog := r.sinceLocked(t)
	r.subs[f] = struct{}{}
	return backlog, f, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.subs, f)
	}
}

// serveLogs answers invokeapi.PathLogs: the kept lines after since as
// newline-delimited JSON, and with follow=1 every new line until the
// client leaves or the instance stops.
func (in *Instance) serveLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			invokeapi.WriteError(w, invokeapi.CodeBadRequest, "since must be an RFC 3339 time")
			return
		}
		since = t
	}
	var every time.Duration
	if s := q.Get("flush"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > invokeapi.MaxLogFlush {
			invokeapi.WriteError(w, invokeapi.CodeBadRequest, "flush must be a duration from 0 to "+invokeapi.MaxLogFlush.String())
			return
		}
		every = d
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	if q.Get("follow") != "1" {
		for _, l := range in.logs.since(since) {
			if enc.Encode(l) != nil {
				return
			}
		}
		return
	}
	backlog, f, stop := in.logs.follow(since)
	defer stop()
	flusher, _ := w.(http.Flusher)
	// The status goes first: a follower with no backlog must see the
	// stream open before the first new line.
	w.WriteHeader(http.StatusOK)
	for _, l := range backlog {
		if enc.Encode(l) != nil {
			return
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	reported := int64(0)
	// With flush=every, new lines are written out at most once per every
	// (a collector that is not watching live pays one write per batch,
	// not one per line); without it each quiet moment flushes.
	var flushTimer *time.Timer
	var flushDue <-chan time.Time
	lastFlush := time.Now()
	defer func() {
		if flushTimer != nil {
			flushTimer.Stop()
		}
	}()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-in.closingCh:
			return
		case <-flushDue:
			flushDue = nil
			if flusher != nil {
				flusher.Flush()
			}
			lastFlush = time.Now()
		case l := <-f.ch:
			if d := f.dropped.Load(); d > reported {
				// Say so rather than leave a silent gap.
				gap := invokeapi.LogLine{Time: l.Time, Stream: invokeapi.StreamPlatform,
					Message: "[nimbus] " + strconv.FormatInt(d-reported, 10) + " log lines were dropped: the reader was too slow"}
				reported = d
				if enc.Encode(gap) != nil {
					return
				}
			}
			if enc.Encode(l) != nil {
				return
			}
			if flusher == nil || len(f.ch) > 0 || flushDue != nil {
				continue
			}
			if wait := every - time.Since(lastFlush); wait > 0 {
				if flushTimer == nil {
					flushTimer = time.NewTimer(wait)
				} else {
					flushTimer.Reset(wait)
				}
				flushDue = flushTimer.C
				continue
			}
			flusher.Flush()
			lastFlush = time.Now()
		}
	}
}
