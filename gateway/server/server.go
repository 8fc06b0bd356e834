package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
)

// Paths the server answers besides the API.
const (
	// HealthPath answers 200 while the gateway takes traffic, 503 while it drains.
	HealthPath = "/nimbus/health"
	// MetricsPath serves Prometheus metrics.
	MetricsPath = "/metrics"
)

// Registrar announces the gateway (Consul in a cluster).
type Registrar interface {
	Register(ctx context.Context) error
	Deregister(ctx context.Context) error
}

// Deps are the adapters that differ between dev mode and a cluster.
type Deps struct {
	Catalog    api.Catalog
	Source     discovery.Source
	Scaler     router.Scaler
	Registrars []Registrar
	Logger     hclog.Logger
	// Listener, when set, is used instead of listening on Config.Listen.
	Listener net.Listener
}

// Server is one running gateway.
type Server struct {
	cfg      *config.Config
	deps     Deps
	logger   hclog.Logger
	metrics  *metrics.Metrics
	router   *router.Router
	api      *api.API
	http     *http.Server
	ln       net.Listener
	draining atomic.Bool
}

// New validates cfg (after filling defaults) and builds the server; it opens
// nothing yet.
func New(cfg *config.Config, deps Deps) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	if deps.Catalog == nil || deps.Source == nil {
		return nil, errors.New("gateway needs a catalog and a discovery source")
	}
	logger := deps.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	m := metrics.New()
	rt := router.New(router.Config{
		AccountConcurrency: cfg.AccountConcurrency,
		UnreservedMin:      cfg.UnreservedMin,
		WaitQueueSize:      cfg.WaitQueueSize,
		ColdStartWait:      cfg.ColdStartWaitD,
		IdleScaleIn:        cfg.IdleScaleInD,
		InvokeKey:          cfg.InvokeKeyBytes,
	}, deps.Source, deps.Scaler, m, logger)
	m.WatchStats(rt)
	var verifier *sigv4.Verifier
	if len(cfg.AccessKeys) > 0 {
		verifier = &sigv4.Verifier{Keys: cfg.Keys(), Region: cfg.Region, Service: "lambda"}
	}
	a := api.New(api.Options{
		Region:    cfg.Region,
		AccountID: cfg.AccountID,
		URLDomain: cfg.URLDomain,
		Verifier:  verifier,
	}, deps.Catalog, rt, rt, m, logger)
	s := &Server{cfg: cfg, deps: deps, logger: logger.Named("server"), metrics: m, router: rt, api: a}
	mux := http.NewServeMux()
	mux.HandleFunc(HealthPath, s.health)
	mux.Handle(MetricsPath, promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.Handle("/", a)
	s.http = &http.Server{
		Handler:           s.route(mux, a),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	return s, nil
}

// route sends function-URL hosts straight to the API (a function may serve
// /metrics itself) and everything else through the mux.
func (s *Server) route(mux *http.ServeMux, a *api.API) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.IsURLHost(r.Host) {
			a.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Router exposes the router (tests, dev mode's output).
func (s *Server) Router() *router.Router { return s.router }

// Metrics exposes the metric set.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Start opens the listener and registers the gateway.
func (s *Server) Start(ctx context.Context) error {
	ln := s.deps.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
		}
	}
	s.ln = ln
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", "error", err)
		}
	}()
	for _, r := range s.deps.Registrars {
		if err := r.Register(ctx); err != nil {
			return fmt.Errorf("registering gateway: %w", err)
		}
	}
	s.logger.Info("gateway listening", "address", ln.Addr().String(), "dev", s.cfg.Dev)
	return nil
}

// Addr is the bound address (after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve runs background work until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.router.Run(bg)
	go s.trackReservations(bg)
	<-ctx.Done()
	return s.Shutdown()
}

// Shutdown deregisters, stops taking requests and drains in-flight
// invocations within the configured grace period.
func (s *Server) Shutdown() error {
	s.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGraceD)
	defer cancel()
	var errs []error
	for _, r := range s.deps.Registrars {
		if err := r.Deregister(ctx); err != nil {
			errs = append(errs, fmt.Errorf("deregistering gateway: %w", err))
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.http.Shutdown(ctx) }()
	if err := s.router.Drain(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := <-done; err != nil {
		errs = append(errs, fmt.Errorf("closing http server: %w", err))
	}
	s.router.Close()
	s.logger.Info("gateway stopped")
	return errors.Join(errs...)
}

// trackReservations keeps the router in step with the catalog: the
// reserved total, and a pool per function version (so gauges exist before
// traffic).
func (s *Server) trackReservations(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.updateReservations(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) updateReservations(ctx context.Context) {
	fns, err := s.deps.Catalog.Functions(ctx)
	if err != nil {
		s.logger.Warn("reading catalog for reservations", "error", err)
		return
	}
	total := 0
	var targets []router.Target
	for _, f := range fns {
		if r := f.ReservedConcurrency(); r != nil {
			total += *r
		}
		for v, spec := range f.Versions {
			targets = append(targets, router.Target{Function: f.Name, Version: v, Reserved: f.ReservedConcurrency(),
				EnvironmentsPerInstance: spec.EnvironmentsPerInstance})
		}
	}
	s.router.Track(targets)
	if total > s.cfg.AccountConcurrency-s.cfg.UnreservedMin {
		s.logger.Warn("reserved concurrency leaves less than the unreserved minimum; keeping the minimum",
			"reserved", total, "account_concurrency", s.cfg.AccountConcurrency, "unreserved_min", s.cfg.UnreservedMin)
	}
	s.router.SetReservedTotal(total)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "draining"})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}

// Run is New + Start + Serve: the gateway's whole life.
func Run(ctx context.Context, cfg *config.Config, deps Deps) error {
	s, err := New(cfg, deps)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	return s.Serve(ctx)
}
