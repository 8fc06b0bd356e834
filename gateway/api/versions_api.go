package api

import (
	zipfile "archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// versionRoutes are the management operations on versions, aliases and
// layers.
var versionRoutes = []route{
	{Route{"PublishVersion", []string{http.MethodPost}, "/2015-03-31/functions/" + fnLabel + "/versions"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.publishVersion)
		}},
	{Route{"ListVersionsByFunction", []string{http.MethodGet}, "/2015-03-31/functions/" + fnLabel + "/versions"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.listVersions)
		}},
	{Route{"CreateAlias", []string{http.MethodPost}, "/2015-03-31/functions/" + fnLabel + "/aliases"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.manage(w, r, name, a.createAlias) }},
	{Route{"ListAliases", []string{http.MethodGet}, "/2015-03-31/functions/" + fnLabel + "/aliases"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.manage(w, r, name, a.listAliases) }},
	{Route{"GetAlias", []string{http.MethodGet}, "/2015-03-31/functions/" + fnLabel + "/aliases/{Name}"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.manage(w, r, name, a.getAlias) }},
	{Route{"UpdateAlias", []string{http.MethodPut}, "/2015-03-31/functions/" + fnLabel + "/aliases/{Name}"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.manage(w, r, name, a.updateAlias) }},
	{Route{"DeleteAlias", []string{http.MethodDelete}, "/2015-03-31/functions/" + fnLabel + "/aliases/{Name}"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.manage(w, r, name, a.deleteAlias) }},
	{Route{"PublishLayerVersion", []string{http.MethodPost}, "/2018-10-31/layers/{LayerName}/versions"},
		func(a *API, w http.ResponseWriter, r *http.Request, _ string) {
			a.manage(w, r, "", a.publishLayerVersion)
		}},
	{Route{"ListLayerVersions", []string{http.MethodGet}, "/2018-10-31/layers/{LayerName}/versions"},
		func(a *API, w http.ResponseWriter, r *http.Request, _ string) {
			a.manage(w, r, "", a.listLayerVersions)
		}},
	{Route{"GetLayerVersion", []string{http.MethodGet}, "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}"},
		func(a *API, w http.ResponseWriter, r *http.Request, _ string) { a.manage(w, r, "", a.getLayerVersion) }},
	{Route{"DeleteLayerVersion", []string{http.MethodDelete}, "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}"},
		func(a *API, w http.ResponseWriter, r *http.Request, _ string) {
			a.manage(w, r, "", a.deleteLayerVersion)
		}},
	// GetLayerVersionByArn shares the path: ?find=LayerVersion&Arn=….
	{Route{"ListLayers", []string{http.MethodGet}, "/2018-10-31/layers"},
		func(a *API, w http.ResponseWriter, r *http.Request, _ string) { a.manage(w, r, "", a.listLayers) }},
}

// Page sizes of the list operations (Lambda's MaxItems bounds).
const (
	defaultPage   = 50
	maxPage       = 10000
	maxLayerPage  = 50
	versionKeyLen = 10
)

// pageSize reads MaxItems within [1, limit] (default 50).
func pageSize(r *http.Request, limit int) (int, *apiError) {
	s := r.URL.Query().Get("MaxItems")
	if s == "" {
		return min(defaultPage, limit), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > limit {
		return 0, invalidParam("1 validation error detected: Value '" + s + "' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and " + strconv.Itoa(limit))
	}
	return n, nil
}

// pathValue is a "{…}" path segment, unescaped.
func pathValue(r *http.Request, name string) (string, *apiError) {
	v, err := url.PathUnescape(r.PathValue(name))
	if err != nil {
		return "", invalidParam(name + " is not a valid percent-encoded path segment")
	}
	return v, nil
}

// unqualified refuses a qualifier on operations that name a function only.
func unqualified(c *manageCall, op string) *apiError {
	if c.ref.Qualifier != "" {
		return invalidParam(op + " takes an unqualified function name")
	}
	return nil
}

// ---- versions ---------------------------------------------------------------

// publishVersion answers PublishVersion.
func (a *API) publishVersion(c *manageCall) (int, any, *apiError) {
	if e := unqualified(c, "PublishVersion"); e != nil {
		return 0, nil, e
	}
	var in struct {
		CodeSha256  string `json:"CodeSha256"`
		Description string `json:"Description"`
		RevisionID  string `json:"RevisionId"`
	}
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if len(in.Description) > 256 {
		return 0, nil, invalidParam("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 256")
	}
	ctx := c.r.Context()
	f, _, e := a.latest(ctx, c.ref.Name)
	if e != nil {
		return 0, nil, e
	}
	if f.State == functions.StatePending || f.LastUpdateStatus == functions.UpdateInProgress {
		return 0, nil, &apiError{Code: CodeResourceConflict, Message: "The operation cannot be performed at this time. An update is in progress for resource: " + a.functionARN(f.Name, "")}
	}
	if in.RevisionID != "" && in.RevisionID != f.RevisionID {
		return 0, nil, a.storeError(f.Name, functions.ErrPrecondition)
	}
	if f.CodeSHA256 == "" {
		// A spec function's code directory is packaged now: CodeSha256 is
		// checked against the digest of what is about to be published.
		if e := a.packageLatest(ctx, f); e != nil {
			return 0, nil, e
		}
	}
	v, e := a.publishStored(ctx, f, in.Description, in.CodeSha256)
	if e != nil {
		return 0, nil, e
	}
	a.written(ctx)
	return http.StatusCreated, a.versionConfiguration(ctx, f, v), nil
}

// latest is the function's $LATEST as PublishVersion snapshots it: the
// store's entry, or for a function declared elsewhere (a spec file, a
// job) the catalog's spec with the revision GetFunction reports for it.
// The function is not adopted into the store: publishing does not change
// $LATEST. stored reports whether the entry is the store's.
func (a *API) latest(ctx context.Context, name string) (f *functions.Function, stored bool, e *apiError) {
	if a.opts.Manage != nil {
		if f, e = a.stored(ctx, name, false); e != nil || f != nil {
			return f, f != nil, e
		}
	}
	fn, err := a.catalog.Function(ctx, name)
	if errors.Is(err, catalog.ErrFunctionNotFound) || (err == nil && fn.Latest() == nil) {
		return nil, false, a.functionNotFound(name, "")
	}
	if err != nil {
		return nil, false, serviceErr("reading the catalog", err)
	}
	spec := fn.Latest()
	f = &functions.Function{Name: name, Spec: spec, RevisionID: a.describe(ctx, name, catalog.Latest, spec, nil).RevisionID,
		State: functions.StateActive, LastUpdateStatus: functions.UpdateSuccessful}
	if spec.Code != nil {
		f.CodeSHA256 = strings.TrimPrefix(spec.Code.Checksum, "sha256:")
	}
	return f, false, nil
}

// packageLatest zips the code directory of a spec-declared $LATEST (dev
// mode) into the code store, so that the version holds a bundle of its
// own: later edits of the directory change $LATEST, not the version.
// Builds are the CLI's: a spec that needs one is refused.
func (a *API) packageLatest(ctx context.Context, f *functions.Function) *apiError {
	spec := f.Spec
	if spec.Code == nil || spec.Code.Dir == "" {
		return invalidParam("$LATEST of " + f.Name + " has no code bundle or directory to publish: upload its code with UpdateFunctionCode")
	}
	dir := spec.Code.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(spec.Dir, dir)
	}
	if spec.Build != nil || needsNpm(spec.Runtime, dir) {
		return invalidParam("function " + f.Name + " is built before it is packaged (a build block or npm ci); publish it with `nimbus publish " + f.Name + "`, which builds it")
	}
	var buf bytes.Buffer
	if _, err := bundle.Zip(dir, &buf); err != nil {
		return invalidParam("packaging the code directory of " + f.Name + ": " + err.Error())
	}
	code, sum, e := a.storeCode(ctx, buf.Bytes())
	if e != nil {
		return e
	}
	cp := f.Clone()
	cp.Spec.Code = code
	cp.Spec.Build = nil
	*f = *cp
	f.CodeSHA256, f.CodeSize = sum, int64(buf.Len())
	return nil
}

// needsNpm reports whether the CLI would run npm ci on the directory (the
// default build of Node functions with a lock file).
func needsNpm(runtime, dir string) bool {
	if !strings.HasPrefix(runtime, "nodejs") {
		return false
	}
	for _, n := range []string{"package-lock.json", "npm-shrinkwrap.json"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// versionKey orders ListVersionsByFunction: $LATEST, then numbers.
func versionKey(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil {
		n = 0
	}
	return fmt.Sprintf("%0*d", versionKeyLen, n)
}

// listVersions answers ListVersionsByFunction: $LATEST first, then the
// published versions, ascending.
func (a *API) listVersions(c *manageCall) (int, any, *apiError) {
	if e := unqualified(c, "ListVersionsByFunction"); e != nil {
		return 0, nil, e
	}
	size, e := pageSize(c.r, maxPage)
	if e != nil {
		return 0, nil, e
	}
	ctx := c.r.Context()
	f, isStored, e := a.latest(ctx, c.ref.Name)
	if e != nil {
		return 0, nil, e
	}
	var stored *functions.Function
	if isStored {
		stored = f
	}
	list := []*functionConfiguration{a.describe(ctx, f.Name, catalog.Latest, f.Spec, stored)}
	if a.opts.Manage != nil {
		vs, err := a.opts.Manage.Versions.Versions(ctx, f.Name)
		if err != nil {
			return 0, nil, serviceErr("reading versions", err)
		}
		for _, v := range vs {
			list = append(list, a.publishedConfiguration(ctx, v))
		}
	}
	page, next := listPage(list, func(c *functionConfiguration) string { return versionKey(c.Version) }, c.r.URL.Query().Get("Marker"), size)
	out := map[string]any{"Versions": page}
	if next != "" {
		out["NextMarker"] = next
	}
	return http.StatusOK, out, nil
}

func (a *API) publishedConfiguration(ctx context.Context, v *versions.Version) *functionConfiguration {
	c := a.configuration(v.Function, v.Name(), v.Spec)
	c.Layers = a.layerConfigs(ctx, v.Spec)
	return a.versionConfigurationFrom(c, v)
}

// ---- aliases ----------------------------------------------------------------

type routingConfig struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights"`
}

type aliasConfiguration struct {
	AliasArn        string         `json:"AliasArn"`
	Name            string         `json:"Name"`
	FunctionVersion string         `json:"FunctionVersion"`
	Description     string         `json:"Description"`
	RoutingConfig   *routingConfig `json:"RoutingConfig,omitempty"`
	RevisionID      string         `json:"RevisionId"`
}

func (a *API) aliasConfiguration(fn string, e *versions.AliasEntry) *aliasConfiguration {
	out := &aliasConfiguration{AliasArn: a.functionARN(fn, e.Name), Name: e.Name, FunctionVersion: e.Version,
		Description: e.Description, RevisionID: e.RevisionID}
	if len(e.Routing) > 0 {
		out.RoutingConfig = &routingConfig{AdditionalVersionWeights: e.Routing}
	}
	return out
}

type aliasInput struct {
	Name            string         `json:"Name"`
	FunctionVersion *string        `json:"FunctionVersion"`
	Description     *string        `json:"Description"`
	RoutingConfig   *routingConfig `json:"RoutingConfig"`
	RevisionID      string         `json:"RevisionId"`
}

// aliasFunction checks the function an alias operation names exists.
func (a *API) aliasFunction(c *manageCall, op string) *apiError {
	if e := unqualified(c, op); e != nil {
		return e
	}
	if a.opts.Manage == nil {
		return &apiError{Code: CodeService, Message: "this gateway does not manage functions (no version store configured)"}
	}
	_, _, e := a.manageLookup(c.r.Context(), &functionRef{Name: c.ref.Name})
	return e
}

// aliasError maps a versions store error of an alias write onto Lambda's.
// Not found is a version the alias names (Lambda: that qualified function
// is not found), else the alias itself.
func (a *API) aliasError(ctx context.Context, fn string, al *specs.Alias, err error) *apiError {
	switch {
	case errors.Is(err, versions.ErrExists):
		return &apiError{Code: CodeResourceConflict, Message: "Alias already exists: " + a.functionARN(fn, al.Name)}
	case errors.Is(err, versions.ErrPrecondition):
		return a.storeError(fn, functions.ErrPrecondition)
	case errors.Is(err, versions.ErrInvalid):
		return invalidParam(err.Error())
	case errors.Is(err, versions.ErrNotFound):
		for _, v := range append([]string{al.Version}, slices.Sorted(maps.Keys(al.Routing))...) {
			n, _ := strconv.Atoi(v)
			if _, verr := a.opts.Manage.Versions.Version(ctx, fn, n); errors.Is(verr, versions.ErrNotFound) {
				return a.functionNotFound(fn, v)
			}
		}
		return a.aliasNotFound(fn, al.Name)
	}
	return serviceErr("writing the alias", err)
}

// createAlias answers CreateAlias.
func (a *API) createAlias(c *manageCall) (int, any, *apiError) {
	if e := a.aliasFunction(c, "CreateAlias"); e != nil {
		return 0, nil, e
	}
	var in aliasInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.FunctionVersion == nil || *in.FunctionVersion == "" {
		return 0, nil, invalidParam("FunctionVersion is required")
	}
	if in.RevisionID != "" {
		return 0, nil, invalidParam("CreateAlias takes no RevisionId")
	}
	al := &specs.Alias{Name: in.Name, Version: *in.FunctionVersion}
	if in.Description != nil {
		al.Description = *in.Description
	}
	if in.RoutingConfig != nil && len(in.RoutingConfig.AdditionalVersionWeights) > 0 {
		al.Routing = in.RoutingConfig.AdditionalVersionWeights
	}
	ent, err := a.opts.Manage.Versions.WriteAlias(c.r.Context(), c.ref.Name, al, versions.AliasCondition{Create: true})
	if err != nil {
		return 0, nil, a.aliasError(c.r.Context(), c.ref.Name, al, err)
	}
	a.written(c.r.Context())
	return http.StatusCreated, a.aliasConfiguration(c.ref.Name, ent), nil
}

func (a *API) aliasNotFound(fn, alias string) *apiError {
	return &apiError{Code: CodeResourceNotFound, Message: "Alias not found: " + a.functionARN(fn, alias)}
}

// getAlias answers GetAlias.
func (a *API) getAlias(c *manageCall) (int, any, *apiError) {
	if e := a.aliasFunction(c, "GetAlias"); e != nil {
		return 0, nil, e
	}
	name, e := pathValue(c.r, "Name")
	if e != nil {
		return 0, nil, e
	}
	ent, err := a.opts.Manage.Versions.AliasEntry(c.r.Context(), c.ref.Name, name)
	if errors.Is(err, versions.ErrNotFound) {
		return 0, nil, a.aliasNotFound(c.ref.Name, name)
	}
	if err != nil {
		return 0, nil, serviceErr("reading the alias", err)
	}
	return http.StatusOK, a.aliasConfiguration(c.ref.Name, ent), nil
}

// updateAlias answers UpdateAlias: the fields given replace the alias's
// (a RoutingConfig without weights removes the routing).
func (a *API) updateAlias(c *manageCall) (int, any, *apiError) {
	if e := a.aliasFunction(c, "UpdateAlias"); e != nil {
		return 0, nil, e
	}
	name, e := pathValue(c.r, "Name")
	if e != nil {
		return 0, nil, e
	}
	var in aliasInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	ctx := c.r.Context()
	vs := a.opts.Manage.Versions
	// Without the caller's RevisionId, the write is still conditional on
	// the revision read, so that two updates never merge into one.
	for range 5 {
		cur, err := vs.AliasEntry(ctx, c.ref.Name, name)
		if errors.Is(err, versions.ErrNotFound) {
			return 0, nil, a.aliasNotFound(c.ref.Name, name)
		}
		if err != nil {
			return 0, nil, serviceErr("reading the alias", err)
		}
		if in.RevisionID != "" && in.RevisionID != cur.RevisionID {
			// Checked again in the write; first here, as Lambda checks it
			// before the new definition.
			return 0, nil, a.storeError(c.ref.Name, functions.ErrPrecondition)
		}
		al := *cur.Alias
		if in.FunctionVersion != nil {
			al.Version = *in.FunctionVersion
		}
		if in.Description != nil {
			al.Description = *in.Description
		}
		if in.RoutingConfig != nil {
			al.Routing = nil
			if len(in.RoutingConfig.AdditionalVersionWeights) > 0 {
				al.Routing = in.RoutingConfig.AdditionalVersionWeights
			}
		}
		rev := in.RevisionID
		if rev == "" {
			rev = cur.RevisionID
		}
		ent, err := vs.WriteAlias(ctx, c.ref.Name, &al, versions.AliasCondition{Update: true, RevisionID: rev})
		switch {
		case errors.Is(err, versions.ErrPrecondition) && in.RevisionID == "":
			continue
		case err != nil:
			return 0, nil, a.aliasError(ctx, c.ref.Name, &al, err)
		}
		a.written(ctx)
		return http.StatusOK, a.aliasConfiguration(c.ref.Name, ent), nil
	}
	return 0, nil, &apiError{Code: CodeResourceConflict, Message: "The operation cannot be performed at this time. An update is in progress for resource: " + a.functionARN(c.ref.Name, name)}
}

// deleteAlias answers DeleteAlias (an absent alias is not an error, as on
// Lambda, whose DeleteAlias has no not-found error).
func (a *API) deleteAlias(c *manageCall) (int, any, *apiError) {
	if e := a.aliasFunction(c, "DeleteAlias"); e != nil {
		return 0, nil, e
	}
	name, e := pathValue(c.r, "Name")
	if e != nil {
		return 0, nil, e
	}
	err := a.opts.Manage.Versions.DeleteAlias(c.r.Context(), c.ref.Name, name)
	if err != nil && !errors.Is(err, versions.ErrNotFound) {
		return 0, nil, serviceErr("deleting the alias", err)
	}
	a.written(c.r.Context())
	return http.StatusNoContent, nil, nil
}

// listAliases answers ListAliases (FunctionVersion: only the aliases that
// route to that version, as primary or additional version).
func (a *API) listAliases(c *manageCall) (int, any, *apiError) {
	if e := a.aliasFunction(c, "ListAliases"); e != nil {
		return 0, nil, e
	}
	size, e := pageSize(c.r, maxPage)
	if e != nil {
		return 0, nil, e
	}
	q := c.r.URL.Query()
	all, err := a.opts.Manage.Versions.AliasEntries(c.r.Context(), c.ref.Name)
	if err != nil {
		return 0, nil, serviceErr("reading aliases", err)
	}
	var list []*aliasConfiguration
	for _, ent := range all {
		if fv := q.Get("FunctionVersion"); fv != "" {
			if _, routed := ent.Routing[fv]; ent.Version != fv && !routed {
				continue
			}
		}
		list = append(list, a.aliasConfiguration(c.ref.Name, ent))
	}
	page, next := listPage(list, func(al *aliasConfiguration) string { return al.Name }, q.Get("Marker"), size)
	out := map[string]any{"Aliases": nonNil(page)}
	if next != "" {
		out["NextMarker"] = next
	}
	return http.StatusOK, out, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ---- layers -----------------------------------------------------------------

type layerVersionContent struct {
	Location   string `json:"Location,omitempty"`
	CodeSha256 string `json:"CodeSha256"`
	CodeSize   int64  `json:"CodeSize"`
}

type layerVersionOutput struct {
	Content                 *layerVersionContent `json:"Content,omitempty"`
	LayerArn                string               `json:"LayerArn"`
	LayerVersionArn         string               `json:"LayerVersionArn"`
	Description             string               `json:"Description"`
	CreatedDate             string               `json:"CreatedDate"`
	Version                 int                  `json:"Version"`
	CompatibleRuntimes      []string             `json:"CompatibleRuntimes,omitempty"`
	CompatibleArchitectures []string             `json:"CompatibleArchitectures,omitempty"`
	LicenseInfo             string               `json:"LicenseInfo,omitempty"`
}

func (a *API) layerBaseARN(name string) string {
	return "arn:aws:lambda:" + a.opts.Region + ":" + a.opts.AccountID + ":layer:" + name
}

// layerOutput is a layer version as Lambda answers it; withContent adds
// the bundle (Get and Publish, not the lists).
func (a *API) layerOutput(host string, lv *versions.LayerVersion, withContent bool) *layerVersionOutput {
	out := &layerVersionOutput{LayerArn: a.layerBaseARN(lv.Layer), LayerVersionArn: a.layerVersionARN(lv.Layer, lv.Number),
		Description: lv.Description, CreatedDate: lambdaTime(lv.Created), Version: lv.Number,
		CompatibleRuntimes: lv.CompatibleRuntimes, CompatibleArchitectures: lv.CompatibleArchitectures, LicenseInfo: lv.LicenseInfo}
	if withContent {
		out.Content = &layerVersionContent{Location: a.codeLocation(host, lv.CodeSHA256), CodeSha256: lambdaSHA(lv.CodeSHA256), CodeSize: lv.Size}
	}
	return out
}

// layerName reads and checks {LayerName}: a name or a layer ARN.
func (a *API) layerName(r *http.Request) (string, *apiError) {
	v, e := pathValue(r, "LayerName")
	if e != nil {
		return "", e
	}
	if rest, ok := strings.CutPrefix(v, "arn:aws:lambda:"+a.opts.Region+":"+a.opts.AccountID+":layer:"); ok {
		v = rest
	}
	if !layerNameRE(v) {
		return "", invalidParam("1 validation error detected: Value '" + v + "' at 'layerName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+")
	}
	return v, nil
}

func layerNameRE(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}

func (a *API) layerNotFound() *apiError {
	return &apiError{Code: CodeResourceNotFound, Message: "The resource you requested does not exist."}
}

func (a *API) needVersions() *apiError {
	if a.opts.Manage == nil {
		return &apiError{Code: CodeService, Message: "this gateway does not manage layers (no version store configured)"}
	}
	return nil
}

// Layer runtimes Lambda accepts in CompatibleRuntimes are checked by
// prefix against the runtimes Nimbus runs.
var layerRuntimePrefixes = []string{"provided", "python3", "nodejs"}

// publishLayerVersion answers PublishLayerVersion.
func (a *API) publishLayerVersion(c *manageCall) (int, any, *apiError) {
	name, e := a.layerName(c.r)
	if e != nil {
		return 0, nil, e
	}
	var in struct {
		Content *struct {
			ZipFile         []byte `json:"ZipFile"`
			S3Bucket        string `json:"S3Bucket"`
			S3Key           string `json:"S3Key"`
			S3ObjectVersion string `json:"S3ObjectVersion"`
		} `json:"Content"`
		Description             string   `json:"Description"`
		CompatibleRuntimes      []string `json:"CompatibleRuntimes"`
		CompatibleArchitectures []string `json:"CompatibleArchitectures"`
		LicenseInfo             string   `json:"LicenseInfo"`
	}
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	switch {
	case in.Content == nil:
		return 0, nil, invalidParam("Content is required")
	case in.Content.S3Bucket != "" || in.Content.S3Key != "" || in.Content.S3ObjectVersion != "":
		return 0, nil, invalidParam("Content.S3Bucket is not supported by Nimbus: upload the zip as Content.ZipFile")
	case len(in.Description) > 256:
		return 0, nil, invalidParam("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 256")
	case len(in.LicenseInfo) > 512:
		return 0, nil, invalidParam("1 validation error detected: Value at 'licenseInfo' failed to satisfy constraint: Member must have length less than or equal to 512")
	case len(in.CompatibleRuntimes) > 15:
		return 0, nil, invalidParam("1 validation error detected: Value at 'compatibleRuntimes' failed to satisfy constraint: Member must have length less than or equal to 15")
	}
	for _, rt := range in.CompatibleRuntimes {
		if !slices.ContainsFunc(layerRuntimePrefixes, func(p string) bool { return strings.HasPrefix(rt, p) }) {
			return 0, nil, invalidParam("CompatibleRuntimes " + rt + " is not a runtime Nimbus runs (provided*, python3*, nodejs*)")
		}
	}
	for _, arch := range in.CompatibleArchitectures {
		if arch != "x86_64" {
			return 0, nil, invalidParam("CompatibleArchitectures " + arch + " is not supported by Nimbus: functions run on x86_64 Nomad clients")
		}
	}
	if len(in.CompatibleArchitectures) > 1 {
		return 0, nil, invalidParam("CompatibleArchitectures lists x86_64 more than once")
	}
	if e := a.needVersions(); e != nil {
		return 0, nil, e
	}
	ctx := c.r.Context()
	_, sum, e := a.storeCode(ctx, in.Content.ZipFile)
	if e != nil {
		return 0, nil, e
	}
	// The store keeps a layer's unzipped size (what counts against
	// Lambda's 250 MB for code and layers); storeCode read the zip already.
	var unzipped int64
	if zr, err := zipfile.NewReader(bytes.NewReader(in.Content.ZipFile), int64(len(in.Content.ZipFile))); err == nil {
		for _, f := range zr.File {
			unzipped += int64(f.UncompressedSize64)
		}
	}
	lv, _, err := a.opts.Manage.Versions.PublishLayer(ctx, name, versions.LayerSnapshot{
		CodeSHA256: sum, Size: unzipped, Description: in.Description,
		CompatibleRuntimes: in.CompatibleRuntimes, CompatibleArchitectures: in.CompatibleArchitectures, LicenseInfo: in.LicenseInfo,
		Always: true,
	})
	if errors.Is(err, versions.ErrInvalid) {
		return 0, nil, invalidParam(err.Error())
	}
	if err != nil {
		return 0, nil, serviceErr("publishing the layer", err)
	}
	a.written(ctx)
	return http.StatusCreated, a.layerOutput(c.r.Host, lv, true), nil
}

// layerVersionNumber reads {VersionNumber}.
func layerVersionNumber(r *http.Request) (int, *apiError) {
	s, e := pathValue(r, "VersionNumber")
	if e != nil {
		return 0, e
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, invalidParam("1 validation error detected: Value '" + s + "' at 'versionNumber' failed to satisfy constraint: Member must be a positive number")
	}
	return n, nil
}

// getLayerVersion answers GetLayerVersion.
func (a *API) getLayerVersion(c *manageCall) (int, any, *apiError) {
	name, e := a.layerName(c.r)
	if e != nil {
		return 0, nil, e
	}
	n, e := layerVersionNumber(c.r)
	if e != nil {
		return 0, nil, e
	}
	return a.layerVersion(c, name, n)
}

func (a *API) layerVersion(c *manageCall, name string, n int) (int, any, *apiError) {
	if e := a.needVersions(); e != nil {
		return 0, nil, e
	}
	lv, err := a.opts.Manage.Versions.LayerVersion(c.r.Context(), name, n)
	if errors.Is(err, versions.ErrNotFound) || (err == nil && lv.Deleted) {
		return 0, nil, a.layerNotFound()
	}
	if err != nil {
		return 0, nil, serviceErr("reading the layer", err)
	}
	return http.StatusOK, a.layerOutput(c.r.Host, lv, true), nil
}

// deleteLayerVersion answers DeleteLayerVersion (idempotent, as on Lambda).
func (a *API) deleteLayerVersion(c *manageCall) (int, any, *apiError) {
	name, e := a.layerName(c.r)
	if e != nil {
		return 0, nil, e
	}
	n, e := layerVersionNumber(c.r)
	if e != nil {
		return 0, nil, e
	}
	if err := a.opts.Manage.Versions.DeleteLayerVersion(c.r.Context(), name, n); err != nil {
		return 0, nil, serviceErr("deleting the layer version", err)
	}
	a.written(c.r.Context())
	return http.StatusNoContent, nil, nil
}

// listLayerVersions answers ListLayerVersions: newest first, as Lambda
// lists them (CompatibleRuntime and CompatibleArchitecture filter).
func (a *API) listLayerVersions(c *manageCall) (int, any, *apiError) {
	name, e := a.layerName(c.r)
	if e != nil {
		return 0, nil, e
	}
	size, e := pageSize(c.r, maxLayerPage)
	if e != nil {
		return 0, nil, e
	}
	if e := a.needVersions(); e != nil {
		return 0, nil, e
	}
	lvs, err := a.opts.Manage.Versions.LayerVersions(c.r.Context(), name)
	if err != nil {
		return 0, nil, serviceErr("reading the layer", err)
	}
	q := c.r.URL.Query()
	var list []*layerVersionOutput
	for i := len(lvs) - 1; i >= 0; i-- {
		if layerMatches(lvs[i], q) {
			list = append(list, a.layerOutput(c.r.Host, lvs[i], false))
		}
	}
	// Newest first: the key falls as the list goes on.
	page, next := listPage(list, func(o *layerVersionOutput) string { return versionKey(strconv.Itoa(maxLayerKey - o.Version)) }, q.Get("Marker"), size)
	out := map[string]any{"LayerVersions": nonNil(page)}
	if next != "" {
		out["NextMarker"] = next
	}
	return http.StatusOK, out, nil
}

// maxLayerKey turns descending version numbers into ascending keys.
const maxLayerKey = 1_000_000_000

// layerMatches applies the CompatibleRuntime and CompatibleArchitecture
// filters of the layer lists.
func layerMatches(lv *versions.LayerVersion, q url.Values) bool {
	if rt := q.Get("CompatibleRuntime"); rt != "" && !slices.Contains(lv.CompatibleRuntimes, rt) {
		return false
	}
	if arch := q.Get("CompatibleArchitecture"); arch != "" && !slices.Contains(lv.CompatibleArchitectures, arch) {
		return false
	}
	return true
}

// listLayers answers ListLayers (each layer with its newest version that
// matches the filters), and GetLayerVersionByArn (?find=LayerVersion&Arn=).
func (a *API) listLayers(c *manageCall) (int, any, *apiError) {
	q := c.r.URL.Query()
	if find := q.Get("find"); find != "" {
		if find != "LayerVersion" {
			return 0, nil, invalidParam("find must be LayerVersion")
		}
		m := layerARN.FindStringSubmatch(q.Get("Arn"))
		if m == nil {
			return 0, nil, invalidParam("1 validation error detected: Value '" + q.Get("Arn") + "' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+")
		}
		if m[1] != a.opts.Region || m[2] != a.opts.AccountID {
			return 0, nil, a.layerNotFound()
		}
		n, _ := strconv.Atoi(m[4])
		return a.layerVersion(c, m[3], n)
	}
	size, e := pageSize(c.r, maxLayerPage)
	if e != nil {
		return 0, nil, e
	}
	if e := a.needVersions(); e != nil {
		return 0, nil, e
	}
	ctx := c.r.Context()
	names, err := a.opts.Manage.Versions.Layers(ctx)
	if err != nil {
		return 0, nil, serviceErr("listing layers", err)
	}
	type layerItem struct {
		LayerName             string              `json:"LayerName"`
		LayerArn              string              `json:"LayerArn"`
		LatestMatchingVersion *layerVersionOutput `json:"LatestMatchingVersion"`
	}
	var list []*layerItem
	for _, name := range names {
		lvs, err := a.opts.Manage.Versions.LayerVersions(ctx, name)
		if err != nil {
			return 0, nil, serviceErr("reading layer "+name, err)
		}
		for i := len(lvs) - 1; i >= 0; i-- {
			if layerMatches(lvs[i], q) {
				list = append(list, &layerItem{LayerName: name, LayerArn: a.layerBaseARN(name), LatestMatchingVersion: a.layerOutput(c.r.Host, lvs[i], false)})
				break
			}
		}
	}
	page, next := listPage(list, func(l *layerItem) string { return l.LayerName }, q.Get("Marker"), size)
	out := map[string]any{"Layers": nonNil(page)}
	if next != "" {
		out["NextMarker"] = next
	}
	return http.StatusOK, out, nil
}
