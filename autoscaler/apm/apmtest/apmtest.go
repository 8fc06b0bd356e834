package apmtest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Gateway serves nimbus_environments and nimbus_in_flight (labelled
// function, version, group) the way a Nimbus gateway exports them, plus an
// unrelated counter that a scraper must skip, and counts scrapes.
type Gateway struct {
	// Server is the loopback server; /metrics or any other path answers.
	Server *httptest.Server

	envs, inflight *prometheus.GaugeVec
	scrapes        atomic.Int64
}

// NewGateway starts a Gateway that closes when tb ends.
func NewGateway(tb testing.TB) *Gateway {
	tb.Helper()
	labels := []string{"function", "version", "group"}
	g := &Gateway{
		envs:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nimbus_environments", Help: "Environments available."}, labels),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nimbus_in_flight", Help: "Invocations in flight."}, labels),
	}
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nimbus_invocations_total", Help: "Invocations."}, []string{"function"})
	other.WithLabelValues("orders").Add(42)
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.envs, g.inflight, other)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.scrapes.Add(1)
		h.ServeHTTP(w, r)
	}))
	tb.Cleanup(g.Server.Close)
	return g
}

// Set sets both gauges of one function version's group.
func (g *Gateway) Set(function, version, group string, environments, inFlight float64) {
	g.envs.WithLabelValues(function, version, group).Set(environments)
	g.inflight.WithLabelValues(function, version, group).Set(inFlight)
}

// Addr is the server's host:port.
func (g *Gateway) Addr() string { return strings.TrimPrefix(g.Server.URL, "http://") }

// Scrapes is how many requests the server has answered.
func (g *Gateway) Scrapes() int64 { return g.scrapes.Load() }

// DownAddr is a loopback address with nothing listening.
func DownAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}
