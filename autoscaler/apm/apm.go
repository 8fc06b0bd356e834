package apm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"

	"github.com/nimbus-fn/nimbus/autoscaler/policy"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

// ErrNoGateways is returned when no gateway could be scraped: none listed,
// or every one unreachable.
var ErrNoGateways = errors.New("no gateway answered")

// maxQueries bounds how many distinct queries keep a history.
const maxQueries = 4096

// freshSlack: the host computes the range's end before calling us, so the
// fresh sample is a little after `to`; it still belongs to the window.
const freshSlack = 10 * time.Second

// APM is the nimbus APM plugin. It is safe for concurrent use; SetConfig may
// run while queries are in flight (they finish with the old settings).
type APM struct {
	logger hclog.Logger
	now    func() time.Time

	mu         sync.Mutex // guards cfg, lister, client, version, configured
	cfg        Config
	lister     gatewayLister
	client     *http.Client
	version    int // bumped by SetConfig; invalidates the cached snapshot
	configured bool

	scrapeMu  sync.Mutex // one scrape at a time; guards last, lastVer
	last      *snapshot
	lastVer   int
	historyMu sync.Mutex
	history   map[string]*history
}

type history struct {
	samples []sdk.Metric // oldest first
	used    time.Time
}

// Option configures an APM.
type Option func(*APM)

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(a *APM) { a.now = now } }

// New returns an unconfigured APM; the agent calls SetConfig before any query.
func New(logger hclog.Logger, opts ...Option) *APM {
	a := &APM{logger: logger, now: time.Now, history: map[string]*history{}}
	for _, o := range opts {
		o(a)
	}
	return a
}

// PluginInfo reports the driver name the agent config uses.
func (a *APM) PluginInfo() sdk.Info {
	return sdk.Info{Name: policy.APMDriver, Type: sdk.TypeAPM}
}

// SetConfig applies the agent block's config (again on every reload).
func (a *APM) SetConfig(_ context.Context, m map[string]string) error {
	cfg, err := ParseConfig(m)
	if err != nil {
		return err
	}
	var lister gatewayLister
	if len(cfg.Gateways) > 0 {
		urls := make(staticGateways, len(cfg.Gateways))
		for i, g := range cfg.Gateways {
			urls[i], _ = cfg.metricsURL(g) // validated by ParseConfig
		}
		lister = urls
	} else if lister, err = newConsulGateways(cfg); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.lister, a.configured = cfg, lister, true
	a.client = &http.Client{Timeout: cfg.ScrapeTimeout}
	a.version++
	if len(cfg.Gateways) > 0 {
		a.logger.Info("configured", "gateways", cfg.Gateways)
	} else {
		a.logger.Info("configured", "consul_address", cfg.ConsulAddress, "consul_service", cfg.ConsulService)
	}
	return nil
}

// Query answers `[<metric>:]<function>/<version>` over r.
func (a *APM) Query(ctx context.Context, query string, r sdk.TimeRange) ([]sdk.Metric, error) {
	q, err := policy.ParseQuery(query)
	if err != nil {
		return nil, err
	}
	snap, err := a.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	v := snap.series[seriesKey{q.Function, q.Version}]
	fresh := sdk.Metric{Timestamp: snap.at, Value: value(q.Metric, v)}

	a.mu.Lock()
	retention := a.cfg.Retention
	a.mu.Unlock()
	out := a.record(q.String(), fresh, r, retention)
	a.logger.Debug("query", "function", q.Function, "version", q.Version, "metric", string(q.Metric),
		"value", fresh.Value, "points", len(out), "gateways", snap.answered)
	return out, nil
}

// value computes the selected metric; a version nobody serves is 0.
func value(m policy.Metric, v *values) float64 {
	if v == nil {
		return 0
	}
	envs, inflight := v.environments[GroupProvisioned], v.inFlight[GroupProvisioned]
	switch m {
	case policy.MetricInFlight:
		return inflight
	case policy.MetricEnvironments:
		return envs
	}
	if envs <= 0 {
		return 0
	}
	return inflight / envs
}

// record appends fresh to the query's history and returns the samples in
// r (the fresh one counts as inside when it is at most freshSlack past the
// end); never empty.
func (a *APM) record(key string, fresh sdk.Metric, r sdk.TimeRange, retention time.Duration) []sdk.Metric {
	a.historyMu.Lock()
	defer a.historyMu.Unlock()
	h, ok := a.history[key]
	if !ok {
		if len(a.history) >= maxQueries {
			a.evictOldestLocked()
		}
		h = &history{}
		a.history[key] = h
	}
	h.used = fresh.Timestamp
	if n := len(h.samples); n == 0 || fresh.Timestamp.After(h.samples[n-1].Timestamp) {
		h.samples = append(h.samples, fresh)
	}
	cut := fresh.Timestamp.Add(-retention)
	drop := sort.Search(len(h.samples), func(i int) bool { return !h.samples[i].Timestamp.Before(cut) })
	h.samples = append(h.samples[:0], h.samples[drop:]...)

	end := r.To.Add(freshSlack)
	var out []sdk.Metric
	for _, s := range h.samples {
		if !s.Timestamp.Before(r.From) && !s.Timestamp.After(end) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		out = []sdk.Metric{fresh}
	}
	return out
}

func (a *APM) evictOldestLocked() {
	var oldest string
	var at time.Time
	for k, h := range a.history {
		if oldest == "" || h.used.Before(at) {
			oldest, at = k, h.used
		}
	}
	delete(a.history, oldest)
}

// snapshot returns a scrape of every gateway no older than the cache TTL.
func (a *APM) snapshot(ctx context.Context) (*snapshot, error) {
	a.mu.Lock()
	cfg, lister, client, ver, ok := a.cfg, a.lister, a.client, a.version, a.configured
	a.mu.Unlock()
	if !ok {
		return nil, errors.New("apm not configured: SetConfig has not been called")
	}

	a.scrapeMu.Lock()
	defer a.scrapeMu.Unlock()
	if a.last != nil && a.lastVer == ver && a.now().Sub(a.last.at) < cfg.CacheTTL {
		return a.last, nil
	}
	urls, err := lister.MetricsURLs(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoGateways, err)
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: no gateways listed", ErrNoGateways)
	}

	type result struct {
		url  string
		fams []*dto.MetricFamily
		err  error
	}
	results := make([]result, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, cfg.ScrapeTimeout)
			defer cancel()
			fams, err := scrapeOne(sctx, client, u)
			results[i] = result{url: u, fams: fams, err: err}
		}()
	}
	wg.Wait()

	snap := &snapshot{series: map[seriesKey]*values{}, gateways: len(urls)}
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			a.logger.Warn("gateway scrape", "gateway", r.url, "error", r.err)
			continue
		}
		snap.answered++
		snap.add(r.fams)
	}
	if snap.answered == 0 {
		return nil, fmt.Errorf("%w (%d listed): %w", ErrNoGateways, len(urls), errors.Join(errs...))
	}
	snap.at = a.now()
	a.last, a.lastVer = snap, ver
	return snap, nil
}
