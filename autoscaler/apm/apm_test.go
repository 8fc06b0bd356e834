package apm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/autoscaler/apm/apmtest"
	"github.com/nimbus-fn/nimbus/autoscaler/policy"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func configured(t *testing.T, clk *clock, cfg map[string]string) *APM {
	t.Helper()
	a := New(hclog.NewNullLogger(), WithClock(clk.now))
	if err := a.SetConfig(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return a
}

func window(now time.Time, d time.Duration) sdk.TimeRange {
	return sdk.TimeRange{From: now.Add(-d), To: now}
}

func TestQueryAggregatesGateways(t *testing.T) {
	g1, g2 := apmtest.NewGateway(t), apmtest.NewGateway(t)
	g1.Set("orders", "3", "provisioned", 10, 3)
	g2.Set("orders", "3", "provisioned", 8, 4) // lagging view: max wins
	g1.Set("orders", "3", "ondemand", 5, 5)    // on-demand does not count
	g2.Set("orders", "$LATEST", "provisioned", 0, 0)
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	a := configured(t, clk, map[string]string{"gateways": g1.Addr() + ", " + apmtest.DownAddr(t) + "," + g2.Addr(), "cache_ttl": "0s"})

	for _, tc := range []struct {
		q    string
		want float64
	}{
		{"orders/3", 0.7},
		{"utilization:orders/3", 0.7},
		{"in_flight:orders/3", 7},
		{"environments:orders/3", 10},
		{"orders/$LATEST", 0}, // no provisioned environments: 0, not NaN
		{"missing/9", 0},      // nobody serves it: no traffic
	} {
		ms, err := a.Query(context.Background(), tc.q, window(clk.now(), time.Minute))
		if err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		if len(ms) != 1 || ms[0].Value != tc.want || !ms[0].Timestamp.Equal(clk.now()) {
			t.Errorf("%s = %+v, want one point %v at %v", tc.q, ms, tc.want, clk.now())
		}
	}
	if _, err := a.Query(context.Background(), "bogus:orders/3", window(clk.now(), time.Minute)); !errors.Is(err, policy.ErrBadQuery) {
		t.Errorf("bad metric selector: %v", err)
	}
}

func TestQueryFailsOnlyWhenNoGatewayAnswers(t *testing.T) {
	clk := &clock{t: time.Now()}
	a := configured(t, clk, map[string]string{"gateways": apmtest.DownAddr(t) + "," + apmtest.DownAddr(t), "scrape_timeout": "2s"})
	_, err := a.Query(context.Background(), "orders/3", window(clk.now(), time.Minute))
	if !errors.Is(err, ErrNoGateways) || !strings.Contains(err.Error(), "2 listed") {
		t.Fatalf("all down: %v", err)
	}

	// A gateway answering garbage counts as down.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "nimbus_in_flight{function=\"orders\" 3")
	}))
	t.Cleanup(bad.Close)
	a = configured(t, clk, map[string]string{"gateways": bad.URL})
	if _, err := a.Query(context.Background(), "orders/3", window(clk.now(), time.Minute)); !errors.Is(err, ErrNoGateways) || !strings.Contains(err.Error(), "parsing metrics") {
		t.Fatalf("unparsable page: %v", err)
	}
	a = configured(t, clk, map[string]string{"gateways": bad.URL + "/missing"})
	if _, err := a.Query(context.Background(), "orders/3", window(clk.now(), time.Minute)); err == nil {
		t.Fatal("query against a failing page succeeded")
	}
}

func TestQueryReturnsTheWindowFromHistory(t *testing.T) {
	g := apmtest.NewGateway(t)
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	a := configured(t, clk, map[string]string{"gateways": g.Addr(), "cache_ttl": "0s", "retention": "2m"})
	q := func(window time.Duration) []sdk.Metric {
		t.Helper()
		now := clk.now()
		ms, err := a.Query(context.Background(), "orders/3", sdk.TimeRange{From: now.Add(-window), To: now})
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	// Six evaluations 10 s apart with rising load.
	for i := 1; i <= 6; i++ {
		g.Set("orders", "3", "provisioned", 10, float64(i))
		if i > 1 {
			clk.advance(10 * time.Second)
		}
		q(time.Minute)
	}
	ms := q(30 * time.Second)
	if len(ms) != 4 || ms[0].Value != 0.3 || ms[3].Value != 0.6 {
		t.Fatalf("30s window: %+v", ms)
	}
	for i := 1; i < len(ms); i++ {
		if !ms[i].Timestamp.After(ms[i-1].Timestamp) {
			t.Fatalf("not oldest first: %+v", ms)
		}
	}
	// Instant window: only the fresh point.
	if ms := q(0); len(ms) != 1 || ms[0].Value != 0.6 {
		t.Fatalf("instant: %+v", ms)
	}
	// Retention drops samples older than 2m.
	clk.advance(3 * time.Minute)
	if ms := q(10 * time.Minute); len(ms) != 1 {
		t.Fatalf("after retention: %+v", ms)
	}
	// A window that ended long ago (window offset) with no samples in it
	// still gets the fresh point, never an empty answer.
	now := clk.now()
	ms, err := a.Query(context.Background(), "orders/3", sdk.TimeRange{From: now.Add(-time.Hour), To: now.Add(-50 * time.Minute)})
	if err != nil || len(ms) != 1 || !ms[0].Timestamp.Equal(now) {
		t.Fatalf("offset window: %+v, %v", ms, err)
	}
}

func TestOneScrapeServesQueriesWithinTheCacheTTL(t *testing.T) {
	g1, g2 := apmtest.NewGateway(t), apmtest.NewGateway(t)
	clk := &clock{t: time.Now()}
	a := configured(t, clk, map[string]string{"gateways": g1.Addr() + "," + g2.Addr(), "cache_ttl": "5s"})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Query(context.Background(), fmt.Sprintf("fn%d/1", i), window(clk.now(), time.Minute)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if g1.Scrapes() != 1 || g2.Scrapes() != 1 {
		t.Fatalf("scrapes %d, %d; want 1 each", g1.Scrapes(), g2.Scrapes())
	}
	clk.advance(6 * time.Second)
	if _, err := a.Query(context.Background(), "fn0/1", window(clk.now(), time.Minute)); err != nil {
		t.Fatal(err)
	}
	if g1.Scrapes() != 2 {
		t.Fatalf("after the TTL: %d scrapes", g1.Scrapes())
	}
	// SetConfig invalidates the cache.
	if err := a.SetConfig(context.Background(), map[string]string{"gateways": g1.Addr(), "cache_ttl": "5s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Query(context.Background(), "fn0/1", window(clk.now(), time.Minute)); err != nil || g1.Scrapes() != 3 {
		t.Fatalf("after reload: %d scrapes, %v", g1.Scrapes(), err)
	}
}

// consulDouble answers GET /v1/health/service/<name>?passing=1 the way
// Consul does, for the instances given. (The real agent is exercised in
// e2e when available.)
func consulDouble(t *testing.T, service string, entries func() []map[string]any, seen *atomic.Value) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.String() + " token=" + r.Header.Get("X-Consul-Token"))
		if r.URL.Path != "/v1/health/service/"+service {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Consul-Index", "7")
		_ = json.NewEncoder(w).Encode(entries())
	}))
	t.Cleanup(srv.Close)
	return srv
}

func entry(node, addr string, port int) map[string]any {
	return map[string]any{
		"Node":    map[string]any{"Node": node, "Address": node},
		"Service": map[string]any{"ID": "gw-" + node, "Service": DefaultConsulService, "Address": addr, "Port": port},
		"Checks":  []any{},
	}
}

func TestConsulDiscovery(t *testing.T) {
	g1, g2 := apmtest.NewGateway(t), apmtest.NewGateway(t)
	g1.Set("orders", "3", "provisioned", 4, 1)
	g2.Set("orders", "3", "provisioned", 4, 1)
	h1, p1, _ := net.SplitHostPort(g1.Addr())
	_, p2, _ := net.SplitHostPort(g2.Addr())
	var port1, port2 int
	fmt.Sscan(p1, &port1)
	fmt.Sscan(p2, &port2)
	var seen atomic.Value
	// A connect-enabled gateway's second, Connect-native registration at
	// its mTLS mesh port is not scraped.
	var meshHits atomic.Int64
	meshSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		meshHits.Add(1)
		http.Error(w, "mesh listener", http.StatusBadRequest)
	}))
	t.Cleanup(meshSrv.Close)
	_, pm, _ := net.SplitHostPort(meshSrv.Listener.Addr().String())
	var meshPort int
	fmt.Sscan(pm, &meshPort)
	native := entry("n1", h1, meshPort)
	native["Service"].(map[string]any)["Connect"] = map[string]any{"Native": true}
	consul := consulDouble(t, DefaultConsulService, func() []map[string]any {
		// The second entry has no service address: the node's is used.
		return []map[string]any{entry("n1", h1, port1), entry(h1, "", port2), native}
	}, &seen)

	clk := &clock{t: time.Now()}
	a := configured(t, clk, map[string]string{"consul_address": consul.URL, "consul_token": "s3cret", "consul_datacenter": "dc9", "cache_ttl": "0s"})
	ms, err := a.Query(context.Background(), "orders/3", window(clk.now(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Value != 0.5 {
		t.Fatalf("utilisation over two Consul-discovered gateways = %v, want 0.5", ms[0].Value)
	}
	if n := meshHits.Load(); n != 0 {
		t.Fatalf("the APM scraped the gateway's Connect-native mesh registration %d times", n)
	}
	got := seen.Load().(string)
	for _, want := range []string{"/v1/health/service/nimbus-gateway", "passing=1", "dc=dc9", "token=s3cret"} {
		if !strings.Contains(got, want) {
			t.Errorf("consul request %q lacks %q", got, want)
		}
	}

	empty := consulDouble(t, DefaultConsulService, func() []map[string]any { return nil }, &seen)
	a = configured(t, clk, map[string]string{"consul_address": empty.URL})
	if _, err := a.Query(context.Background(), "orders/3", window(clk.now(), time.Minute)); !errors.Is(err, ErrNoGateways) || !strings.Contains(err.Error(), "no gateways listed") {
		t.Fatalf("no registered gateways: %v", err)
	}
	a = configured(t, clk, map[string]string{"consul_address": apmtest.DownAddr(t)})
	if _, err := a.Query(context.Background(), "orders/3", window(clk.now(), time.Minute)); !errors.Is(err, ErrNoGateways) || !strings.Contains(err.Error(), "listing consul service nimbus-gateway") {
		t.Fatalf("consul down: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(map[string]string{"nomad_address": "http://127.0.0.1:4646", "nomad_config_inherit": "false"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Gateways) != 0 || cfg.ConsulAddress != DefaultConsulAddress || cfg.ConsulService != DefaultConsulService ||
		cfg.ScrapeTimeout != DefaultScrapeTimeout || cfg.CacheTTL != DefaultCacheTTL || cfg.Retention != DefaultRetention {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, err = ParseConfig(map[string]string{"gateways": "10.0.0.1:8080, https://gw.example:8443/custom/metrics", "scheme": "https", "metrics_path": "/m"})
	if err != nil {
		t.Fatal(err)
	}
	u0, _ := cfg.metricsURL(cfg.Gateways[0])
	u1, _ := cfg.metricsURL(cfg.Gateways[1])
	if u0 != "https://10.0.0.1:8080/m" || u1 != "https://gw.example:8443/custom/metrics" {
		t.Fatalf("urls %s %s", u0, u1)
	}
	for _, tc := range []struct {
		cfg  map[string]string
		want string
	}{
		{map[string]string{"gateways": "gw"}, `gateway "gw": want host:port`},
		{map[string]string{"gateways": "ftp://gw:21"}, `gateway "ftp://gw:21"`},
		{map[string]string{"scheme": "gopher"}, `scheme = "gopher": want http or https`},
		{map[string]string{"metrics_path": "metrics"}, `metrics_path = "metrics": want an absolute path`},
		{map[string]string{"scrape_timeout": "0s"}, `scrape_timeout = "0s": want a positive Go duration`},
		{map[string]string{"retention": "forever"}, `retention = "forever"`},
		{map[string]string{"cache_ttl": "-1s"}, `cache_ttl = "-1s"`},
		{map[string]string{"gatways": "a:1"}, `gatways = "a:1": unknown key`},
	} {
		_, err := ParseConfig(tc.cfg)
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	a := New(hclog.NewNullLogger())
	if _, err := a.Query(context.Background(), "orders/3", window(time.Now(), time.Minute)); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("query before SetConfig: %v", err)
	}
	if err := a.SetConfig(context.Background(), map[string]string{"scheme": "gopher"}); err == nil {
		t.Fatal("SetConfig accepted a bad scheme")
	}
	if info := a.PluginInfo(); info.Name != policy.APMDriver || info.Type != sdk.TypeAPM {
		t.Fatalf("info %+v", info)
	}
}
