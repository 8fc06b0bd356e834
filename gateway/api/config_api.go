package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// CodeProvisionedConfigNotFound is Lambda's answer for a qualifier without
// a provisioned concurrency config.
const CodeProvisionedConfigNotFound = "ProvisionedConcurrencyConfigNotFoundException"

func init() {
	catalogue[CodeProvisionedConfigNotFound] = errorKind{http.StatusNotFound, "User"}
}

const arnLabel = "{ARN}"

// configRoutes are the management operations on concurrency, provisioned
// concurrency, function URL configs, tags and account settings.
var configRoutes = []route{
	{Route{"PutFunctionConcurrency", []string{http.MethodPut}, "/2017-10-31/functions/" + fnLabel + "/concurrency"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.putConcurrency)
		}},
	{Route{"DeleteFunctionConcurrency", []string{http.MethodDelete}, "/2017-10-31/functions/" + fnLabel + "/concurrency"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.deleteConcurrency)
		}},
	{Route{"GetFunctionConcurrency", []string{http.MethodGet}, "/2019-09-30/functions/" + fnLabel + "/concurrency"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.getConcurrency)
		}},
	{Route{"ProvisionedConcurrencyConfig", []string{http.MethodGet, http.MethodPut, http.MethodDelete}, "/2019-09-30/functions/" + fnLabel + "/provisioned-concurrency"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.provisionedConfig)
		}},
	{Route{"CreateFunctionUrlConfig", []string{http.MethodPost}, "/2021-10-31/functions/" + fnLabel + "/url"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.createURLConfig)
		}},
	{Route{"GetFunctionUrlConfig", []string{http.MethodGet}, "/2021-10-31/functions/" + fnLabel + "/url"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.getURLConfig)
		}},
	{Route{"UpdateFunctionUrlConfig", []string{http.MethodPut}, "/2021-10-31/functions/" + fnLabel + "/url"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.updateURLConfig)
		}},
	{Route{"DeleteFunctionUrlConfig", []string{http.MethodDelete}, "/2021-10-31/functions/" + fnLabel + "/url"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.deleteURLConfig)
		}},
	{Route{"ListFunctionUrlConfigs", []string{http.MethodGet}, "/2021-10-31/functions/" + fnLabel + "/urls"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.listURLConfigs)
		}},
	{Route{"TagResource", []string{http.MethodPost}, "/2017-03-31/tags/" + arnLabel},
		func(a *API, w http.ResponseWriter, r *http.Request, arn string) { a.manage(w, r, arn, a.tagResource) }},
	{Route{"UntagResource", []string{http.MethodDelete}, "/2017-03-31/tags/" + arnLabel},
		func(a *API, w http.ResponseWriter, r *http.Request, arn string) { a.manage(w, r, arn, a.untagResource) }},
	{Route{"ListTags", []string{http.MethodGet}, "/2017-03-31/tags/" + arnLabel},
		func(a *API, w http.ResponseWriter, r *http.Request, arn string) { a.manage(w, r, arn, a.listTags) }},
	{Route{"GetAccountSettings", []string{http.MethodGet}, "/2016-08-19/account-settings"},
		func(a *API, w http.ResponseWriter, r *http.Request, _ string) { a.manage(w, r, "", a.accountSettings) }},
}

// decodeBody reads a JSON request body into v.
func decodeBody(body []byte, v any) *apiError {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{Code: CodeInvalidRequestContent, Message: "Could not parse request body into json: " + err.Error()}
	}
	return nil
}

// latestSpec is a function's $LATEST as the API last wrote it (the stored
// entry) or, for a function no API call has written, as the catalog has it.
func (a *API) latestSpec(ctx context.Context, name string) (*specs.Function, *functions.Function, *apiError) {
	if a.opts.Manage != nil {
		if f, err := a.opts.Manage.Functions.Get(ctx, name); err == nil {
			return f.Spec, f, nil
		} else if !errors.Is(err, functions.ErrNotFound) {
			return nil, nil, a.storeError(name, err)
		}
	}
	fn, _, e := a.manageLookup(ctx, &functionRef{Name: name})
	if e != nil {
		return nil, nil, e
	}
	return fn.Latest(), nil, nil
}

// changeSpec applies change to a copy of the stored $LATEST spec and
// stores it once the result validates as a spec.
func (a *API) changeSpec(ctx context.Context, name string, change func(f *functions.Function, spec *specs.Function) *apiError) (*functions.Function, *apiError) {
	return a.updateStored(ctx, name, "", false, func(f *functions.Function) *apiError {
		spec := f.Clone().Spec
		if e := change(f, spec); e != nil {
			return e
		}
		out, e := canonicalize(spec)
		if e != nil {
			return e
		}
		f.Spec = out
		return nil
	})
}

// --- Reserved concurrency ---

// unreservedMin is the concurrency the account keeps for unreserved
// functions (the router's unreserved_min).
func (a *API) unreservedMin() int {
	if l, ok := a.limits.(interface{ UnreservedMin() int }); ok {
		return l.UnreservedMin()
	}
	return 0
}

// reservedByOthers sums every other function's reserved concurrency.
func (a *API) reservedByOthers(ctx context.Context, name string) (int, *apiError) {
	fns, err := a.catalog.Functions(ctx)
	if err != nil {
		return 0, serviceErr("reading the catalog", err)
	}
	total := 0
	for _, fn := range fns {
		if fn.Name == name {
			continue
		}
		if r := fn.ReservedConcurrency(); r != nil {
			total += *r
		}
	}
	return total, nil
}

func noQualifier(c *manageCall, op string) *apiError {
	if c.ref.Qualifier != "" {
		return invalidParam(op + " applies to the function, not to a version or alias: give the unqualified function name")
	}
	return nil
}

// putConcurrency answers PutFunctionConcurrency.
func (a *API) putConcurrency(c *manageCall) (int, any, *apiError) {
	if e := noQualifier(c, "PutFunctionConcurrency"); e != nil {
		return 0, nil, e
	}
	var in struct {
		Reserved *int `json:"ReservedConcurrentExecutions"`
	}
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.Reserved == nil {
		return 0, nil, invalidParam("1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null")
	}
	n := *in.Reserved
	if n < 0 {
		return 0, nil, invalidParam("1 validation error detected: Value '" + strconv.Itoa(n) + "' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0")
	}
	ctx := c.r.Context()
	name := c.ref.Name
	if _, _, e := a.latestSpec(ctx, name); e != nil {
		return 0, nil, e
	}
	others, e := a.reservedByOthers(ctx, name)
	if e != nil {
		return 0, nil, e
	}
	minimum := a.unreservedMin()
	if a.limits.AccountConcurrency()-others-n < minimum {
		return 0, nil, invalidParam("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [" + strconv.Itoa(minimum) + "].")
	}
	if prov, e := a.provisionedTotal(ctx, name, ""); e != nil {
		return 0, nil, e
	} else if prov > n {
		return 0, nil, invalidParam("Specified ReservedConcurrentExecutions (" + strconv.Itoa(n) + ") is less than the function's provisioned concurrency (" + strconv.Itoa(prov) + "): lower or delete its provisioned concurrency configs first")
	}
	_, e = a.changeSpec(ctx, name, func(_ *functions.Function, spec *specs.Function) *apiError {
		spec.ReservedConcurrency = &n
		return nil
	})
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, map[string]int{"ReservedConcurrentExecutions": n}, nil
}

// getConcurrency answers GetFunctionConcurrency.
func (a *API) getConcurrency(c *manageCall) (int, any, *apiError) {
	if e := noQualifier(c, "GetFunctionConcurrency"); e != nil {
		return 0, nil, e
	}
	spec, _, e := a.latestSpec(c.r.Context(), c.ref.Name)
	if e != nil {
		return 0, nil, e
	}
	out := map[string]int{}
	if spec.ReservedConcurrency != nil {
		out["ReservedConcurrentExecutions"] = *spec.ReservedConcurrency
	}
	return http.StatusOK, out, nil
}

// deleteConcurrency answers DeleteFunctionConcurrency.
func (a *API) deleteConcurrency(c *manageCall) (int, any, *apiError) {
	if e := noQualifier(c, "DeleteFunctionConcurrency"); e != nil {
		return 0, nil, e
	}
	_, e := a.changeSpec(c.r.Context(), c.ref.Name, func(_ *functions.Function, spec *specs.Function) *apiError {
		spec.ReservedConcurrency = nil
		return nil
	})
	if e != nil {
		return 0, nil, e
	}
	return http.StatusNoContent, nil, nil
}

// --- Provisioned concurrency ---

// provisionedConfig is Lambda's GetProvisionedConcurrencyConfig output
// (with FunctionArn in lists).
type provisionedConfig struct {
	FunctionArn string `json:"FunctionArn,omitempty"`
	Requested   int    `json:"RequestedProvisionedConcurrentExecutions"`
	Available   int    `json:"AvailableProvisionedConcurrentExecutions"`
	Allocated   int    `json:"AllocatedProvisionedConcurrentExecutions"`
	Status      string `json:"Status"`
	Reason      string `json:"StatusReason,omitempty"`
	Modified    string `json:"LastModified"`
}

// provisionedVersion is the version a provisioned config's qualifier
// provisions: the version itself, or the alias's (primary) version.
func provisionedVersion(fn *catalog.Function, qualifier string) string {
	if a, ok := fn.Aliases[qualifier]; ok {
		return a.Version
	}
	return qualifier
}

// provisionedTotal sums fn's provisioned configs but the one of skip.
func (a *API) provisionedTotal(ctx context.Context, name, skip string) (int, *apiError) {
	if a.opts.Manage == nil {
		return 0, nil
	}
	pcs, err := a.opts.Manage.Versions.ProvisionedConfigs(ctx, name)
	if err != nil {
		return 0, serviceErr("reading provisioned concurrency configs", err)
	}
	total := 0
	for _, pc := range pcs {
		if pc.Qualifier != skip {
			total += pc.Requested
		}
	}
	return total, nil
}

// status reports a config's state from what runs.
func (a *API) status(ctx context.Context, fn *catalog.Function, pc *versions.ProvisionedConfig) *provisionedConfig {
	out := &provisionedConfig{Requested: pc.Requested, Status: "IN_PROGRESS", Modified: lambdaTime(pc.LastModified)}
	version := provisionedVersion(fn, pc.Qualifier)
	if _, ok := fn.Versions[version]; !ok || version == catalog.Latest {
		out.Status, out.Reason = "FAILED", "The qualifier names no published version: "+pc.Qualifier
		return out
	}
	ready, err := a.opts.Manage.Provisioned(ctx, fn.Name, version)
	ready = min(ready, pc.Requested)
	out.Available, out.Allocated = ready, ready
	switch {
	case ready >= pc.Requested:
		out.Status = "READY"
	case err != nil:
		out.Status, out.Reason = "FAILED", err.Error()
	}
	return out
}

// provisionedConfig answers Put-, Get- and DeleteProvisionedConcurrencyConfig
// (?Qualifier=…) and ListProvisionedConcurrencyConfigs (GET ?List=ALL).
func (a *API) provisionedConfig(c *manageCall) (int, any, *apiError) {
	ctx := c.r.Context()
	name, q := c.ref.Name, c.ref.Qualifier
	if c.r.Method == http.MethodGet && c.r.URL.Query().Get("List") != "" {
		return a.listProvisioned(c)
	}
	if a.opts.Manage == nil || a.opts.Manage.Provisioned == nil {
		return 0, nil, invalidParam("Provisioned concurrency configs are not supported by this gateway: it cannot observe provisioned instances (declare provisioned_concurrency in the function's spec)")
	}
	if q == "" {
		return 0, nil, invalidParam("1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: Member must not be null")
	}
	if q == catalog.Latest {
		return 0, nil, invalidParam("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	}
	fn, _, e := a.manageLookup(ctx, &functionRef{Name: name, Qualifier: q})
	if e != nil {
		return 0, nil, e
	}
	vs := a.opts.Manage.Versions
	switch c.r.Method {
	case http.MethodGet:
		pc, err := vs.Provisioned(ctx, name, q)
		if errors.Is(err, versions.ErrNotFound) {
			return 0, nil, &apiError{Code: CodeProvisionedConfigNotFound, Message: "No Provisioned Concurrency Config found for this function"}
		}
		if err != nil {
			return 0, nil, serviceErr("reading the provisioned concurrency config", err)
		}
		return http.StatusOK, a.status(ctx, fn, pc), nil
	case http.MethodDelete:
		err := vs.DeleteProvisioned(ctx, name, q)
		if errors.Is(err, versions.ErrNotFound) {
			return 0, nil, &apiError{Code: CodeProvisionedConfigNotFound, Message: "No Provisioned Concurrency Config found for this function"}
		}
		if err != nil {
			return 0, nil, serviceErr("deleting the provisioned concurrency config", err)
		}
		a.written(ctx)
		return http.StatusNoContent, nil, nil
	}
	var in struct {
		N *int `json:"ProvisionedConcurrentExecutions"`
	}
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.N == nil || *in.N < 1 {
		v := "null"
		if in.N != nil {
			v = "'" + strconv.Itoa(*in.N) + "'"
		}
		return 0, nil, invalidParam("1 validation error detected: Value " + v + " at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1")
	}
	n := *in.N
	version := provisionedVersion(fn, q)
	if version == catalog.Latest {
		return 0, nil, invalidParam("Provisioned Concurrency Configs cannot be applied to unpublished function versions. Alias " + q + " points at $LATEST.")
	}
	if al, ok := fn.Aliases[q]; ok && len(al.Routing) > 0 {
		return 0, nil, invalidParam("Alias " + q + " routes to more than one version; Nimbus provisions the version of an alias without AdditionalVersionWeights only: configure the versions instead")
	}
	pcs, err := vs.ProvisionedConfigs(ctx, name)
	if err != nil {
		return 0, nil, serviceErr("reading provisioned concurrency configs", err)
	}
	others := 0
	for _, pc := range pcs {
		if pc.Qualifier == q {
			continue
		}
		others += pc.Requested
		if provisionedVersion(fn, pc.Qualifier) == version {
			return 0, nil, &apiError{Code: CodeResourceConflict, Message: "Version " + version + " already has provisioned concurrency through " + pc.Qualifier + "; a version and an alias of it cannot both have provisioned concurrency"}
		}
	}
	if r := fn.ReservedConcurrency(); r != nil {
		if others+n > *r {
			return 0, nil, invalidParam("Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function (" + strconv.Itoa(*r) + ").")
		}
	} else {
		reserved, e := a.reservedByOthers(ctx, name)
		if e != nil {
			return 0, nil, e
		}
		if free := a.limits.AccountConcurrency() - a.unreservedMin() - reserved; others+n > free {
			return 0, nil, invalidParam("Requested Provisioned Concurrency exceeds the account's UnreservedConcurrentExecution above its minimum value of [" + strconv.Itoa(a.unreservedMin()) + "]: at most " + strconv.Itoa(max(free-others, 0)) + " more can be provisioned.")
		}
	}
	pc, err := vs.PutProvisioned(ctx, name, q, n)
	if err != nil {
		if errors.Is(err, versions.ErrInvalid) {
			return 0, nil, invalidParam(err.Error())
		}
		return 0, nil, serviceErr("storing the provisioned concurrency config", err)
	}
	a.written(ctx)
	out := a.status(ctx, fn, pc)
	if out.Status == "READY" || out.Status == "FAILED" {
		// What runs now is what an earlier config asked for.
		out.Status, out.Reason = "IN_PROGRESS", ""
	}
	return http.StatusAccepted, out, nil
}

// listProvisioned answers ListProvisionedConcurrencyConfigs.
func (a *API) listProvisioned(c *manageCall) (int, any, *apiError) {
	ctx := c.r.Context()
	q := c.r.URL.Query()
	if l := q.Get("List"); l != "ALL" {
		return 0, nil, invalidParam("1 validation error detected: Value '" + l + "' at 'list' failed to satisfy constraint: Member must satisfy enum value set: [ALL]")
	}
	maxItems := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 50 {
			return 0, nil, invalidParam("1 validation error detected: Value '" + s + "' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 50")
		}
		maxItems = n
	}
	fn, _, e := a.manageLookup(ctx, &functionRef{Name: c.ref.Name})
	if e != nil {
		return 0, nil, e
	}
	list := []*provisionedConfig{}
	out := map[string]any{"ProvisionedConcurrencyConfigs": list}
	if a.opts.Manage == nil || a.opts.Manage.Provisioned == nil {
		return http.StatusOK, out, nil
	}
	pcs, err := a.opts.Manage.Versions.ProvisionedConfigs(ctx, fn.Name)
	if err != nil {
		return 0, nil, serviceErr("reading provisioned concurrency configs", err)
	}
	page, next := listPage(pcs, func(pc *versions.ProvisionedConfig) string { return pc.Qualifier }, q.Get("Marker"), maxItems)
	for _, pc := range page {
		st := a.status(ctx, fn, pc)
		st.FunctionArn = a.functionARN(fn.Name, pc.Qualifier)
		list = append(list, st)
	}
	out["ProvisionedConcurrencyConfigs"] = list
	if next != "" {
		out["NextMarker"] = next
	}
	return http.StatusOK, out, nil
}

// --- Function URL configs ---

// functionURLConfig is Lambda's FunctionUrlConfig.
type functionURLConfig struct {
	FunctionURL      string `json:"FunctionUrl"`
	FunctionArn      string `json:"FunctionArn"`
	AuthType         string `json:"AuthType"`
	InvokeMode       string `json:"InvokeMode"`
	Cors             *cors  `json:"Cors,omitempty"`
	CreationTime     string `json:"CreationTime"`
	LastModifiedTime string `json:"LastModifiedTime,omitempty"`
}

type cors struct {
	AllowCredentials bool     `json:"AllowCredentials"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           int      `json:"MaxAge"`
}

// startTime stands in for the times of a URL config declared in a spec
// (no API call wrote it): the gateway's start.
var startTime = time.Now()

func urlQualifier(q string) string {
	if q == "" {
		return catalog.Latest
	}
	return q
}

func (a *API) urlConfig(host, name string, u *specs.URLConfig, f *functions.Function) *functionURLConfig {
	created, modified := startTime, startTime
	if f != nil && !f.URLCreated.IsZero() {
		created, modified = f.URLCreated, f.URLModified
	}
	c := &functionURLConfig{
		FunctionURL:      a.URLFor(name, host),
		FunctionArn:      a.functionARN(name, unqualifiedLatest(u.Qualifier)),
		AuthType:         u.Auth,
		InvokeMode:       u.InvokeMode,
		CreationTime:     urlTime(created),
		LastModifiedTime: urlTime(modified),
	}
	if u.CORS != nil {
		c.Cors = &cors{AllowCredentials: u.CORS.AllowCredentials, AllowHeaders: u.CORS.AllowHeaders,
			AllowMethods: u.CORS.AllowMethods, AllowOrigins: u.CORS.AllowOrigins,
			ExposeHeaders: u.CORS.ExposeHeaders, MaxAge: u.CORS.MaxAge}
	}
	return c
}

// urlTime is the ISO-8601 form function URL configs use.
func urlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func urlNotFound() *apiError {
	return &apiError{Code: CodeResourceNotFound, Message: "The resource you requested does not exist."}
}

type urlInput struct {
	AuthType   *string `json:"AuthType"`
	InvokeMode *string `json:"InvokeMode"`
	Cors       *cors   `json:"Cors"`
}

// apply validates the input's enums and copies it onto u.
func (in *urlInput) apply(u *specs.URLConfig) *apiError {
	if in.AuthType != nil {
		if *in.AuthType != specs.AuthNone && *in.AuthType != specs.AuthIAM {
			return invalidParam("1 validation error detected: Value '" + *in.AuthType + "' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_IAM, NONE]")
		}
		u.Auth = *in.AuthType
	}
	if in.InvokeMode != nil {
		if *in.InvokeMode != specs.InvokeModeBuffered && *in.InvokeMode != specs.InvokeModeResponseStream {
			return invalidParam("1 validation error detected: Value '" + *in.InvokeMode + "' at 'invokeMode' failed to satisfy constraint: Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]")
		}
		u.InvokeMode = *in.InvokeMode
	}
	if in.Cors != nil {
		c := in.Cors
		u.CORS = &specs.CORS{AllowCredentials: c.AllowCredentials, AllowHeaders: c.AllowHeaders, AllowMethods: c.AllowMethods,
			AllowOrigins: c.AllowOrigins, ExposeHeaders: c.ExposeHeaders, MaxAge: c.MaxAge}
	}
	return nil
}

// checkURLQualifier accepts what a function URL may invoke: $LATEST (no
// qualifier) or an alias the function's spec declares (the spec model's
// url.qualifier); version numbers never have URLs, as in Lambda.
func (a *API) checkURLQualifier(ctx context.Context, name, q string, spec *specs.Function) *apiError {
	if q == "" || q == catalog.Latest {
		return nil
	}
	if _, err := strconv.Atoi(q); err == nil {
		return invalidParam("Function URLs cannot be created for function versions; use an alias (Qualifier " + q + ")")
	}
	if _, _, e := a.manageLookup(ctx, &functionRef{Name: name, Qualifier: q}); e != nil {
		return e
	}
	for _, al := range spec.Aliases {
		if al.Name == q {
			return nil
		}
	}
	return invalidParam("Alias " + q + " was created through the API: Nimbus serves function URLs for $LATEST or an alias declared in the function's spec only")
}

// createURLConfig answers CreateFunctionUrlConfig.
func (a *API) createURLConfig(c *manageCall) (int, any, *apiError) {
	var in urlInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.AuthType == nil {
		return 0, nil, invalidParam("1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null")
	}
	ctx := c.r.Context()
	q := c.ref.Qualifier
	spec, _, e := a.latestSpec(ctx, c.ref.Name)
	if e != nil {
		return 0, nil, e
	}
	if e := a.checkURLQualifier(ctx, c.ref.Name, q, spec); e != nil {
		return 0, nil, e
	}
	f, e := a.changeSpec(ctx, c.ref.Name, func(f *functions.Function, spec *specs.Function) *apiError {
		if spec.URL != nil {
			msg := "Failed to create function url config for [functionArn = " + a.functionARN(spec.Name, unqualifiedLatest(urlQualifier(q))) + "]. Error message:  FunctionUrlConfig exists for this Lambda function"
			if spec.URL.Qualifier != urlQualifier(q) {
				msg += " (Nimbus keeps one function URL per function; it invokes " + spec.URL.Qualifier + ")"
			}
			return &apiError{Code: CodeResourceConflict, Message: msg}
		}
		u := &specs.URLConfig{Qualifier: urlQualifier(q)}
		if e := in.apply(u); e != nil {
			return e
		}
		spec.URL = u
		now := time.Now().UTC().Truncate(time.Millisecond)
		f.URLCreated, f.URLModified = now, now
		return nil
	})
	if e != nil {
		return 0, nil, e
	}
	out := a.urlConfig(c.r.Host, f.Name, f.Spec.URL, f)
	out.LastModifiedTime = ""
	return http.StatusCreated, out, nil
}

// currentURL is the function's URL config when it is the one q names.
func (a *API) currentURL(ctx context.Context, name, q string) (*specs.URLConfig, *functions.Function, *apiError) {
	spec, f, e := a.latestSpec(ctx, name)
	if e != nil {
		return nil, nil, e
	}
	if spec.URL == nil || spec.URL.Qualifier != urlQualifier(q) {
		return nil, nil, urlNotFound()
	}
	return spec.URL, f, nil
}

// getURLConfig answers GetFunctionUrlConfig.
func (a *API) getURLConfig(c *manageCall) (int, any, *apiError) {
	u, f, e := a.currentURL(c.r.Context(), c.ref.Name, c.ref.Qualifier)
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, a.urlConfig(c.r.Host, c.ref.Name, u, f), nil
}

// listURLConfigs answers ListFunctionUrlConfigs.
func (a *API) listURLConfigs(c *manageCall) (int, any, *apiError) {
	spec, f, e := a.latestSpec(c.r.Context(), c.ref.Name)
	if e != nil {
		return 0, nil, e
	}
	configs := []*functionURLConfig{}
	if spec.URL != nil {
		configs = append(configs, a.urlConfig(c.r.Host, c.ref.Name, spec.URL, f))
	}
	return http.StatusOK, map[string]any{"FunctionUrlConfigs": configs}, nil
}

// updateURLConfig answers UpdateFunctionUrlConfig.
func (a *API) updateURLConfig(c *manageCall) (int, any, *apiError) {
	var in urlInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	ctx := c.r.Context()
	q := urlQualifier(c.ref.Qualifier)
	if _, _, e := a.currentURL(ctx, c.ref.Name, c.ref.Qualifier); e != nil {
		return 0, nil, e
	}
	f, e := a.changeSpec(ctx, c.ref.Name, func(f *functions.Function, spec *specs.Function) *apiError {
		if spec.URL == nil || spec.URL.Qualifier != q {
			return urlNotFound()
		}
		if e := in.apply(spec.URL); e != nil {
			return e
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		if f.URLCreated.IsZero() {
			f.URLCreated = now
		}
		f.URLModified = now
		return nil
	})
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, a.urlConfig(c.r.Host, f.Name, f.Spec.URL, f), nil
}

// deleteURLConfig answers DeleteFunctionUrlConfig.
func (a *API) deleteURLConfig(c *manageCall) (int, any, *apiError) {
	ctx := c.r.Context()
	q := urlQualifier(c.ref.Qualifier)
	if _, _, e := a.currentURL(ctx, c.ref.Name, c.ref.Qualifier); e != nil {
		return 0, nil, e
	}
	_, e := a.changeSpec(ctx, c.ref.Name, func(f *functions.Function, spec *specs.Function) *apiError {
		if spec.URL == nil || spec.URL.Qualifier != q {
			return urlNotFound()
		}
		spec.URL = nil
		f.URLCreated, f.URLModified = time.Time{}, time.Time{}
		return nil
	})
	if e != nil {
		return 0, nil, e
	}
	return http.StatusNoContent, nil, nil
}

// --- Tags ---

// tagTarget checks the resource is an unqualified function ARN.
func tagTarget(c *manageCall) *apiError {
	raw := c.r.URL.EscapedPath()
	label, _ := url.PathUnescape(raw[strings.LastIndexByte(raw, '/')+1:])
	if !strings.HasPrefix(label, "arn:") || !strings.Contains(label, ":function:") {
		return invalidParam("Resource " + label + " is not a function ARN (arn:aws:lambda:<region>:<account>:function:<name>)")
	}
	if c.ref.Qualifier != "" {
		return invalidParam("Tags apply to functions, not to versions or aliases: give the unqualified function ARN")
	}
	return nil
}

// maxTags is Lambda's limit of tags per function.
const maxTags = 50

func checkTags(tags map[string]string) *apiError {
	if len(tags) > maxTags {
		return invalidParam("A function can have at most " + strconv.Itoa(maxTags) + " tags")
	}
	for k, v := range tags {
		switch {
		case len(k) < 1 || len(k) > 128:
			return invalidParam("Tag key '" + k + "' must be 1 to 128 characters long")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return invalidParam("Tag key '" + k + "' uses the reserved prefix aws:")
		case len(v) > 256:
			return invalidParam("The value of tag '" + k + "' must be at most 256 characters long")
		}
	}
	return nil
}

// tagResource answers TagResource.
func (a *API) tagResource(c *manageCall) (int, any, *apiError) {
	if e := tagTarget(c); e != nil {
		return 0, nil, e
	}
	var in struct {
		Tags map[string]string `json:"Tags"`
	}
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if len(in.Tags) == 0 {
		return 0, nil, invalidParam("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	_, e := a.changeSpec(c.r.Context(), c.ref.Name, func(_ *functions.Function, spec *specs.Function) *apiError {
		if spec.Tags == nil {
			spec.Tags = map[string]string{}
		}
		for k, v := range in.Tags {
			spec.Tags[k] = v
		}
		return checkTags(spec.Tags)
	})
	if e != nil {
		return 0, nil, e
	}
	return http.StatusNoContent, nil, nil
}

// untagResource answers UntagResource.
func (a *API) untagResource(c *manageCall) (int, any, *apiError) {
	if e := tagTarget(c); e != nil {
		return 0, nil, e
	}
	keys := c.r.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		return 0, nil, invalidParam("1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	_, e := a.changeSpec(c.r.Context(), c.ref.Name, func(_ *functions.Function, spec *specs.Function) *apiError {
		for _, k := range keys {
			delete(spec.Tags, k)
		}
		if len(spec.Tags) == 0 {
			spec.Tags = nil
		}
		return nil
	})
	if e != nil {
		return 0, nil, e
	}
	return http.StatusNoContent, nil, nil
}

// listTags answers ListTags.
func (a *API) listTags(c *manageCall) (int, any, *apiError) {
	if e := tagTarget(c); e != nil {
		return 0, nil, e
	}
	spec, _, e := a.latestSpec(c.r.Context(), c.ref.Name)
	if e != nil {
		return 0, nil, e
	}
	tags := spec.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return http.StatusOK, map[string]any{"Tags": tags}, nil
}

// --- Account settings ---

// accountSettings answers GetAccountSettings: the limits and what the
// account uses (functions, and the code sizes the stores know: stored
// $LATEST bundles and the published versions that share their code).
func (a *API) accountSettings(c *manageCall) (int, any, *apiError) {
	ctx := c.r.Context()
	fns, err := a.catalog.Functions(ctx)
	if err != nil {
		return 0, nil, serviceErr("reading the catalog", err)
	}
	var total int64
	if m := a.opts.Manage; m != nil {
		stored, err := m.Functions.List(ctx)
		if err != nil {
			return 0, nil, a.storeError("", err)
		}
		sizes := map[string]int64{}
		for _, f := range stored {
			if f.CodeSize > 0 {
				total += f.CodeSize
				sizes[f.CodeSHA256] = f.CodeSize
			}
		}
		names := make([]string, 0, len(fns))
		for _, fn := range fns {
			names = append(names, fn.Name)
		}
		sort.Strings(names)
		for _, name := range names {
			vs, err := m.Versions.Versions(ctx, name)
			if err != nil {
				return 0, nil, serviceErr("reading versions", err)
			}
			for _, v := range vs {
				total += sizes[v.CodeSHA256]
			}
		}
	}
	return http.StatusOK, map[string]any{
		"AccountLimit": map[string]any{
			"ConcurrentExecutions":           a.limits.AccountConcurrency(),
			"UnreservedConcurrentExecutions": a.limits.UnreservedLimit(),
			"CodeSizeUnzipped":               MaxUnzippedBytes,
			"CodeSizeZipped":                 MaxZippedBytes,
			"TotalCodeSize":                  80530636800,
		},
		"AccountUsage": map[string]any{
			"FunctionCount": len(fns),
			"TotalCodeSize": total,
		},
	}, nil
}
