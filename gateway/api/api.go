package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
)

// Catalog is what the API reads of deployed functions.
type Catalog interface {
	Function(ctx context.Context, name string) (*catalog.Function, error)
	Functions(ctx context.Context) ([]*catalog.Function, error)
}

// Invoker runs an invocation (the router).
type Invoker interface {
	Invoke(ctx context.Context, t router.Target, req *invokeapi.Request) (*invokeapi.Response, error)
}

// Limits reports the account's concurrency for GetAccountSettings.
type Limits interface {
	AccountConcurrency() int
	UnreservedLimit() int
}

// Options configure the API.
type Options struct {
	// Region and AccountID make ARNs and scope SigV4.
	Region    string
	AccountID string
	// URLDomain makes host-based function URLs: <function>.<URLDomain>.
	// Empty disables host-based URLs (path-based /url/<fn>/ still work).
	URLDomain string
	// Verifier checks SigV4 on the Invoke API and AWS_IAM URLs; nil disables
	// authentication (dev mode only: config validation enforces it).
	Verifier *sigv4.Verifier
	// Scheme the gateway is reached with, for x-forwarded-proto/port ("http" default).
	Scheme string
	// Async stores Event invocations (the async queue); nil refuses them.
	Async Enqueuer
	// EventConfigs serves the event-invoke config API (nil refuses it).
	EventConfigs EventConfigs
	// Manage serves the management API's writes (nil: reads only).
	Manage *Management
	// SessionCookie names the gateway's own session cookie (the console's):
	// it is never passed on to a function URL's function.
	SessionCookie string
	// Admin reports whether an access key may manage functions (nil: every
	// key may); the others may only invoke.
	Admin func(accessKeyID string) bool
}

// Enqueuer stores an asynchronous invocation durably.
type Enqueuer interface {
	Enqueue(ctx context.Context, ev queue.Event) error
}

// API serves the Invoke API and function URLs.
type API struct {
	opts    Options
	catalog Catalog
	invoker Invoker
	limits  Limits
	metrics *metrics.Metrics
	logger  hclog.Logger
}

// New builds the API handler.
func New(opts Options, cat Catalog, inv Invoker, limits Limits, m *metrics.Metrics, logger hclog.Logger) *API {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if opts.Scheme == "" {
		opts.Scheme = "http"
	}
	return &API{opts: opts, catalog: cat, invoker: inv, limits: limits, metrics: m, logger: logger.Named("api")}
}

// SetManagement turns on the management API's writes; call it before
// serving.
func (a *API) SetManagement(m *Management) { a.opts.Manage = m }

// URLPathPrefix starts path-based function URLs: /url/<function>/<path>.
const URLPathPrefix = "/url/"

// ServeHTTP routes one request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if fn, ok := a.urlHost(r.Host); ok {
		a.serveURL(w, r, fn, r.URL.EscapedPath())
		return
	}
	p := r.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(p, URLPathPrefix); ok {
		fn, sub, _ := strings.Cut(rest, "/")
		if a.opts.Verifier != nil && a.opts.SessionCookie != "" {
			// A path-based URL shares the gateway's origin with the
			// console: its pages run sandboxed (an opaque origin), so a
			// function's script can neither read the console's answers
			// nor ride its session. Host-based URLs (url_domain) are
			// their own origins and run unrestricted.
			w = &sandboxedWriter{ResponseWriter: w}
		}
		a.serveURL(w, r, fn, "/"+sub)
		return
	}
	seg := strings.Split(strings.Trim(p, "/"), "/")
	for _, rt := range allRoutes() {
		if name, ok := rt.match(r.Method, seg); ok {
			rt.bind(r, seg)
			rt.serve(a, w, r, name)
			return
		}
	}
	writeAPIError(w, uuid.NewString(), &apiError{Code: CodeUnknownOperation, Message: "Unknown operation " + r.Method + " " + p})
}

// Route is one operation the API serves besides function URLs: the
// methods it answers (nil: any; the operation tells them apart) and its
// path, with "{FunctionName}" for the function label and "{…}" for any
// other segment the operation reads (r.PathValue, still escaped).
type Route struct {
	Operation string
	Methods   []string
	Path      string
}

// route is a Route with its handler; routes is the API's dispatch table.
type route struct {
	Route
	serve func(a *API, w http.ResponseWriter, r *http.Request, name string)
}

const fnLabel = "{FunctionName}"

var routes = []route{
	{Route{"Invoke", []string{http.MethodPost}, "/2015-03-31/functions/" + fnLabel + "/invocations"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.serveInvoke(w, r, name) }},
	{Route{"InvokeWithResponseStream", []string{http.MethodPost}, "/2021-11-15/functions/" + fnLabel + "/response-streaming-invocations"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.serveInvokeStream(w, r, name) }},
	{Route{"FunctionEventInvokeConfig", []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete}, "/2019-09-25/functions/" + fnLabel + "/event-invoke-config"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.serveEventInvokeConfig(w, r, name, false)
		}},
	{Route{"ListFunctionEventInvokeConfigs", []string{http.MethodGet}, "/2019-09-25/functions/" + fnLabel + "/event-invoke-config/list"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.serveEventInvokeConfig(w, r, name, true)
		}},
}

// dispatch is the whole table: invocation and management operations.
var dispatch = slices.Concat(routes, manageRoutes, versionRoutes, configRoutes, rolloutRoutes)

func allRoutes() []route { return dispatch }

// match reports whether method and the path's segments select the route,
// and the (still escaped) segment {FunctionName} or {ARN} captures (a
// route has at most one of them); other "{…}" segments become path values
// (bind).
func (rt route) match(method string, seg []string) (string, bool) {
	want := strings.Split(strings.Trim(rt.Path, "/"), "/")
	if len(want) != len(seg) {
		return "", false
	}
	name := ""
	for i, w := range want {
		switch {
		case w == fnLabel || w == arnLabel:
			name = seg[i] // the handler's name argument
		case isPlaceholder(w): // a path value (bind)
		case w != seg[i]:
			return "", false
		}
	}
	if rt.Methods != nil && !slices.Contains(rt.Methods, method) {
		return "", false
	}
	return name, true
}

// bind sets the path's "{…}" segments other than the function label as
// the request's path values.
func (rt route) bind(r *http.Request, seg []string) {
	for i, w := range strings.Split(strings.Trim(rt.Path, "/"), "/") {
		if w != fnLabel && isPlaceholder(w) {
			r.SetPathValue(w[1:len(w)-1], seg[i])
		}
	}
}

func isPlaceholder(seg string) bool {
	return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}'
}

// Routes lists the API's operations (function URLs, /url/<function>/ and
// <function>.<url_domain>, come on top). Every one authenticates its
// caller when the API has a Verifier.
func Routes() []Route {
	all := allRoutes()
	out := make([]Route, len(all))
	for i, rt := range all {
		out[i] = rt.Route
	}
	return out
}

// IsURLHost reports whether host names a function URL (<fn>.<url_domain>).
func (a *API) IsURLHost(host string) bool {
	_, ok := a.urlHost(host)
	return ok
}

// urlHost reports whether host names a function URL (<fn>.<url_domain>).
func (a *API) urlHost(host string) (string, bool) {
	if a.opts.URLDomain == "" {
		return "", false
	}
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	fn, ok := strings.CutSuffix(strings.ToLower(host), "."+strings.ToLower(a.opts.URLDomain))
	if !ok || fn == "" || strings.Contains(fn, ".") {
		return "", false
	}
	return fn, true
}

// authenticate verifies SigV4 when a verifier is configured.
func (a *API) authenticate(r *http.Request, body []byte) (*sigv4.Identity, *apiError) {
	if a.opts.Verifier == nil {
		return nil, nil
	}
	return verified(a.opts.Verifier.Verify(r, body))
}

// verified maps a verifier's answer onto the API's: a SigV4 refusal keeps
// its Lambda error code, anything else is AccessDeniedException.
func verified(id *sigv4.Identity, err error) (*sigv4.Identity, *apiError) {
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return nil, &apiError{Code: se.Code, Message: se.Message}
		}
		return nil, &apiError{Code: CodeAccessDenied, Message: err.Error()}
	}
	return id, nil
}

// authenticateSignature verifies SigV4 only: a console session does not
// reach function URLs.
func (a *API) authenticateSignature(r *http.Request, body []byte) (*sigv4.Identity, *apiError) {
	if a.opts.Verifier == nil {
		return nil, nil
	}
	return verified(a.opts.Verifier.VerifySignature(r, body))
}

// isSessionCookie reports whether a "name=value" cookie is the gateway's
// session cookie.
func (a *API) isSessionCookie(pair string) bool {
	name, _, _ := strings.Cut(pair, "=")
	return a.opts.SessionCookie != "" && strings.TrimSpace(name) == a.opts.SessionCookie
}

// functionARN is arn:aws:lambda:<region>:<account>:function:<name>[:<q>].
func (a *API) functionARN(name, qualifier string) string {
	s := "arn:aws:lambda:" + a.opts.Region + ":" + a.opts.AccountID + ":function:" + name
	if qualifier != "" {
		s += ":" + qualifier
	}
	return s
}

// target builds the router target of a resolved version.
func target(fn *catalog.Function, res *catalog.Resolution) router.Target {
	return router.Target{
		Function:                fn.Name,
		Version:                 res.Version,
		Reserved:                fn.ReservedConcurrency(),
		EnvironmentsPerInstance: res.Spec.EnvironmentsPerInstance,
	}
}

// PathURLSandbox is the policy every path-based function URL answer
// carries on a gateway with access keys: the page may run scripts, forms,
// popups and downloads, but in an opaque origin (no allow-same-origin), so
// its requests to the gateway are cross-origin ones the gateway answers
// without CORS.
const PathURLSandbox = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"

// sandboxedWriter adds PathURLSandbox to an answer as its header is
// written, after the function's own headers (a policy the function sets
// applies as well: both are enforced).
type sandboxedWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *sandboxedWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.Header().Add("Content-Security-Policy", PathURLSandbox)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sandboxedWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes and
// deadlines of streamed answers).
func (w *sandboxedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
