package api

import (
	"context"
	"errors"
	"net/http"
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
		a.serveURL(w, r, fn, "/"+sub)
		return
	}
	seg := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(seg) == 4 && seg[0] == "2015-03-31" && seg[1] == "functions" && seg[3] == "invocations":
		if r.Method != http.MethodPost {
			break
		}
		a.serveInvoke(w, r, seg[2])
		return
	case len(seg) == 3 && seg[0] == "2015-03-31" && seg[1] == "functions" && r.Method == http.MethodGet:
		a.serveGetFunction(w, r, seg[2])
		return
	case len(seg) == 2 && seg[0] == "2015-03-31" && seg[1] == "functions" && r.Method == http.MethodGet:
		a.serveListFunctions(w, r)
		return
	case len(seg) == 4 && seg[0] == "2021-10-31" && seg[1] == "functions" && (seg[3] == "urls" || seg[3] == "url") && r.Method == http.MethodGet:
		a.serveURLConfigs(w, r, seg[2], seg[3] == "urls")
		return
	case len(seg) == 4 && seg[0] == "2019-09-25" && seg[1] == "functions" && seg[3] == "event-invoke-config":
		a.serveEventInvokeConfig(w, r, seg[2], false)
		return
	case len(seg) == 5 && seg[0] == "2019-09-25" && seg[1] == "functions" && seg[3] == "event-invoke-config" && seg[4] == "list":
		a.serveEventInvokeConfig(w, r, seg[2], true)
		return
	case len(seg) == 2 && seg[0] == "2016-08-19" && seg[1] == "account-settings" && r.Method == http.MethodGet:
		a.serveAccountSettings(w, r)
		return
	}
	writeAPIError(w, uuid.NewString(), &apiError{Code: CodeUnknownOperation, Message: "Unknown operation " + r.Method + " " + p})
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
	id, err := a.opts.Verifier.Verify(r, body)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return nil, &apiError{Code: se.Code, Message: se.Message}
		}
		return nil, &apiError{Code: CodeAccessDenied, Message: err.Error()}
	}
	return id, nil
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
