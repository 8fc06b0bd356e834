package console

import (
	"context"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Lock rule: History.mu guards fns and every series; nothing else is taken
// while it is held.

// The history keeps two resolutions per function: 10 s buckets for the
// last hour (the 15m and 1h windows) and 1 min buckets for the last day
// (the 1d window). Buckets are allocated only when something happened in
// them, so an idle function costs two empty rings.
const (
	fineStep    = 10 * time.Second
	fineSlots   = 360 // 1h
	coarseStep  = time.Minute
	coarseSlots = 1440 // 1d
	// DefaultMaxFunctions bounds the functions with a history; the least
	// recently active one is dropped for a new one.
	DefaultMaxFunctions = 500
)

// Duration histogram: log-spaced upper bounds from 1 ms, ×1.3 per bucket
// (a quantile reads at most 30 % high), up to ~15 min (Lambda's longest
// timeout); one overflow bucket above. A bucket of both resolutions costs
// about 280 bytes, so a function busy in every bucket of the day holds
// about half a megabyte; idle buckets cost nothing.
const histBuckets = 52

var histBounds = func() [histBuckets]float64 {
	var b [histBuckets]float64
	v := 1.0
	for i := range b {
		b[i] = v
		v *= 1.3
	}
	return b
}()

// point is one bucket of one function.
type point struct {
	slot        int64 // unix time / step: which bucket this is
	invocations int64
	errors      int64
	throttles   int64
	coldStarts  int64
	concurrency int
	asyncDepth  int
	asyncAge    float64
	hist        [histBuckets + 1]uint32
}

func (p *point) observe(ms float64) {
	i, _ := slices.BinarySearch(histBounds[:], ms)
	p.hist[i]++
}

// quantile reads the q-th quantile from the histogram: the upper bound
// of the bucket it falls into (the largest bound for the overflow).
func (p *point) quantile(q float64) float64 {
	var n uint64
	for _, c := range p.hist {
		n += uint64(c)
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range p.hist {
		seen += uint64(c)
		if seen >= rank {
			if i >= histBuckets {
				return histBounds[histBuckets-1]
			}
			return histBounds[i]
		}
	}
	return histBounds[histBuckets-1]
}

// ring is a fixed window of buckets of one step.
type ring struct {
	step time.Duration
	pts  []*point
}

func newRing(step time.Duration, slots int) ring {
	return ring{step: step, pts: make([]*point, slots)}
}

// at answers the bucket of t, allocating it (and recycling the stale one
// in its place).
func (r *ring) at(t time.Time) *point {
	slot := t.Unix() / int64(r.step/time.Second)
	i := int(slot % int64(len(r.pts)))
	p := r.pts[i]
	if p == nil || p.slot != slot {
		p = &point{slot: slot}
		r.pts[i] = p
	}
	return p
}

// get answers the bucket of slot if it is held.
func (r *ring) get(slot int64) *point {
	p := r.pts[int(slot%int64(len(r.pts)))]
	if p == nil || p.slot != slot {
		return nil
	}
	return p
}

type series struct {
	fine, coarse ring
	active       time.Time
}

// History is the gateway's bounded in-memory metrics history per function.
// It is fed by the gateway's metrics (it implements metrics.Observer) and
// by samplers of concurrency and async queue depth.
type History struct {
	now    func() time.Time
	maxFns int

	mu  sync.Mutex
	fns map[string]*series
}

// NewHistory builds an empty history; now nil means time.Now, maxFunctions
// zero DefaultMaxFunctions.
func NewHistory(now func() time.Time, maxFunctions int) *History {
	if now == nil {
		now = time.Now
	}
	if maxFunctions <= 0 {
		maxFunctions = DefaultMaxFunctions
	}
	return &History{now: now, maxFns: maxFunctions, fns: map[string]*series{}}
}

// seriesLocked answers fn's series, creating it (and dropping the least
// recently active one over the bound).
func (h *History) seriesLocked(fn string, now time.Time) *series {
	s, ok := h.fns[fn]
	if !ok {
		if len(h.fns) >= h.maxFns {
			var oldest string
			var at time.Time
			for name, o := range h.fns {
				if oldest == "" || o.active.Before(at) {
					oldest, at = name, o.active
				}
			}
			delete(h.fns, oldest)
		}
		s = &series{fine: newRing(fineStep, fineSlots), coarse: newRing(coarseStep, coarseSlots)}
		h.fns[fn] = s
	}
	s.active = now
	return s
}

// record applies f to fn's current fine and coarse buckets.
func (h *History) record(fn string, f func(p *point)) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.seriesLocked(fn, now)
	f(s.fine.at(now))
	f(s.coarse.at(now))
}

// Invocation records one completed invocation (metrics.Observer).
func (h *History) Invocation(function, _ string, functionError bool, d, _ time.Duration, cold bool) {
	ms := float64(d) / float64(time.Millisecond)
	h.record(function, func(p *point) {
		p.invocations++
		if functionError {
			p.errors++
		}
		if cold {
			p.coldStarts++
		}
		if d > 0 {
			p.observe(ms)
		}
	})
}

// PlatformError records an invocation that failed for a platform reason
// (metrics.Observer): it counts as an error.
func (h *History) PlatformError(function, _ string) {
	h.record(function, func(p *point) { p.errors++ })
}

// Throttle records a 429 (metrics.Observer).
func (h *History) Throttle(function, _ string) {
	h.record(function, func(p *point) { p.throttles++ })
}

// Concurrency records a concurrency sample; a bucket keeps its largest.
// A zero sample changes nothing (a bucket starts at zero).
func (h *History) Concurrency(function string, n int) {
	if n <= 0 {
		return
	}
	h.record(function, func(p *point) { p.concurrency = max(p.concurrency, n) })
}

// Async records an async queue sample of fn: events waiting and the age
// of the oldest; a bucket keeps the last sample. An empty queue is
// written only into buckets that exist (an absent one reads zero), so
// idle functions cost nothing.
func (h *History) Async(function string, depth int, oldest time.Duration) {
	if depth > 0 {
		h.record(function, func(p *point) { p.asyncDepth, p.asyncAge = depth, oldest.Seconds() })
		return
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.fns[function]
	if !ok {
		return
	}
	for _, r := range []*ring{&s.fine, &s.coarse} {
		if p := r.get(now.Unix() / int64(r.step/time.Second)); p != nil {
			p.asyncDepth, p.asyncAge = 0, 0
		}
	}
}

// Point is one bucket of the history endpoint.
type Point struct {
	T               int64   `json:"t"`
	Invocations     int64   `json:"invocations"`
	Errors          int64   `json:"errors"`
	Throttles       int64   `json:"throttles"`
	DurationP50Ms   float64 `json:"durationP50Ms"`
	DurationP99Ms   float64 `json:"durationP99Ms"`
	Concurrency     int     `json:"concurrency"`
	ColdStarts      int64   `json:"coldStarts"`
	AsyncDepth      int     `json:"asyncDepth"`
	AsyncAgeSeconds float64 `json:"asyncAgeSeconds"`
}

// Series is the history endpoint's answer.
type Series struct {
	Step   int64   `json:"step"`
	Start  int64   `json:"start"`
	End    int64   `json:"end"`
	Points []Point `json:"points"`
	// Gateways is how many gateways' histories were added up.
	Gateways int `json:"gateways"`
}

// Peers reads the metrics history the other gateways of a cluster keep
// (each gateway records only the invocations it served). An error comes
// with what was read: the answer then covers the gateways that replied.
type Peers interface {
	Histories(ctx context.Context, fn, window string) ([]RawSeries, error)
	Summaries(ctx context.Context, window string) ([]map[string]Totals, error)
}

// Windows the history answers, with their bucket step.
var windows = map[string]struct {
	span time.Duration
	fine bool
}{
	"15m": {15 * time.Minute, true},
	"1h":  {time.Hour, true},
	"1d":  {24 * time.Hour, false},
}

// RawPoint is one non-empty bucket as gateways exchange it: the counts
// and the duration histogram (sparse: bucket index → count), so merged
// quantiles are read from the merged histogram.
type RawPoint struct {
	T               int64          `json:"t"`
	Invocations     int64          `json:"invocations,omitempty"`
	Errors          int64          `json:"errors,omitempty"`
	Throttles       int64          `json:"throttles,omitempty"`
	ColdStarts      int64          `json:"coldStarts,omitempty"`
	Concurrency     int            `json:"concurrency,omitempty"`
	AsyncDepth      int            `json:"asyncDepth,omitempty"`
	AsyncAgeSeconds float64        `json:"asyncAgeSeconds,omitempty"`
	Hist            map[int]uint32 `json:"hist,omitempty"`
}

// RawSeries is one gateway's non-empty buckets of a function over a
// window (Raw), what Peers exchange.
type RawSeries struct {
	Step   int64      `json:"step"`
	Points []RawPoint `json:"points"`
}

// span answers a window's step and its first and last slot now.
func (h *History) span(window string) (w struct {
	span time.Duration
	fine bool
}, step time.Duration, first, last int64, ok bool) {
	w, ok = windows[window]
	if !ok {
		return w, 0, 0, 0, false
	}
	step = coarseStep
	if w.fine {
		step = fineStep
	}
	secs := int64(step / time.Second)
	last = h.now().Unix() / secs
	first = last - int64(w.span/step) + 1
	return w, step, first, last, true
}

// Raw answers this gateway's non-empty buckets of fn over window;
// ok=false for an unknown window.
func (h *History) Raw(fn, window string) (RawSeries, bool) {
	w, step, first, last, ok := h.span(window)
	if !ok {
		return RawSeries{}, false
	}
	secs := int64(step / time.Second)
	out := RawSeries{Step: secs, Points: []RawPoint{}}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.fns[fn]
	if s == nil {
		return out, true
	}
	r := &s.coarse
	if w.fine {
		r = &s.fine
	}
	for slot := first; slot <= last; slot++ {
		p := r.get(slot)
		if p == nil {
			continue
		}
		rp := RawPoint{T: slot * secs, Invocations: p.invocations, Errors: p.errors, Throttles: p.throttles, ColdStarts: p.coldStarts,
			Concurrency: p.concurrency, AsyncDepth: p.asyncDepth, AsyncAgeSeconds: p.asyncAge}
		for i, c := range p.hist {
			if c > 0 {
				if rp.Hist == nil {
					rp.Hist = map[int]uint32{}
				}
				rp.Hist[i] = c
			}
		}
		out.Points = append(out.Points, rp)
	}
	return out, true
}

// Series answers fn's buckets over window ("15m", "1h" or "1d"), oldest
// first, every bucket present (zeros where nothing happened); ok=false for
// an unknown window.
func (h *History) Series(fn, window string) (Series, bool) {
	raw, ok := h.Raw(fn, window)
	if !ok {
		return Series{}, false
	}
	return h.Merge(window, []RawSeries{raw})
}

// Merge adds up several gateways' raw series of one function over window
// into the history endpoint's answer, aligned on this gateway's clock:
// counts and concurrency add up (each gateway counts its own), the async
// queue (one queue every gateway shares) takes the largest sample, and
// duration quantiles are read from the summed histograms. Points outside
// the window (a peer's clock a bucket off) are dropped.
func (h *History) Merge(window string, parts []RawSeries) (Series, bool) {
	_, step, first, last, ok := h.span(window)
	if !ok {
		return Series{}, false
	}
	secs := int64(step / time.Second)
	n := int(last - first + 1)
	out := Series{Step: secs, Start: first * secs, End: (last + 1) * secs, Points: make([]Point, n)}
	hists := make([]*point, n)
	for i := range n {
		out.Points[i].T = (first + int64(i)) * secs
	}
	for _, part := range parts {
		if part.Step != secs {
			continue
		}
		for _, rp := range part.Points {
			i := int(rp.T/secs - first)
			if i < 0 || i >= n || rp.T%secs != 0 {
				continue
			}
			pt := &out.Points[i]
			pt.Invocations += rp.Invocations
			pt.Errors += rp.Errors
			pt.Throttles += rp.Throttles
			pt.ColdStarts += rp.ColdStarts
			pt.Concurrency += rp.Concurrency
			pt.AsyncDepth = max(pt.AsyncDepth, rp.AsyncDepth)
			pt.AsyncAgeSeconds = max(pt.AsyncAgeSeconds, rp.AsyncAgeSeconds)
			for b, c := range rp.Hist {
				if b < 0 || b > histBuckets {
					continue
				}
				if hists[i] == nil {
					hists[i] = &point{}
				}
				hists[i].hist[b] += c
			}
		}
	}
	for i, p := range hists {
		if p != nil {
			out.Points[i].DurationP50Ms, out.Points[i].DurationP99Ms = p.quantile(0.5), p.quantile(0.99)
		}
	}
	return out, true
}

// Totals are one function's counts over a window.
type Totals struct {
	Invocations int64 `json:"invocations"`
	Errors      int64 `json:"errors"`
	Throttles   int64 `json:"throttles"`
}

// Summary answers every function's totals over window (functions with
// nothing in the window are left out); ok=false for an unknown window.
func (h *History) Summary(window string) (map[string]Totals, bool) {
	if _, ok := windows[window]; !ok {
		return nil, false
	}
	names := h.Functions()
	out := make(map[string]Totals, len(names))
	for _, fn := range names {
		s, _ := h.Series(fn, window)
		var t Totals
		for _, p := range s.Points {
			t.Invocations += p.Invocations
			t.Errors += p.Errors
			t.Throttles += p.Throttles
		}
		if t != (Totals{}) {
			out[fn] = t
		}
	}
	return out, true
}

// Functions names the functions with a history.
func (h *History) Functions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.fns))
	for fn := range h.fns {
		out = append(out, fn)
	}
	return out
}

func (c *Console) serveSummary(w http.ResponseWriter, r *http.Request) {
	if c.opts.History == nil {
		writeMessage(w, http.StatusNotFound, "this gateway keeps no metrics history")
		return
	}
	window := r.URL.Query().Get("window")
	if window == "" {
		window = "1h"
	}
	sum, ok := c.opts.History.Summary(window)
	if !ok {
		writeMessage(w, http.StatusBadRequest, "window must be 15m, 1h or 1d")
		return
	}
	gateways := 1
	if p := c.opts.Peers; p != nil && r.URL.Query().Get("scope") != "local" {
		others, err := p.Summaries(r.Context(), window)
		if err != nil {
			c.logger.Warn("reading the other gateways' metrics summaries", "error", err)
		}
		for _, o := range others {
			gateways++
			for fn, t := range o {
				m := sum[fn]
				m.Invocations += t.Invocations
				m.Errors += t.Errors
				m.Throttles += t.Throttles
				sum[fn] = m
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"functions": sum, "gateways": gateways})
}

func (c *Console) serveHistory(w http.ResponseWriter, r *http.Request) {
	if c.opts.History == nil {
		writeMessage(w, http.StatusNotFound, "this gateway keeps no metrics history")
		return
	}
	q := r.URL.Query()
	fn := q.Get("function")
	if fn == "" {
		writeMessage(w, http.StatusBadRequest, "function is required")
		return
	}
	window := q.Get("window")
	if window == "" {
		window = "1h"
	}
	raw, ok := c.opts.History.Raw(fn, window)
	if !ok {
		writeMessage(w, http.StatusBadRequest, "window must be 15m, 1h or 1d")
		return
	}
	parts := []RawSeries{raw}
	if p := c.opts.Peers; p != nil && q.Get("scope") != "local" {
		others, err := p.Histories(r.Context(), fn, window)
		if err != nil {
			c.logger.Warn("reading the other gateways' metrics history", "function", fn, "error", err)
		}
		parts = append(parts, others...)
	}
	s, _ := c.opts.History.Merge(window, parts)
	s.Gateways = len(parts)
	writeJSON(w, http.StatusOK, s)
}
