package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/esmapi"
	"github.com/nimbus-fn/nimbus/gateway/images"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
	"github.com/nimbus-fn/nimbus/gateway/slots"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/gateway/sources/kafka"
	"github.com/nimbus-fn/nimbus/gateway/usage"
	"github.com/nimbus-fn/nimbus/gateway/versions"
)

// Paths the server answers besides the API.
const (
	// HealthPath answers 200 while the gateway takes traffic, 503 while it drains.
	HealthPath = "/nimbus/health"
	// MetricsPath serves Prometheus metrics.
	MetricsPath = "/metrics"
)

// ReadinessChecker says why an adapter cannot serve (nil when it can).
type ReadinessChecker interface {
	CheckReady() error
}

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
	// InstanceTLS calls Connect-native instances over mutual TLS with the
	// gateway's mesh identity (router.Config.InstanceTLS); nil: the
	// gateway calls plain-HTTP instances only.
	InstanceTLS router.InstanceTLSFunc
	// Listener, when set, is used instead of listening on Config.Listen.
	Listener net.Listener
	// Readiness are the adapters whose failure makes the gateway "not
	// ready" on its health endpoint (the cluster catalog's Nomad queries).
	Readiness []ReadinessChecker
	// ArtifactRefs name the bundles still needed (published versions and
	// layers, function jobs). With any, Serve deletes the artifact store's
	// other bundles every artifacts gc_interval; without, nothing is
	// collected (dev mode does not know the jobs that fetch its bundles).
	ArtifactRefs []artifacts.Referencer
	// Mappings lists the event-source mappings to run (default: the ones
	// the catalog's specs declare, plus MappingBackend's).
	Mappings sources.Lister
	// MappingBackend stores event-source mappings created through Lambda's
	// API (local files in dev mode, Nomad Variables in a cluster). Nil: the
	// event-source-mapping API answers that it is not available.
	MappingBackend versions.Backend
	// SourceOpeners are the event-source types (default DefaultOpeners).
	SourceOpeners map[string]sources.Opener
	// SourceOptions tune the event-source engine (zero: defaults).
	SourceOptions sources.Options
	// Member names this gateway in consumer groups (default: a random id).
	Member string
	// Manage turns on the management API's writes (nil: reads only).
	Manage *ManageDeps
	// Blueprints is the console's blueprint catalogue (nil: none).
	Blueprints console.Blueprints
	// Mesh is the mesh listener's identity and intentions, required with
	// connect enabled (nil otherwise).
	Mesh *MeshDeps
	// TLSListener, when set, is used instead of listening on tls.listen.
	TLSListener net.Listener
}

// Server is one running gateway.
type Server struct {
	cfg     *config.Config
	deps    Deps
	logger  hclog.Logger
	metrics *metrics.Metrics
	router  *router.Router
	// invoker is the router, watched for image failures where a function
	// store is (images.Watch): what the API, async workers and pollers call.
	invoker api.Invoker
	api     *api.API
	queue   *queue.Queue
	nats    *queue.NATS // set by Start
	// slots shares reserved concurrency with the other gateways on the
	// same external NATS (set by Start when concurrency_lease applies).
	slots    *slots.Slots
	usage    atomic.Pointer[usage.Ledger]
	http     *http.Server
	ln       net.Listener
	conns    *limitListener // ln, counted and capped at max_connections
	draining atomic.Bool

	// The mesh listener (connect enabled) and the TLS listener (a tls
	// block); nil without. Both share the plain listener's connection cap.
	meshHTTP *http.Server
	meshLn   net.Listener
	tlsHTTP  *http.Server
	tlsLn    net.Listener
	tlsCerts *certFiles
	// meshServices maps a lower-cased URL service name to its function
	// (set by syncMeshServices).
	meshServices atomic.Pointer[map[string]string]

	verifier *sigv4.Verifier // nil without access keys
	// artifacts and its handler are set by Start before the listener
	// serves.
	artifacts        *artifacts.Store
	artifactsHandler http.Handler
	// sources runs event-source mappings (set by Start); sourcesDone
	// closes when its Run returns.
	sources     *sources.Manager
	kafka       *kafka.Producer // nil without kafka_brokers
	mappingAPI  http.Handler    // Lambda event-source-mapping API (nil without a store)
	stopSources context.CancelFunc
	sourcesDone chan struct{}
	// console serves /console/ and its data endpoints; history is its
	// metrics history, fed by the metrics and sampleHistory.
	console *console.Console
	history *console.History
	// peers reads the other gateways' histories (a shared NATS only).
	peers *natsPeers
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
	switch {
	case cfg.ConnectEnabled() && (deps.Mesh == nil || deps.Mesh.Source == nil || deps.Mesh.Authorizer == nil):
		return nil, errors.New("gateway config: connect is enabled but no mesh identity and authorizer were wired")
	case !cfg.ConnectEnabled() && deps.Mesh != nil:
		return nil, errors.New("gateway config: a mesh identity was wired but connect is not enabled")
	case cfg.TLS == nil && deps.TLSListener != nil:
		return nil, errors.New("gateway config: a TLS listener was wired without a tls block")
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
		InstanceTLS:        deps.InstanceTLS,
	}, deps.Source, deps.Scaler, m, logger)
	m.WatchStats(rt)
	var verifier *sigv4.Verifier
	if len(cfg.AccessKeys) > 0 {
		verifier = &sigv4.Verifier{Keys: cfg.Keys(), Region: cfg.Region, Service: "lambda"}
	}
	var kp *kafka.Producer
	if cfg.KafkaBrokers != "" {
		p, err := kafka.NewProducer(strings.Split(cfg.KafkaBrokers, ","), logger)
		if err != nil {
			return nil, fmt.Errorf("gateway config: kafka_brokers: %w", err)
		}
		kp = p
	}
	var kafkaDest destinations.Publisher
	if kp != nil {
		kafkaDest = kp
	}
	// The embedded NATS's token derives from the cluster key (a random one
	// per process without a key).
	qcfg := *cfg.Queue
	qcfg.ClusterKey = cfg.InvokeKeyBytes
	// Every invocation (API, async workers, pollers) goes through one
	// invoker; with a function store it records instances that cannot
	// pull their image as the function's State.
	var inv api.Invoker = rt
	if deps.Manage != nil && deps.Manage.Functions != nil {
		inv = images.NewWatch(rt, deps.Catalog, deps.Manage.Functions, logger)
	}
	q, err := queue.New(qcfg, cfg.Dev, queue.Deps{
		Kafka:   kafkaDest,
		Invoker: inv, Catalog: deps.Catalog, Limits: rt, Metrics: m, Logger: logger,
		Region: cfg.Region, AccountID: cfg.AccountID,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	a := api.New(api.Options{
		Region:       cfg.Region,
		AccountID:    cfg.AccountID,
		URLDomain:    cfg.URLDomain,
		Verifier:     verifier,
		Async:        q,
		EventConfigs: q,
		Admin:        cfg.IsAdmin,
		// Function URLs never see the console's session cookie.
		SessionCookie: console.CookieName,
	}, deps.Catalog, inv, rt, m, logger)
	s := &Server{cfg: cfg, deps: deps, logger: logger.Named("server"), metrics: m, router: rt, invoker: inv, api: a, queue: q, kafka: kp}
	if d := deps.Manage; d != nil {
		a.SetManagement(&api.Management{
			Functions: d.Functions, Versions: d.Versions, Code: &bundleCode{s: s, d: d},
			Applied: d.Applied, Changed: d.Changed, Declared: d.Declared, Remove: d.Remove, Provisioned: d.Provisioned,
			ResolveImage: d.ResolveImage,
		})
	}
	s.verifier = verifier
	s.console = s.newConsole()
	if verifier != nil {
		// The one authentication point: every route that verifies a
		// signature accepts a console session as its access key.
		verifier.Sessions = s.console.Sessions()
	}
	mux := http.NewServeMux()
	for _, rt := range s.ownRoutes(q, m) {
		if rt.pattern != "" {
			mux.Handle(rt.pattern, rt.handler)
		}
	}
	mux.Handle("/", a)
	s.console.SetGateway(mux)
	// No ReadTimeout or WriteTimeout: the body has its own deadline
	// (bodyDeadline) and a response lasts as long as the function runs.
	newHTTP := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           s.bodyDeadline(h),
			ReadHeaderTimeout: cfg.ReadHeaderTimeoutD,
			IdleTimeout:       cfg.IdleTimeoutD,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		}
	}
	routed := s.route(mux, a)
	if cfg.ConnectEnabled() && !cfg.Dev && !cfg.Connect.PlainURLs {
		// Function URLs go through the mesh, where intentions decide who
		// may call them (and the tls listener, which an operator opens on
		// purpose); the plain listener keeps everything else.
		s.http = newHTTP(s.refuseURLs(a, routed))
	} else {
		s.http = newHTTP(routed)
	}
	if cfg.TLS != nil {
		certs, err := newCertFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile, s.logger.Named("tls"))
		if err != nil {
			return nil, fmt.Errorf("gateway config: tls: %w", err)
		}
		s.tlsCerts = certs
		s.tlsHTTP = newHTTP(routed)
		s.tlsHTTP.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return certs.get() },
		}
	}
	if deps.Mesh != nil {
		s.meshHTTP = newHTTP(s.meshHandler(a, routed))
		s.meshHTTP.TLSConfig = deps.Mesh.Source.ServerTLSConfig(nil)
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

// refuseURLs answers function-URL requests (a <fn>.<url_domain> host or
// the /url/<fn>/ path) 403 in the URL error shape and passes the rest to
// next: the plain listener of a cluster gateway in the mesh, unless
// connect { plain_urls = true }.
func (s *Server) refuseURLs(a *api.API, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.IsURLHost(r.Host) || strings.HasPrefix(r.URL.Path, api.URLPathPrefix) {
			requestID := uuid.NewString()
			s.logger.Debug("function URL refused on the plain listener: connect is on and plain_urls is not",
				"request_id", requestID, "client", r.RemoteAddr)
			api.WriteURLError(w, requestID, http.StatusForbidden, "Forbidden")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Router exposes the router (tests, dev mode's output).
func (s *Server) Router() *router.Router { return s.router }

// Metrics exposes the metric set.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Queue exposes the async queue (tests, benchmarks).
func (s *Server) Queue() *queue.Queue { return s.queue }

// NATS is the gateway's NATS connection and embedded server (after Start),
// for other JetStream users in the process (the artifact store).
func (s *Server) NATS() *queue.NATS { return s.nats }

// Artifacts is the artifact store (after Start).
func (s *Server) Artifacts() *artifacts.Store { return s.artifacts }

// Route is one path the gateway serves.
type Route struct {
	Name string
	// Methods answered (nil: any).
	Methods []string
	// Path, with {FunctionName}, {RequestId} or {Sha256} standing for one
	// segment.
	Path string
	// Open routes are served without authentication even with access
	// keys; every other route refuses an unsigned request.
	Open bool
}

// ownRoute is a Route of the server's mux with its pattern and handler.
type ownRoute struct {
	Route
	pattern string
	handler http.Handler
}

// ownRoutes are the server's paths besides the API's operations.
func (s *Server) ownRoutes(q *queue.Queue, m *metrics.Metrics) []ownRoute {
	// The status API is authenticated here, before its own method and
	// path checks, so that every refusal has Lambda's error shape.
	status := s.requireSignature(q.Handler(nil))
	art := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && s.verifier != nil && r.Header.Get("Authorization") == "" {
			// Uploads are verified over the whole body by the store's
			// handler; an unsigned one (a console session included: the
			// console uploads code inside CreateFunction) is refused here,
			// in Lambda's shape.
			writeAuthError(w, &sigv4.Error{Code: sigv4.CodeMissingToken, Message: "Missing Authentication Token"})
			return
		}
		s.artifactsHandler.ServeHTTP(w, r)
	})
	get := []string{http.MethodGet}
	routes := []ownRoute{
		{Route{"GetAsyncInvocation", get, queue.InvocationsPath + "{RequestId}", false}, queue.InvocationsPath, status},
		// Only .../invocations: the API serves other paths under
		// FunctionsPath (GetFunctionSpec's /nimbus/v1/functions/{FunctionName}/spec).
		{Route{"ListAsyncInvocations", get, queue.FunctionsPath + "{FunctionName}/invocations", false}, queue.FunctionsPath + "{FunctionName}/invocations", status},
		{Route{"UploadArtifact", []string{http.MethodPut}, artifacts.Path + "{Sha256}.zip", false}, artifacts.Path, art},
		// Nomad clients' artifact blocks fetch bundles without credentials:
		// the address is the content's hash and the job carries the
		// checksum go-getter verifies.
		{Route{"DownloadArtifact", []string{http.MethodGet, http.MethodHead}, artifacts.Path + "{Sha256}.zip", true}, "", nil},
		{Route{"GetUsage", get, usage.Path, false}, usage.Path, s.requireSignature(usage.Handler(s.usage.Load))},
		{Route{"ListEventSourceStatus", get, EventSourcesPath, false}, EventSourcesPath, s.requireSignature(http.HandlerFunc(s.serveEventSources))},
		// The mapping API verifies SigV4 over the body itself.
		{Route{"EventSourceMappings", []string{http.MethodGet, http.MethodPost}, esmapi.Path, false}, esmapi.Path, http.HandlerFunc(s.serveMappingAPI)},
		{Route{"EventSourceMapping", []string{http.MethodGet, http.MethodPut, http.MethodDelete}, esmapi.Path + "/{UUID}", false}, esmapi.Path + "/", http.HandlerFunc(s.serveMappingAPI)},
		{Route{"Health", nil, HealthPath, true}, HealthPath, http.HandlerFunc(s.health)},
		{Route{"Metrics", nil, MetricsPath, true}, MetricsPath, promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})},
	}
	// The console's routes; one without a name is a catch-all pattern,
	// not a route of its own (Routes leaves it out).
	for _, rt := range s.console.Routes() {
		routes = append(routes, ownRoute{Route{rt.Name, rt.Methods, rt.Path, rt.Open}, rt.Pattern, rt.Handler})
	}
	return routes
}

// Routes lists every route the gateway serves: its own and the API's
// operations. Function URLs (/url/{FunctionName}/…, and
// {FunctionName}.<url_domain>) are not listed: each follows its function's
// auth type (NONE is public, as on Lambda; AWS_IAM is signed).
func (s *Server) Routes() []Route {
	var out []Route
	for _, rt := range s.ownRoutes(s.queue, s.metrics) {
		if rt.Name != "" {
			out = append(out, rt.Route)
		}
	}
	for _, rt := range api.Routes() {
		out = append(out, Route{Name: rt.Operation, Methods: rt.Methods, Path: rt.Path})
	}
	return out
}

// requireSignature checks SigV4 (over an empty body: the routes it guards
// are reads) before h when the gateway has access keys.
func (s *Server) requireSignature(h http.Handler) http.Handler {
	if s.verifier == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.verifier.Verify(r, nil); err != nil {
			writeAuthError(w, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// mayProceed answers true for a request a handler verifies itself over its
// body: a signed one (Authorization present) or one with a valid console
// session; otherwise (no credential, a bad session) it answers the refusal
// the way the API does. Without access keys everything proceeds.
func (s *Server) mayProceed(w http.ResponseWriter, r *http.Request) bool {
	if s.verifier == nil || r.Header.Get("Authorization") != "" {
		return true
	}
	_, err := s.verifier.Verify(r, nil)
	if err == nil {
		return true
	}
	writeAuthError(w, err)
	return false
}

// writeAuthError answers a SigV4 refusal in Lambda's error shape.
func writeAuthError(w http.ResponseWriter, err error) {
	var se *sigv4.Error
	if errors.As(err, &se) {
		api.WriteError(w, uuid.NewString(), se.Code, se.Message)
		return
	}
	api.WriteError(w, uuid.NewString(), api.CodeAccessDenied, err.Error())
}

// Start opens the async queue and the listener, and registers the gateway.
func (s *Server) Start(ctx context.Context) error {
	n, err := queue.ConnectNATS(s.queue.Config(), s.logger)
	if err != nil {
		return fmt.Errorf("starting NATS for the async queue: %w", err)
	}
	if err := s.queue.Open(ctx, n); err != nil {
		n.Close()
		return fmt.Errorf("opening the async queue: %w", err)
	}
	s.nats = n
	// The artifact store shares the queue's NATS: the embedded server, or
	// the cluster every gateway attaches to, so each serves every bundle.
	if err := s.openArtifacts(ctx); err != nil {
		s.nats.Close()
		return err
	}
	if err := s.openSlots(ctx); err != nil {
		s.nats.Close()
		return err
	}
	if err := s.openSessions(ctx); err != nil {
		s.nats.Close()
		return err
	}
	if err := s.openPeers(ctx); err != nil {
		s.nats.Close()
		return err
	}
	if err := s.openUsage(ctx); err != nil {
		s.nats.Close()
		return err
	}
	s.startSources()
	ln := s.deps.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			s.nats.Close()
			return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
		}
	}
	s.conns = newLimitListener(ln, s.cfg.MaxConnections, s.metrics.Registry)
	s.ln = s.conns
	if err := s.listenTLS(ctx); err != nil {
		_ = ln.Close()
		s.nats.Close()
		return err
	}
	go func() {
		if err := s.http.Serve(s.conns); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", "error", err)
		}
	}()
	for _, x := range []struct {
		srv  *http.Server
		ln   net.Listener
		name string
	}{{s.tlsHTTP, s.tlsLn, "tls"}, {s.meshHTTP, s.meshLn, "mesh"}} {
		if x.srv == nil {
			continue
		}
		go func() {
			// The TLS configs carry GetCertificate: no files here.
			if err := x.srv.ServeTLS(x.ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logger.Error("https server stopped", "listener", x.name, "error", err)
			}
		}()
		s.logger.Info("gateway listening", "listener", x.name, "address", x.ln.Addr().String())
	}
	for _, r := range s.deps.Registrars {
		if err := r.Register(ctx); err != nil {
			return fmt.Errorf("registering gateway: %w", err)
		}
	}
	s.logger.Info("gateway listening", "address", ln.Addr().String(), "dev", s.cfg.Dev)
	return nil
}

// openSlots makes reserved concurrency hold across the gateways sharing an
// external NATS (concurrency_lease is set only with nats_url): the router
// then takes a slot of the function's reservation in a JetStream KV bucket
// for every such invocation. One gateway on its embedded NATS counts alone.
func (s *Server) openSlots(ctx context.Context) error {
	if s.cfg.ConcurrencyLeaseD == 0 {
		return nil
	}
	js, err := jetstream.New(s.nats.Conn)
	if err != nil {
		return fmt.Errorf("opening JetStream for reserved concurrency: %w", err)
	}
	owner := s.deps.Member
	if owner == "" {
		owner = "gateway-" + uuid.NewString()
	}
	sl, err := slots.Open(ctx, js, slots.Config{Owner: owner, Lease: s.cfg.ConcurrencyLeaseD, Replicas: s.cfg.Queue.Replicas}, s.logger)
	if err != nil {
		return fmt.Errorf("opening reserved concurrency slots: %w", err)
	}
	s.slots = sl
	s.router.SetShared(sl, s.cfg.ShareAccountConcurrency)
	return nil
}

// openUsage opens the usage ledger on the queue's NATS (shared by the
// gateways of a cluster) and meters every billed invocation into it.
func (s *Server) openUsage(ctx context.Context) error {
	js, err := jetstream.New(s.nats.Conn)
	if err != nil {
		return fmt.Errorf("opening JetStream for usage metering: %w", err)
	}
	owner := s.deps.Member
	if owner == "" {
		owner = "gateway-" + uuid.NewString()
	}
	l, err := usage.Open(ctx, js, usage.Config{Owner: owner, Replicas: s.cfg.Queue.Replicas}, s.logger)
	if err != nil {
		return fmt.Errorf("opening usage metering: %w", err)
	}
	s.metrics.SetUsageSink(l)
	s.usage.Store(l)
	return nil
}

// memoryMB is a function version's memory size from the catalog (0 when
// unknown).
func (s *Server) memoryMB(ctx context.Context, function, version string) int64 {
	fn, err := s.deps.Catalog.Function(ctx, function)
	if err != nil || fn == nil {
		return 0
	}
	if spec := fn.Versions[version]; spec != nil {
		return int64(spec.MemoryMB)
	}
	return 0
}

func (s *Server) openArtifacts(ctx context.Context) error {
	js, err := jetstream.New(s.nats.Conn)
	if err != nil {
		return fmt.Errorf("opening JetStream for the artifact store: %w", err)
	}
	store, err := artifacts.Open(ctx, js, *s.cfg.Artifacts, s.deps.Logger)
	if err != nil {
		return fmt.Errorf("opening the artifact store: %w", err)
	}
	var auth artifacts.Authorizer
	if v := s.verifier; v != nil {
		// Uploads are signed like API calls, over the whole body.
		auth = func(r *http.Request, body []byte) error {
			_, err := v.Verify(r, body)
			return err
		}
	}
	s.artifacts, s.artifactsHandler = store, artifacts.NewHandler(store, auth)
	return nil
}

// meshReadyTimeout bounds Start's wait for the gateway's first leaf
// certificate and the CA roots from the Consul agent.
const meshReadyTimeout = 30 * time.Second

// Addr is the bound address (after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// MeshAddr is the mesh listener's bound address ("" without connect).
func (s *Server) MeshAddr() string {
	if s.meshLn == nil {
		return ""
	}
	return s.meshLn.Addr().String()
}

// TLSAddr is the TLS listener's bound address ("" without a tls block).
func (s *Server) TLSAddr() string {
	if s.tlsLn == nil {
		return ""
	}
	return s.tlsLn.Addr().String()
}

// listenTLS opens the mesh and TLS listeners (those configured), capped
// together with the plain one, and gives the mesh Source the function URL
// services' leaves to fetch before the first caller arrives.
func (s *Server) listenTLS(ctx context.Context) error {
	open := func(given net.Listener, addr, what string) (net.Listener, error) {
		if given != nil {
			return s.conns.share(given), nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %s (%s): %w", addr, what, err)
		}
		return s.conns.share(ln), nil
	}
	if s.tlsHTTP != nil {
		ln, err := open(s.deps.TLSListener, s.cfg.TLS.Listen, "tls")
		if err != nil {
			return err
		}
		s.tlsLn = ln
	}
	if s.meshHTTP != nil {
		ln, err := open(s.deps.Mesh.Listener, s.cfg.Connect.Listen, "connect")
		if err != nil {
			if s.tlsLn != nil {
				_ = s.tlsLn.Close()
			}
			return err
		}
		s.meshLn = ln
		// Registering "<fn>-url" Connect-native before the gateway holds a
		// leaf would send callers to a listener that cannot shake hands.
		rctx, cancel := context.WithTimeout(ctx, meshReadyTimeout)
		defer cancel()
		if err := s.deps.Mesh.Source.Ready(rctx); err != nil {
			_ = ln.Close()
			if s.tlsLn != nil {
				_ = s.tlsLn.Close()
			}
			return err
		}
		s.syncMeshServices(ctx)
	}
	return nil
}

// Serve runs background work until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.router.Run(bg)
	if s.slots != nil {
		// Renews held slots until the drain below has ended (bg ends
		// when Serve returns).
		go s.slots.Run(bg)
	}
	if l := s.usage.Load(); l != nil {
		go l.Run(bg)
		go usage.SampleProvisioned(bg, 10*time.Second, s.router.PoolStats, s.memoryMB, func(fn, version string, mbMs int64) {
			s.metrics.ProvisionedUsage(fn, version, mbMs)
			l.Provisioned(fn, version, mbMs)
		})
	}
	if len(s.deps.ArtifactRefs) > 0 {
		go s.artifacts.RunGC(bg, s.cfg.Artifacts.GCIntervalD, s.deps.ArtifactRefs...)
	}
	if err := s.queue.Run(); err != nil {
		return err
	}
	go s.trackReservations(bg)
	go s.sampleHistory(bg)
	if s.peers != nil {
		go s.peers.run(bg)
	}
	sctx, stop := context.WithCancel(bg)
	s.stopSources, s.sourcesDone = stop, make(chan struct{})
	go func() {
		defer close(s.sourcesDone)
		s.sources.Run(sctx)
	}()
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
	// Live log tails would hold their connections open through the drain.
	s.console.Stop()
	go func() {
		var wg sync.WaitGroup
		var tlsErr, meshErr error
		for _, x := range []struct {
			srv *http.Server
			err *error
		}{{s.tlsHTTP, &tlsErr}, {s.meshHTTP, &meshErr}} {
			if x.srv != nil {
				wg.Add(1)
				go func() { defer wg.Done(); *x.err = x.srv.Shutdown(ctx) }()
			}
		}
		err := s.http.Shutdown(ctx)
		wg.Wait()
		done <- errors.Join(err, tlsErr, meshErr)
	}()
	// Event-source pollers first: they finish their in-flight batches and
	// leave the rest to their brokers.
	if s.stopSources != nil {
		s.stopSources()
		select {
		case <-s.sourcesDone:
		case <-ctx.Done():
			errs = append(errs, errors.New("event-source pollers did not stop within the grace period"))
		}
	}
	// Async workers next: events they do not finish go back to the queue.
	if err := s.queue.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.router.Drain(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := <-done; err != nil {
		errs = append(errs, fmt.Errorf("closing http server: %w", err))
	}
	s.router.Close()
	if s.kafka != nil {
		s.kafka.Close()
	}
	// The drained invocations' usage, before NATS goes.
	if l := s.usage.Load(); l != nil {
		// Best effort: at most the last flush interval's counts are lost
		// (the NATS connection may be gone already).
		if err := l.Flush(ctx); err != nil {
			s.logger.Warn("flushing usage at shutdown", "error", err)
		}
	}
	if s.nats != nil {
		s.nats.Close()
	}
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
	s.syncMeshServices(ctx)
	if total > s.cfg.AccountConcurrency-s.cfg.UnreservedMin {
		s.logger.Warn("reserved concurrency leaves less than the unreserved minimum; keeping the minimum",
			"reserved", total, "account_concurrency", s.cfg.AccountConcurrency, "unreserved_min", s.cfg.UnreservedMin)
	}
	s.router.SetReservedTotal(total)
}

// health answers 200 {"status":"ok"} while the gateway can serve, and 503
// {"status":"draining"} during shutdown or {"status":"not ready",
// "reason":…} while an adapter cannot serve (Nomad unreachable), so
// Consul's check and load balancers steer traffic away.
func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "draining"})
		return
	}
	var reasons []string
	for _, c := range s.deps.Readiness {
		if err := c.CheckReady(); err != nil {
			reasons = append(reasons, err.Error())
		}
	}
	if len(reasons) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "not ready", "reason": strings.Join(reasons, "; ")})
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
