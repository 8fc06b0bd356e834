package main

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/rollout"
)

// TestScraperSumsEveryGatewaysPage: with two gateways each counting the
// calls it served, health is the sum of both pages, per version, with
// function and platform errors apart and throttles of the function; a
// page that does not answer is an error, not a smaller sum.
func TestScraperSumsEveryGatewaysPage(t *testing.T) {
	serve := func(m *metrics.Metrics) string {
		srv := httptest.NewServer(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
		t.Cleanup(srv.Close)
		return srv.URL + "/metrics"
	}
	a, b := metrics.New(), metrics.New()
	for range 3 {
		a.Invocation("fn", "2", false, 0, 0, false)
	}
	a.Invocation("fn", "2", true, 0, 0, false)
	a.Invocation("fn", "1", true, 0, 0, false) // another version
	a.Invocation("other", "2", true, 0, 0, false)
	b.Invocation("fn", "2", true, 0, 0, false)
	b.PlatformError("fn", "2")
	b.Throttle("fn", "reserved")
	a.Throttle("fn", "account")
	a.Throttle("other", "account")
	urls := []string{serve(a), serve(b)}

	s := &rollout.Scraper{URLs: urls}
	got, err := s.Counters(context.Background(), "fn", "2")
	if err != nil {
		t.Fatal(err)
	}
	want := rollout.Counters{Invocations: 5, FunctionErrors: 2, PlatformErrors: 1, Throttles: 2}
	if got != want {
		t.Fatalf("summed counters %+v, want %+v", got, want)
	}
	h, _ := rollout.Measure(rollout.Counters{}, got, 6)
	if h.Errors != 3 || h.Rate != 0.5 || h.TooLittleTraffic {
		t.Fatalf("health %+v: want 3 errors in 6 calls", h)
	}
	one, err := (&rollout.Scraper{URLs: urls[:1]}).Counters(context.Background(), "fn", "2")
	if err != nil || one.Invocations != 4 {
		t.Fatalf("one page: %+v %v", one, err)
	}
	dead := httptest.NewServer(nil)
	dead.Close()
	if _, err := (&rollout.Scraper{URLs: append(urls, dead.URL+"/metrics")}).Counters(context.Background(), "fn", "2"); err == nil {
		t.Fatal("a page that does not answer was left out of the sum silently")
	}
}
