package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
)

var _ metrics.Observer = (*console.History)(nil)

func TestHistoryBucketsAndWindows(t *testing.T) {
	// 12:00:05: inside the 10 s bucket starting 12:00:00.
	clk := &clock{t: time.Date(2026, 1, 1, 12, 0, 5, 0, time.UTC)}
	h := console.NewHistory(clk.Now, 0)
	for i := range 100 {
		// 1..100 ms: p50 ≈ 50, p99 ≈ 99 (within the histogram's 30 %).
		h.Invocation("fn", "$LATEST", i%10 == 0, time.Duration(i+1)*time.Millisecond, 0, i == 0)
	}
	h.Throttle("fn", "reserved")
	h.PlatformError("fn", "1")
	h.Concurrency("fn", 3)
	h.Concurrency("fn", 7)
	h.Concurrency("fn", 2)
	h.Async("fn", 4, 90*time.Second)
	clk.Add(20 * time.Second) // 12:00:25, two buckets later
	h.Invocation("fn", "$LATEST", false, 5*time.Millisecond, 0, false)

	s, ok := h.Series("fn", "15m")
	if !ok {
		t.Fatal("15m is a window")
	}
	if s.Step != 10 || len(s.Points) != 90 || s.End-s.Start != 900 || s.Points[89].T != s.End-10 {
		t.Fatalf("15m series: step %d, %d points, %d..%d", s.Step, len(s.Points), s.Start, s.End)
	}
	at := func(s console.Series, unix int64) console.Point {
		for _, p := range s.Points {
			if p.T == unix {
				return p
			}
		}
		t.Fatalf("no point at %d", unix)
		return console.Point{}
	}
	first := at(s, time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).Unix())
	if first.Invocations != 100 || first.Errors != 11 || first.Throttles != 1 || first.ColdStarts != 1 ||
		first.Concurrency != 7 || first.AsyncDepth != 4 || first.AsyncAgeSeconds != 90 {
		t.Errorf("first bucket %+v", first)
	}
	if first.DurationP50Ms < 50 || first.DurationP50Ms > 50*1.3 || first.DurationP99Ms < 99 || first.DurationP99Ms > 99*1.3 {
		t.Errorf("p50 %v, p99 %v: want ~50 and ~99 ms", first.DurationP50Ms, first.DurationP99Ms)
	}
	if gap := at(s, first.T+10); gap != (console.Point{T: first.T + 10}) {
		t.Errorf("empty bucket %+v, want zeros", gap)
	}
	if last := at(s, first.T+20); last.Invocations != 1 || last.DurationP50Ms < 5 || last.DurationP50Ms > 5*1.3 {
		t.Errorf("third bucket %+v", last)
	}

	// The day window has 1 min buckets that sum the same events.
	d, _ := h.Series("fn", "1d")
	if d.Step != 60 || len(d.Points) != 1440 {
		t.Fatalf("1d: step %d, %d points", d.Step, len(d.Points))
	}
	if p := d.Points[len(d.Points)-1]; p.Invocations != 101 || p.Errors != 11 {
		t.Errorf("1d last bucket %+v", p)
	}

	// An hour later the fine buckets have aged out, the day's have not.
	clk.Add(time.Hour)
	if sum, _ := h.Summary("1h"); len(sum) != 0 {
		t.Errorf("1h summary an hour later: %+v, want empty", sum)
	}
	sum, _ := h.Summary("1d")
	if got := sum["fn"]; got != (console.Totals{Invocations: 101, Errors: 11, Throttles: 1}) {
		t.Errorf("1d summary %+v", got)
	}
	if _, ok := h.Series("fn", "2h"); ok {
		t.Error("2h is not a window")
	}
}

func TestHistoryIsBounded(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	h := console.NewHistory(clk.Now, 2)
	for _, fn := range []string{"a", "b", "c"} {
		clk.Add(time.Second)
		h.Invocation(fn, "1", false, time.Millisecond, 0, false)
	}
	if got := h.Functions(); len(got) != 2 {
		t.Errorf("functions %v, want 2 (the bound)", got)
	}
	if s, _ := h.Series("a", "15m"); s.Points[len(s.Points)-1].Invocations != 0 {
		t.Error("the least recently active function was kept")
	}
	// A zero sample does not start a history.
	h.Concurrency("idle", 0)
	h.Async("idle", 0, 0)
	for _, fn := range h.Functions() {
		if fn == "idle" {
			t.Error("zero samples created a history")
		}
	}
}

func TestMetricsEndpoints(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	h := console.NewHistory(clk.Now, 0)
	m := metrics.New()
	m.Observe(h)
	m.Invocation("fn", "$LATEST", true, 20*time.Millisecond, 0, true)
	m.Throttle("fn", "account")
	c := console.New(console.Options{History: h})
	mux := http.NewServeMux()
	for _, rt := range c.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string, out any) int {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(out)
		return resp.StatusCode
	}
	var sum struct {
		Functions map[string]console.Totals `json:"functions"`
	}
	if code := get(console.MetricsSummaryPath+"?window=1h", &sum); code != 200 || sum.Functions["fn"] != (console.Totals{Invocations: 1, Errors: 1, Throttles: 1}) {
		t.Errorf("summary: %d %+v", code, sum)
	}
	var s console.Series
	if code := get(console.MetricsHistoryPath+"?function=fn&window=15m", &s); code != 200 || len(s.Points) != 90 || s.Points[89].ColdStarts != 1 {
		t.Errorf("history: %d %+v", code, s)
	}
	var e map[string]string
	if code := get(console.MetricsHistoryPath+"?function=fn&window=7d", &e); code != 400 || e["message"] == "" {
		t.Errorf("bad window: %d %v", code, e)
	}
	if code := get(console.MetricsHistoryPath+"?window=1h", &e); code != 400 {
		t.Errorf("no function: %d", code)
	}
}

// stubPeers answers another gateway's history as it would travel: JSON.
type stubPeers struct{ other *console.History }

func (p stubPeers) Histories(_ context.Context, fn, window string) ([]console.RawSeries, error) {
	raw, _ := p.other.Raw(fn, window)
	b, _ := json.Marshal(raw)
	var back console.RawSeries
	err := json.Unmarshal(b, &back)
	return []console.RawSeries{back}, err
}

func (p stubPeers) Summaries(_ context.Context, window string) ([]map[string]console.Totals, error) {
	s, _ := p.other.Summary(window)
	return []map[string]console.Totals{s}, nil
}

// Two gateways' histories add up: counts and concurrency sum, the shared
// async queue is not counted twice, quantiles come from the summed
// histograms; ?scope=local answers one gateway's.
func TestHistoryMergesPeers(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 12, 0, 5, 0, time.UTC)}
	a, b := console.NewHistory(clk.Now, 0), console.NewHistory(clk.Now, 0)
	for range 10 {
		a.Invocation("fn", "$LATEST", false, time.Millisecond, 0, false)
	}
	for range 30 {
		b.Invocation("fn", "$LATEST", true, 500*time.Millisecond, 0, false)
	}
	a.Concurrency("fn", 2)
	b.Concurrency("fn", 3)
	a.Async("fn", 4, time.Minute)
	b.Async("fn", 4, time.Minute)
	c := console.New(console.Options{History: a, Peers: stubPeers{other: b}})
	mux := http.NewServeMux()
	for _, rt := range c.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string, v any) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
	}
	var s console.Series
	get("/nimbus/v1/metrics/history?function=fn&window=15m", &s)
	p := s.Points[len(s.Points)-1]
	if s.Gateways != 2 || p.Invocations != 40 || p.Errors != 30 || p.Concurrency != 5 || p.AsyncDepth != 4 {
		t.Fatalf("merged bucket: gateways %d %+v", s.Gateways, p)
	}
	// 10 at 1 ms and 30 at 500 ms: the median is among the slow ones.
	if p.DurationP50Ms < 500 || p.DurationP50Ms > 650 {
		t.Errorf("merged p50 %.1f ms, want ~500 (from the summed histograms)", p.DurationP50Ms)
	}
	get("/nimbus/v1/metrics/history?function=fn&window=15m&scope=local", &s)
	if p := s.Points[len(s.Points)-1]; s.Gateways != 1 || p.Invocations != 10 {
		t.Errorf("scope=local: gateways %d %+v", s.Gateways, p)
	}
	var sum struct {
		Functions map[string]console.Totals `json:"functions"`
		Gateways  int                       `json:"gateways"`
	}
	get("/nimbus/v1/metrics/summary?window=1h", &sum)
	if sum.Gateways != 2 || sum.Functions["fn"].Invocations != 40 || sum.Functions["fn"].Errors != 30 {
		t.Errorf("merged summary: %+v", sum)
	}
}
