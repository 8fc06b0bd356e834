package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Paths the console serves.
const (
	// Prefix serves the single-page application.
	Prefix = "/console/"
	// APIPrefix serves the session endpoints.
	APIPrefix   = "/console/api/"
	SessionPath = APIPrefix + "session"
	LoginPath   = APIPrefix + "login"
	LogoutPath  = APIPrefix + "logout"
	// GatewayPrefix mounts the gateway's own routes for the console:
	// /console/api/gw/2015-03-31/functions is /2015-03-31/functions. The
	// session cookie's path (CookiePath) reaches only /console/…, so this
	// is how a session reaches the API; every route behind it
	// authenticates as it does at its own path (a SigV4 signature is over
	// the path the client signed, so signed clients call the routes
	// directly).
	GatewayPrefix = APIPrefix + "gw"

	MetricsSummaryPath = "/nimbus/v1/metrics/summary"
	MetricsHistoryPath = "/nimbus/v1/metrics/history"
	// FunctionsPath + {fn}/logs, {fn}/test-events and {fn}/test-events/{name}.
	FunctionsPath  = "/nimbus/v1/functions/"
	BlueprintsPath = "/nimbus/v1/blueprints"
)

// Authorizer authenticates a request to the console's data endpoints (with
// body, the complete request body, for signature checks) and answers
// whether it may go on; admin asks for a key that may manage functions. On
// refusal it has written the answer. The gateway supplies it: the same
// verifier (SigV4 or a session) every other route uses.
type Authorizer func(w http.ResponseWriter, r *http.Request, body []byte, admin bool) bool

// Options wire the console.
type Options struct {
	Sessions *Sessions
	// Assets is the application (default: Assets()).
	Assets fs.FS
	// History serves the metrics endpoints (nil: 404 "metrics history is
	// not kept").
	History *History
	// Peers adds the other gateways' histories to this one's (nil: this
	// gateway's only; ?scope=local asks for this gateway's only).
	Peers Peers
	// Logs fans in the function's instances' logs (nil: the log endpoint
	// answers 503).
	Logs *LogTail
	// TestEvents stores saved test events (nil: those endpoints answer 503).
	TestEvents TestEventStore
	// Functions says whether a function exists (test events of an unknown
	// function are refused); nil: any name.
	Functions func(r *http.Request, name string) (bool, error)
	// Blueprints is the catalogue (nil: an empty list).
	Blueprints Blueprints
	// Authorize guards every data endpoint; nil: open (dev without keys).
	Authorize Authorizer
	Logger    hclog.Logger
}

// Console serves the console's routes.
type Console struct {
	opts   Options
	assets *assetServer
	logger hclog.Logger
	// stopping closes when the gateway shuts down: live tails end.
	stopping chan struct{}
	stopOnce sync.Once
	// gateway serves GatewayPrefix (SetGateway).
	gateway http.Handler
}

// SetPeers adds the other gateways' histories to this one's (Options.Peers
// for a console built before the gateway's NATS connects); call it before
// serving.
func (c *Console) SetPeers(p Peers) { c.opts.Peers = p }

// SetGateway names the handler GatewayPrefix serves (the gateway's whole
// mux); call it before serving.
func (c *Console) SetGateway(h http.Handler) { c.gateway = h }

// serveGateway strips GatewayPrefix and hands the request to the gateway.
// The console's own paths are not served twice over.
func (c *Console) serveGateway(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	raw := strings.TrimPrefix(r.URL.EscapedPath(), GatewayPrefix)
	p, err := url.PathUnescape(raw)
	if c.gateway == nil || err != nil || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "/console/") || strings.HasPrefix(p, "/url/") {
		writeMessage(w, http.StatusNotFound, "no gateway route at "+r.URL.Path)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = p, ""
	if raw != p {
		r2.URL.RawPath = raw
	}
	r2.RequestURI = r2.URL.RequestURI()
	c.gateway.ServeHTTP(w, r2)
}

// Stop ends the live log tails and the keeping of recent lines (the
// gateway is shutting down); other requests are unaffected.
func (c *Console) Stop() {
	c.stopOnce.Do(func() {
		close(c.stopping)
		if c.opts.Logs != nil {
			c.opts.Logs.Close()
		}
	})
}

// New builds the console.
func New(opts Options) *Console {
	if opts.Assets == nil {
		opts.Assets = Assets()
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Sessions == nil {
		opts.Sessions = NewSessions(SessionConfig{Logger: opts.Logger})
	}
	return &Console{opts: opts, assets: newAssetServer(opts.Assets), logger: opts.Logger.Named("console"), stopping: make(chan struct{})}
}

// Sessions is the session layer (the gateway's verifier consults it).
func (c *Console) Sessions() *Sessions { return c.opts.Sessions }

// Route is one path the console serves: Pattern is its http.ServeMux
// pattern, Path the route table's form ({FunctionName} etc. for a segment).
type Route struct {
	Name    string
	Methods []string
	Path    string
	Pattern string
	// Open routes need no authentication (the assets and the session
	// endpoints, which authenticate by the login itself).
	Open    bool
	Handler http.Handler
}

// Routes lists the console's routes.
func (c *Console) Routes() []Route {
	get := []string{http.MethodGet}
	s := c.opts.Sessions
	return []Route{
		{"ConsoleAssets", []string{http.MethodGet, http.MethodHead}, Prefix, Prefix, true, c.assets},
		{"ConsoleSession", get, SessionPath, SessionPath, true, http.HandlerFunc(s.ServeSession)},
		{"ConsoleLogin", []string{http.MethodPost}, LoginPath, LoginPath, true, http.HandlerFunc(s.ServeLogin)},
		{"ConsoleLogout", []string{http.MethodPost}, LogoutPath, LogoutPath, true, http.HandlerFunc(s.ServeLogout)},
		{"", nil, "", GatewayPrefix + "/", true, http.HandlerFunc(c.serveGateway)},
		// Unknown /console/api/ paths are not the application's.
		{"", nil, "", APIPrefix, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeMessage(w, http.StatusNotFound, "unknown console API path "+r.URL.Path)
		})},
		{"GetMetricsSummary", get, MetricsSummaryPath, MetricsSummaryPath, false, c.guard(false, c.serveSummary)},
		{"GetMetricsHistory", get, MetricsHistoryPath, MetricsHistoryPath, false, c.guard(false, c.serveHistory)},
		{"GetFunctionLogs", get, FunctionsPath + "{FunctionName}/logs", FunctionsPath + "{FunctionName}/logs", false, c.guard(true, c.serveLogs)},
		{"ListTestEvents", get, FunctionsPath + "{FunctionName}/test-events", FunctionsPath + "{FunctionName}/test-events", false, c.guard(false, c.serveTestEvents)},
		{"TestEvent", []string{http.MethodGet, http.MethodPut, http.MethodDelete}, FunctionsPath + "{FunctionName}/test-events/{Name}",
			FunctionsPath + "{FunctionName}/test-events/{Name}", false, c.guardWrite(c.serveTestEvent)},
		{"ListBlueprints", get, BlueprintsPath, BlueprintsPath, false, c.guard(false, c.serveBlueprints)},
		{"GetBlueprintCode", get, BlueprintsPath + "/{Name}/code.zip", BlueprintsPath + "/{Name}/code.zip", false, c.guard(false, c.serveBlueprintCode)},
	}
}

// guard authorizes a request without a body before h.
func (c *Console) guard(admin bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := c.opts.Authorize; a != nil && !a(w, r, nil, admin) {
			return
		}
		h(w, r)
	})
}

// maxTestEvent bounds a saved test event (Lambda's payload limit).
const maxTestEvent = 6 << 20

// guardWrite reads the body (writes are signed over it), then authorizes:
// reads any key may do, writes need an admin key.
func (c *Console) guardWrite(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			b, err := io.ReadAll(io.LimitReader(r.Body, maxTestEvent+1))
			if err != nil {
				writeMessage(w, http.StatusBadRequest, "reading the body: "+err.Error())
				return
			}
			if len(b) > maxTestEvent {
				writeMessage(w, http.StatusRequestEntityTooLarge, "a test event is at most 6 MiB")
				return
			}
			body = b
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		admin := r.Method != http.MethodGet && r.Method != http.MethodHead
		if a := c.opts.Authorize; a != nil && !a(w, r, body, admin) {
			return
		}
		h(w, r)
	})
}

// securityHeaders are set on every console answer.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// assetServer serves the application with the SPA fallback: a path that
// names no file and has no extension answers index.html, so the client's
// routes load the application.
type assetServer struct {
	fsys  fs.FS
	etags map[string]string
}

func newAssetServer(fsys fs.FS) *assetServer {
	a := &assetServer{fsys: fsys, etags: map[string]string{}}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(b)
		a.etags[p] = `"` + hex.EncodeToString(sum[:16]) + `"`
		return nil
	})
	return a
}

func (a *assetServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeMessage(w, http.StatusMethodNotAllowed, "the console's assets answer GET and HEAD")
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, Prefix)), "/")
	if name == "" {
		name = "index.html"
	}
	if _, ok := a.etags[name]; !ok {
		if path.Ext(name) != "" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		name = "index.html"
	}
	f, err := a.fsys.Open(name)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.Error(w, "asset not seekable", http.StatusInternalServerError)
		return
	}
	// The build's file names are fixed (assets/console.js, for a
	// reproducible dist), not content-hashed: every asset is revalidated
	// by its ETag, so a browser never runs an older gateway's console
	// against a newer gateway's API.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", a.etags[name])
	http.ServeContent(w, r, name, time.Time{}, rs)
}
