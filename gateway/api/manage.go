package api

import (
	zipfile "archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// Lambda's management error codes beyond the invocation catalogue.
const (
	CodePreconditionFailed  = "PreconditionFailedException"
	CodeCodeStorageExceeded = "CodeStorageExceededException"
	CodeInvalidZipFile      = "InvalidZipFileException"
	CodeResourceInUse       = "ResourceInUseException"
)

func init() {
	catalogue[CodePreconditionFailed] = errorKind{http.StatusPreconditionFailed, "User"}
	catalogue[CodeCodeStorageExceeded] = errorKind{http.StatusBadRequest, "User"}
	catalogue[CodeInvalidZipFile] = errorKind{http.StatusBadRequest, "User"}
	catalogue[CodeResourceInUse] = errorKind{http.StatusBadRequest, "User"}
}

// Code bundle limits of direct uploads (Lambda's quotas).
const (
	// MaxZippedBytes is the largest zip a request may carry.
	MaxZippedBytes = 50 << 20
	// MaxUnzippedBytes is the most code and layers may unzip to.
	MaxUnzippedBytes = 262144000
	// maxManageBody bounds a management request: a 50 MB zip in base64
	// plus the rest of the request.
	maxManageBody = MaxZippedBytes/3*4 + 8 + 1<<20
)

// CodeStore keeps an uploaded code bundle and says where a function's spec
// finds it: an unpacked directory in dev mode, the artifact store's URL in
// a cluster. It refuses an unsafe or oversized zip with an error wrapping
// ErrBadZip.
type CodeStore interface {
	Put(ctx context.Context, sha256 string, data []byte) (*specs.Code, error)
}

// ErrBadZip marks a bundle CodeStore refuses for its contents.
var ErrBadZip = errors.New("invalid zip file")

// Management is what the API needs to serve Lambda's management operations.
type Management struct {
	// Functions keeps API-managed $LATEST configurations. Required.
	Functions *functions.Store
	// Versions keeps published versions, aliases and layers. Required.
	Versions *versions.Store
	// Code stores bundles. Required.
	Code CodeStore
	// Applied is told about every write (the controller's Kick). Optional.
	Applied func()
	// Changed runs after every write, before the answer (dev mode reloads
	// its catalog, so a published version or an alias answers at once).
	// Optional.
	Changed func(ctx context.Context)
	// CodeLocation is the URL GetFunction's Code.Location gives for a
	// bundle, as reached through host. Nil: the gateway's own artifact
	// path on host.
	CodeLocation func(host, sha256 string) string
	// Declared reports where a function is declared outside the API (a
	// spec file in dev mode's directory), "" if nowhere: such a function
	// cannot be deleted through the API.
	Declared func(name string) string
	// Remove takes a deleted function's versions out of service ("$LATEST"
	// and numbers): a cluster deregisters their jobs. Nil: the catalog's
	// next reload is enough (dev mode).
	Remove func(ctx context.Context, name string, versions []string) error
	// Provisioned reports how many provisioned execution environments of
	// a function version finished init and run, or why they cannot be
	// started. Nil: provisioned concurrency configs are refused, since
	// nothing would report (or run) them.
	Provisioned func(ctx context.Context, function, version string) (ready int, err error)
	// ResolveImage pins an image reference (a tag or a digest) to its
	// manifest digest, "registry/repo@sha256:<hex>", checking the registry
	// holds it; an error wrapped by functions.WithReason names Lambda's
	// reason (ImageDeleted, ImageAccessDenied, InvalidImage). Nil: image
	// functions are refused, since nothing could resolve or pull them.
	ResolveImage func(ctx context.Context, ref string) (string, error)
}

// manageRoutes are the management operations on functions.
var manageRoutes = []route{
	{Route{"CreateFunction", []string{http.MethodPost}, "/2015-03-31/functions"},
		func(a *API, w http.ResponseWriter, r *http.Request, _ string) { a.manage(w, r, "", a.createFunction) }},
	{Route{"ListFunctions", []string{http.MethodGet}, "/2015-03-31/functions"},
		func(a *API, w http.ResponseWriter, r *http.Request, _ string) { a.serveListFunctions(w, r) }},
	{Route{"GetFunction", []string{http.MethodGet}, "/2015-03-31/functions/" + fnLabel},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.manage(w, r, name, a.getFunction) }},
	{Route{"DeleteFunction", []string{http.MethodDelete}, "/2015-03-31/functions/" + fnLabel},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.deleteFunction)
		}},
	{Route{"GetFunctionConfiguration", []string{http.MethodGet}, "/2015-03-31/functions/" + fnLabel + "/configuration"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.getFunctionConfiguration)
		}},
	{Route{"UpdateFunctionConfiguration", []string{http.MethodPut}, "/2015-03-31/functions/" + fnLabel + "/configuration"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.updateFunctionConfiguration)
		}},
	{Route{"UpdateFunctionCode", []string{http.MethodPut}, "/2015-03-31/functions/" + fnLabel + "/code"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.updateFunctionCode)
		}},
	// Nimbus's own: the function's spec in the model specs and the CLI
	// share (nimbus export writes it back as HCL).
	{Route{"GetFunctionSpec", []string{http.MethodGet}, SpecPathPrefix + fnLabel + "/spec"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.getFunctionSpec)
		}},
}

// SpecPathPrefix starts GetFunctionSpec's path:
// /nimbus/v1/functions/{FunctionName}/spec[?Qualifier=…].
const SpecPathPrefix = "/nimbus/v1/functions/"

// FunctionSpec is GetFunctionSpec's answer.
type FunctionSpec struct {
	// Spec is the canonical JSON of the version's spec. Its code names
	// where this gateway keeps the bundle; CodeLocation downloads it.
	Spec json.RawMessage `json:"Spec"`
	// Version is the version the spec is of.
	Version string `json:"Version"`
	// CodeSha256 is the bundle's sha256 (hex) and CodeLocation its URL
	// ("" when the function's code is a directory no bundle was made of).
	CodeSha256   string `json:"CodeSha256"`
	CodeLocation string `json:"CodeLocation"`
}

// getFunctionSpec answers GetFunctionSpec.
func (a *API) getFunctionSpec(c *manageCall) (int, any, *apiError) {
	st, out, e := a.getFunction(c)
	if e != nil {
		return 0, nil, e
	}
	m := out.(map[string]any)
	cfg := m["Configuration"].(*functionConfiguration)
	ctx := c.r.Context()
	var spec *specs.Function
	if fn, res, e := a.lookup(ctx, c.ref); e == nil {
		spec = res.Spec
		if res.Version == catalog.Latest && a.opts.Manage != nil {
			if f, err := a.opts.Manage.Functions.Get(ctx, fn.Name); err == nil {
				spec = f.Spec
			}
		}
	} else if a.opts.Manage == nil {
		return 0, nil, e
	} else if f, err := a.opts.Manage.Functions.Get(ctx, c.ref.Name); err == nil {
		spec = f.Spec // not in service yet
	} else {
		return 0, nil, e
	}
	raw, err := specs.Encode(spec)
	if err != nil {
		return 0, nil, serviceErr("encoding the spec", err)
	}
	sum := ""
	if spec.Code != nil {
		sum = strings.TrimPrefix(spec.Code.Checksum, "sha256:")
	}
	fs := &FunctionSpec{Spec: raw, Version: cfg.Version, CodeSha256: sum}
	if sum != "" {
		fs.CodeLocation = m["Code"].(map[string]string)["Location"]
	}
	return st, fs, nil
}

// manageCall is one management request: the function named in the path
// (nil for collection operations), the body, and the request.
type manageCall struct {
	r         *http.Request
	ref       *functionRef
	body      []byte
	requestID string
}

// manageHandler answers a status and a body, or an error.
type manageHandler func(c *manageCall) (int, any, *apiError)

// manage authenticates (the body is signed, so it is read first), parses
// the function label, and runs h.
func (a *API) manage(w http.ResponseWriter, r *http.Request, rawLabel string, h manageHandler) {
	c := &manageCall{r: r, requestID: uuid.NewString()}
	fail := func(e *apiError) { writeAPIError(w, c.requestID, e) }
	if r.ContentLength > maxManageBody {
		fail(tooLargeRequest(r))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManageBody+1))
	if err != nil {
		fail(&apiError{Code: CodeInvalidRequestContent, Message: "reading the request body: " + err.Error()})
		return
	}
	if len(body) > maxManageBody {
		fail(tooLargeRequest(r))
		return
	}
	c.body = body
	if _, e := a.authenticateAdmin(r, body); e != nil {
		fail(e)
		return
	}
	if rawLabel != "" {
		label, err := url.PathUnescape(rawLabel)
		if err != nil {
			fail(&apiError{Code: CodeInvalidParameterValue, Message: "function name is not a valid percent-encoded path segment"})
			return
		}
		ref, e := parseFunctionRef(label, r.URL.Query().Get("Qualifier"))
		if e != nil {
			fail(e)
			return
		}
		if (ref.Region != "" && ref.Region != a.opts.Region) || (ref.Account != "" && ref.Account != a.opts.AccountID) {
			fail(a.functionNotFound(ref.Name, ref.Qualifier))
			return
		}
		c.ref = ref
	}
	if a.opts.Manage == nil && r.Method != http.MethodGet {
		fail(&apiError{Code: CodeService, Message: "this gateway does not manage functions (no function store configured)"})
		return
	}
	status, out, e := h(c)
	if e != nil {
		if e.Code == CodeService {
			a.logger.Warn("management request failed", "method", r.Method, "path", r.URL.Path, "error", e.Message)
		}
		fail(e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(headerRequestID, c.requestID)
	w.WriteHeader(status)
	if out != nil {
		_ = json.NewEncoder(w).Encode(out)
	}
}

func tooLargeRequest(r *http.Request) *apiError {
	return &apiError{Code: CodeRequestTooLargeModelled, Message: "Request must be smaller than " + strconv.Itoa(maxManageBody) + " bytes for the " + r.Method + " " + r.URL.Path + " operation"}
}

// authenticateAdmin verifies SigV4 and that the key may manage functions.
func (a *API) authenticateAdmin(r *http.Request, body []byte) (string, *apiError) {
	id, e := a.authenticate(r, body)
	if e != nil || id == nil {
		return "", e
	}
	if a.opts.Admin != nil && !a.opts.Admin(id.AccessKeyID) {
		return "", &apiError{Code: CodeAccessDenied, Message: "User: " + id.AccessKeyID + " is not authorized to perform this operation: its access key may only invoke functions"}
	}
	return id.AccessKeyID, nil
}

func (a *API) functionNotFound(name, qualifier string) *apiError {
	return &apiError{Code: CodeResourceNotFound, Message: "Function not found: " + a.functionARN(name, qualifier)}
}

func invalidParam(msg string) *apiError {
	return &apiError{Code: CodeInvalidParameterValue, Message: msg}
}

func serviceErr(what string, err error) *apiError {
	return &apiError{Code: CodeService, Message: what + ": " + err.Error()}
}

// storeError maps a function store error onto Lambda's.
func (a *API) storeError(name string, err error) *apiError {
	switch {
	case errors.Is(err, functions.ErrNotFound):
		return a.functionNotFound(name, "")
	case errors.Is(err, functions.ErrExists):
		return &apiError{Code: CodeResourceConflict, Message: "Function already exist: " + name}
	case errors.Is(err, functions.ErrPrecondition):
		return &apiError{Code: CodePreconditionFailed, Message: "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"}
	case errors.Is(err, functions.ErrContended):
		return &apiError{Code: CodeResourceConflict, Message: "The operation cannot be performed at this time. An update is in progress for resource: " + a.functionARN(name, "")}
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return serviceErr("function store", err)
}

// functionInput is the configuration part of CreateFunction and
// UpdateFunctionConfiguration requests. Pointers tell "absent" from zero.
type functionInput struct {
	FunctionName     string            `json:"FunctionName"`
	Runtime          *string           `json:"Runtime"`
	Role             *string           `json:"Role"`
	Handler          *string           `json:"Handler"`
	Description      *string           `json:"Description"`
	Timeout          *int              `json:"Timeout"`
	MemorySize       *int              `json:"MemorySize"`
	Environment      *environment      `json:"Environment"`
	EphemeralStorage *ephemeralStorage `json:"EphemeralStorage"`
	Layers           *[]string         `json:"Layers"`
	Tags             map[string]string `json:"Tags"`
	Publish          bool              `json:"Publish"`
	PackageType      string            `json:"PackageType"`
	Architectures    []string          `json:"Architectures"`
	RevisionID       string            `json:"RevisionId"`
	// Nimbus carries what Lambda's fields cannot say: the whole function
	// spec (event sources, async config, URL, aliases, placement, …), in
	// place of the configuration fields. nimbus deploy --endpoint sends it.
	Nimbus *struct {
		Spec json.RawMessage `json:"Spec"`
	} `json:"Nimbus"`
	Code *struct {
		ZipFile         []byte `json:"ZipFile"`
		S3Bucket        string `json:"S3Bucket"`
		S3Key           string `json:"S3Key"`
		S3ObjectVersion string `json:"S3ObjectVersion"`
		ImageURI        string `json:"ImageUri"`
	} `json:"Code"`

	// Accepted by Lambda, not by Nimbus: refused when set (see unsupported).
	VpcConfig *struct {
		SubnetIds        []string `json:"SubnetIds"`
		SecurityGroupIds []string `json:"SecurityGroupIds"`
	} `json:"VpcConfig"`
	DeadLetterConfig *struct {
		TargetArn string `json:"TargetArn"`
	} `json:"DeadLetterConfig"`
	TracingConfig *struct {
		Mode string `json:"Mode"`
	} `json:"TracingConfig"`
	KMSKeyArn            string            `json:"KMSKeyArn"`
	FileSystemConfigs    []json.RawMessage `json:"FileSystemConfigs"`
	ImageConfig          *imageConfig      `json:"ImageConfig"`
	CodeSigningConfigArn string            `json:"CodeSigningConfigArn"`
	SnapStart            *struct {
		ApplyOn string `json:"ApplyOn"`
	} `json:"SnapStart"`
	LoggingConfig json.RawMessage `json:"LoggingConfig"`
}

// unsupported refuses settings Lambda has and Nimbus does not honour, so
// that none is accepted and silently ignored.
func (in *functionInput) unsupported() *apiError {
	refuse := func(field, why string) *apiError {
		return invalidParam(field + " is not supported by Nimbus: " + why)
	}
	switch {
	case in.VpcConfig != nil && (len(in.VpcConfig.SubnetIds) > 0 || len(in.VpcConfig.SecurityGroupIds) > 0):
		return refuse("VpcConfig", "functions reach networks through their Nomad placement (spec placement block)")
	case in.DeadLetterConfig != nil && in.DeadLetterConfig.TargetArn != "":
		return refuse("DeadLetterConfig", "use PutFunctionEventInvokeConfig with an on-failure destination")
	case in.TracingConfig != nil && in.TracingConfig.Mode != "" && in.TracingConfig.Mode != "PassThrough":
		return refuse("TracingConfig.Mode "+in.TracingConfig.Mode, "there is no X-Ray daemon; only PassThrough")
	case in.KMSKeyArn != "":
		return refuse("KMSKeyArn", "secrets come from Nomad Variables (spec secret blocks)")
	case len(in.FileSystemConfigs) > 0:
		return refuse("FileSystemConfigs", "there is no EFS")
	case in.CodeSigningConfigArn != "":
		return refuse("CodeSigningConfigArn", "code signing is not implemented")
	case in.SnapStart != nil && in.SnapStart.ApplyOn != "" && in.SnapStart.ApplyOn != "None":
		return refuse("SnapStart", "snapshots are not implemented")
	case len(in.LoggingConfig) > 0 && string(in.LoggingConfig) != "null":
		return refuse("LoggingConfig", "logs go to Nomad's task logs")
	case in.PackageType != "" && in.PackageType != packageZip && in.PackageType != packageImage:
		return invalidParam("1 validation error detected: Value '" + in.PackageType + "' at 'packageType' failed to satisfy constraint: Member must satisfy enum value set: [Zip, Image]")
	}
	for _, arch := range in.Architectures {
		if arch != "x86_64" {
			return refuse("Architectures "+arch, "functions run on x86_64 Nomad clients")
		}
	}
	if in.Code != nil {
		switch {
		case in.Code.S3Bucket != "" || in.Code.S3Key != "" || in.Code.S3ObjectVersion != "":
			return refuse("Code.S3Bucket", "upload the zip as Code.ZipFile")
		}
	}
	return nil
}

// layerARN is a layer version ARN: arn:aws:lambda:<region>:<account>:layer:<name>:<version>.
var layerARN = regexp.MustCompile(`^arn:[a-z-]+:lambda:([a-z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]+):([0-9]+)$`)

// layerRefs turns layer version ARNs into the spec's "name:version" references.
func (a *API) layerRefs(arns []string) ([]string, *apiError) {
	refs := make([]string, 0, len(arns))
	for _, arn := range arns {
		m := layerARN.FindStringSubmatch(arn)
		if m == nil {
			return nil, invalidParam("Layer " + arn + " is not a layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>)")
		}
		if m[1] != a.opts.Region || m[2] != a.opts.AccountID {
			return nil, invalidParam("Layer " + arn + " is not in this region and account")
		}
		refs = append(refs, m[3]+":"+m[4])
	}
	return refs, nil
}

// apply copies the request's settings onto spec.
func (a *API) apply(in *functionInput, spec *specs.Function) *apiError {
	if in.Runtime != nil {
		spec.Runtime = *in.Runtime
	}
	if in.Handler != nil {
		spec.Handler = *in.Handler
	}
	if in.Description != nil {
		spec.Description = *in.Description
	}
	if in.Timeout != nil {
		spec.Timeout = strconv.Itoa(*in.Timeout) + "s"
	}
	if in.MemorySize != nil {
		spec.MemoryMB = *in.MemorySize
	}
	if in.Environment != nil {
		spec.Environment = in.Environment.Variables
	}
	if in.EphemeralStorage != nil {
		spec.EphemeralStorageMB = in.EphemeralStorage.Size
	}
	if in.Layers != nil {
		refs, e := a.layerRefs(*in.Layers)
		if e != nil {
			return e
		}
		spec.Layers = refs
	}
	if in.ImageConfig != nil {
		spec.ImageConfig = in.ImageConfig.spec()
	}
	if spec.IsImage() {
		if spec.Runtime != "" || spec.Handler != "" || len(spec.Layers) > 0 {
			return invalidParam(msgImageNoRuntime)
		}
	} else if spec.ImageConfig != nil {
		return invalidParam("ImageConfig applies to functions with PackageType Image only")
	}
	return nil
}

// canonicalize validates spec as specs.Decode does (defaults, Lambda's
// limits) and returns the decoded copy.
func canonicalize(spec *specs.Function) (*specs.Function, *apiError) {
	raw, err := specs.Encode(spec)
	if err != nil {
		return nil, invalidParam(err.Error())
	}
	out, err := specs.Decode(raw)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "decoding function spec \""+spec.Name+"\": ")
		return nil, invalidParam(msg)
	}
	return out, nil
}

// storeCode checks and stores a zip from a request.
func (a *API) storeCode(ctx context.Context, zip []byte) (*specs.Code, string, *apiError) {
	if len(zip) == 0 {
		return nil, "", invalidParam("Code.ZipFile is required (S3 and image code are not supported)")
	}
	if len(zip) > MaxZippedBytes {
		return nil, "", &apiError{Code: CodeRequestTooLargeModelled, Message: "Zipped file size must be smaller than " + strconv.Itoa(MaxZippedBytes) + " bytes"}
	}
	zr, err := zipfile.NewReader(bytes.NewReader(zip), int64(len(zip)))
	if err != nil {
		return nil, "", &apiError{Code: CodeInvalidZipFile, Message: "Could not unzip uploaded file. Please check your file, then try to upload again. (" + err.Error() + ")"}
	}
	var unzipped uint64
	for _, f := range zr.File {
		unzipped += f.UncompressedSize64
	}
	if unzipped > MaxUnzippedBytes {
		return nil, "", invalidParam("Unzipped size must be smaller than " + strconv.Itoa(MaxUnzippedBytes) + " bytes")
	}
	sum := sha256.Sum256(zip)
	hexSum := hex.EncodeToString(sum[:])
	code, err := a.opts.Manage.Code.Put(ctx, hexSum, zip)
	if errors.Is(err, ErrBadZip) {
		return nil, "", &apiError{Code: CodeInvalidZipFile, Message: err.Error()}
	}
	if err != nil {
		return nil, "", serviceErr("storing the code", err)
	}
	return code, hexSum, nil
}

// nimbusSpec is the request's Nimbus.Spec for function name (nil when
// absent). It replaces the Lambda configuration fields, which must then be
// absent: one request does not say the configuration twice.
func (in *functionInput) nimbusSpec(name string) (*specs.Function, *apiError) {
	if in.Nimbus == nil || len(in.Nimbus.Spec) == 0 {
		return nil, nil
	}
	if in.Runtime != nil || in.Handler != nil || in.Description != nil || in.Timeout != nil || in.MemorySize != nil ||
		in.Environment != nil || in.EphemeralStorage != nil || in.Layers != nil {
		return nil, invalidParam("Nimbus.Spec replaces Runtime, Handler, Description, Timeout, MemorySize, Environment, EphemeralStorage and Layers: give one or the other")
	}
	var spec specs.Function
	if err := json.Unmarshal(in.Nimbus.Spec, &spec); err != nil {
		return nil, invalidParam("Nimbus.Spec is not a function spec: " + err.Error())
	}
	if spec.Name != name {
		return nil, invalidParam("Nimbus.Spec names function " + strconv.Quote(spec.Name) + ", the request " + strconv.Quote(name))
	}
	if spec.Tags == nil && in.Tags != nil {
		spec.Tags = in.Tags
	}
	return &spec, nil
}

func (a *API) decodeInput(body []byte) (*functionInput, *apiError) {
	var in functionInput
	if len(body) == 0 {
		return &in, nil
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{Code: CodeInvalidRequestContent, Message: "Could not parse request body into json: " + err.Error()}
	}
	if e := in.unsupported(); e != nil {
		return nil, e
	}
	return &in, nil
}

// createFunction answers CreateFunction (POST /2015-03-31/functions).
func (a *API) createFunction(c *manageCall) (int, any, *apiError) {
	in, e := a.decodeInput(c.body)
	if e != nil {
		return 0, nil, e
	}
	if !functions.ValidName(in.FunctionName) {
		return 0, nil, invalidParam("1 validation error detected: Value '" + in.FunctionName + "' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]{1,64}")
	}
	spec, e := in.nimbusSpec(in.FunctionName)
	if e != nil {
		return 0, nil, e
	}
	if in.Code == nil {
		return 0, nil, invalidParam("Code is required")
	}
	image := in.PackageType == packageImage
	switch {
	case image && len(in.Code.ZipFile) > 0:
		return 0, nil, invalidParam("Please provide only one source for function code: ImageUri for PackageType Image, ZipFile for Zip")
	case image && in.Code.ImageURI == "":
		return 0, nil, invalidParam("Please provide a source for function code: ImageUri is required for PackageType Image")
	case image && (in.Runtime != nil && *in.Runtime != "" || in.Handler != nil && *in.Handler != "" || in.Layers != nil && len(*in.Layers) > 0):
		return 0, nil, invalidParam(msgImageNoRuntime)
	case !image && in.Code.ImageURI != "":
		return 0, nil, invalidParam("Code.ImageUri needs PackageType Image; a Zip function's code is Code.ZipFile")
	case !image && in.ImageConfig != nil:
		return 0, nil, invalidParam("ImageConfig applies to functions with PackageType Image only")
	case !image && spec == nil && (in.Runtime == nil || *in.Runtime == ""):
		return 0, nil, invalidParam("Runtime is required for Zip package types")
	}
	ctx := c.r.Context()
	if _, err := a.catalog.Function(ctx, in.FunctionName); err == nil {
		return 0, nil, &apiError{Code: CodeResourceConflict, Message: "Function already exist: " + in.FunctionName}
	}
	if spec == nil {
		spec = &specs.Function{Name: in.FunctionName, Tags: in.Tags}
		if image {
			spec.Code = &specs.Code{Image: in.Code.ImageURI}
		}
		if e := a.apply(in, spec); e != nil {
			return 0, nil, e
		}
	}
	var (
		code *specs.Code
		sum  string
		size int64
	)
	if image {
		spec.Code = &specs.Code{Image: in.Code.ImageURI}
		if _, e := canonicalize(spec); e != nil {
			return 0, nil, e
		}
		if code, sum, e = a.resolveImage(ctx, in.Code.ImageURI); e != nil {
			return 0, nil, e
		}
	} else {
		// Validate the configuration before storing any code.
		spec.Code = &specs.Code{URL: "https://placeholder.invalid/code.zip", Checksum: "sha256:" + strings.Repeat("0", 64)}
		if _, e := canonicalize(spec); e != nil {
			return 0, nil, e
		}
		if code, sum, e = a.storeCode(ctx, in.Code.ZipFile); e != nil {
			return 0, nil, e
		}
		size = int64(len(in.Code.ZipFile))
	}
	spec.Code = code
	spec, e = canonicalize(spec)
	if e != nil {
		return 0, nil, e
	}
	role := ""
	if in.Role != nil {
		role = *in.Role
	}
	f, err := a.opts.Manage.Functions.Create(ctx, &functions.Function{
		Name: spec.Name, Spec: spec, CodeSHA256: sum, CodeSize: size, Role: role,
		State: functions.StatePending, StateReason: "The function is being created.", StateReasonCode: "Creating",
		LastUpdateStatus: functions.UpdateInProgress,
	})
	if err != nil {
		return 0, nil, a.storeError(in.FunctionName, err)
	}
	a.written(ctx)
	if in.Publish {
		v, e := a.publishStored(ctx, f, "", "")
		if e != nil {
			return 0, nil, e
		}
		return http.StatusCreated, a.versionConfiguration(ctx, f, v), nil
	}
	return http.StatusCreated, a.describe(ctx, f.Name, catalog.Latest, f.Spec, f), nil
}

func (a *API) written(ctx context.Context) {
	if a.opts.Manage.Changed != nil {
		a.opts.Manage.Changed(ctx)
	}
	if a.opts.Manage.Applied != nil {
		a.opts.Manage.Applied()
	}
}

// stored returns the store's entry of a function, adopting one the catalog
// knows from elsewhere (a spec file or a job) when adopt is set.
func (a *API) stored(ctx context.Context, name string, adopt bool) (*functions.Function, *apiError) {
	f, err := a.opts.Manage.Functions.Get(ctx, name)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, functions.ErrNotFound) {
		return nil, a.storeError(name, err)
	}
	fn, cerr := a.catalog.Function(ctx, name)
	if errors.Is(cerr, catalog.ErrFunctionNotFound) || (cerr == nil && fn.Latest() == nil) {
		return nil, a.functionNotFound(name, "")
	}
	if cerr != nil {
		return nil, serviceErr("reading the catalog", cerr)
	}
	if !adopt {
		return nil, nil
	}
	spec := fn.Latest()
	sum := ""
	if spec.Code != nil {
		sum = strings.TrimPrefix(spec.Code.Checksum, "sha256:")
		if _, d, ok := strings.Cut(spec.Code.PinnedImage(), "@sha256:"); ok {
			sum = d // an image's CodeSha256 is its manifest digest
		}
	}
	f, err = a.opts.Manage.Functions.Create(ctx, &functions.Function{
		Name: name, Spec: spec, Serving: spec, CodeSHA256: sum,
		State: functions.StateActive, LastUpdateStatus: functions.UpdateSuccessful,
	})
	if errors.Is(err, functions.ErrExists) {
		f, err = a.opts.Manage.Functions.Get(ctx, name)
	}
	if err != nil {
		return nil, a.storeError(name, err)
	}
	// The entry is what runs already: mark it applied.
	_ = a.opts.Manage.Functions.SetStatus(ctx, name, f.RevisionID, func(n *functions.Function) { n.Applied = n.RevisionID })
	f.Applied = f.RevisionID
	return f, nil
}

// updateStored checks the update preconditions and writes change. An
// update (code or configuration: Lambda's UpdateFunction* operations) is
// refused while another is in progress and marks LastUpdateStatus
// InProgress until the controller serves it. Other writes that change the
// spec (concurrency, URL config, tags) leave LastUpdateStatus alone, as in
// Lambda; the controller still applies their revision.
func (a *API) updateStored(ctx context.Context, name, revision string, update bool, change func(*functions.Function) *apiError) (*functions.Function, *apiError) {
	if _, e := a.stored(ctx, name, true); e != nil {
		return nil, e
	}
	var ae *apiError
	f, err := a.opts.Manage.Functions.Update(ctx, name, revision, func(f *functions.Function) error {
		if f.State == functions.StatePending || (update && f.LastUpdateStatus == functions.UpdateInProgress) {
			ae = &apiError{Code: CodeResourceConflict, Message: "The operation cannot be performed at this time. An update is in progress for resource: " + a.functionARN(name, "")}
			return ae
		}
		if e := change(f); e != nil {
			ae = e
			return e
		}
		if update {
			f.LastUpdateStatus = functions.UpdateInProgress
			f.LastUpdateStatusReason, f.LastUpdateStatusReasonCode = "", ""
		}
		return nil
	})
	if ae != nil {
		return nil, ae
	}
	if err != nil {
		return nil, a.storeError(name, err)
	}
	a.written(ctx)
	return f, nil
}

// updateFunctionConfiguration answers UpdateFunctionConfiguration.
func (a *API) updateFunctionConfiguration(c *manageCall) (int, any, *apiError) {
	if c.ref.Qualifier != "" {
		return 0, nil, invalidParam("UpdateFunctionConfiguration changes $LATEST; it takes no qualifier")
	}
	in, e := a.decodeInput(c.body)
	if e != nil {
		return 0, nil, e
	}
	if in.Code != nil || (in.Tags != nil && in.Nimbus == nil) || in.Publish {
		return 0, nil, invalidParam("UpdateFunctionConfiguration takes no Code, Tags or Publish")
	}
	if in.PackageType != "" {
		return 0, nil, invalidParam("UpdateFunctionConfiguration cannot change PackageType; create a new function with the other package type")
	}
	whole, e := in.nimbusSpec(c.ref.Name)
	if e != nil {
		return 0, nil, e
	}
	f, e := a.updateStored(c.r.Context(), c.ref.Name, in.RevisionID, true, func(f *functions.Function) *apiError {
		spec := f.Spec
		if whole != nil {
			if whole.IsImage() != spec.IsImage() {
				return invalidParam("Nimbus.Spec cannot change the package type of " + f.Name + "; create a new function with the other package type")
			}
			whole.Code = spec.Code
			spec = whole
		} else if e := a.apply(in, spec); e != nil {
			return e
		}
		out, e := canonicalize(spec)
		if e != nil {
			return e
		}
		f.Spec = out
		if in.Role != nil {
			f.Role = *in.Role
		}
		return nil
	})
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, a.describe(c.r.Context(), f.Name, catalog.Latest, f.Spec, f), nil
}

// updateFunctionCode answers UpdateFunctionCode.
func (a *API) updateFunctionCode(c *manageCall) (int, any, *apiError) {
	if c.ref.Qualifier != "" {
		return 0, nil, invalidParam("UpdateFunctionCode changes $LATEST; it takes no qualifier")
	}
	var in struct {
		ZipFile         []byte   `json:"ZipFile"`
		S3Bucket        string   `json:"S3Bucket"`
		S3Key           string   `json:"S3Key"`
		S3ObjectVersion string   `json:"S3ObjectVersion"`
		ImageURI        string   `json:"ImageUri"`
		Publish         bool     `json:"Publish"`
		DryRun          bool     `json:"DryRun"`
		RevisionID      string   `json:"RevisionId"`
		Architectures   []string `json:"Architectures"`
	}
	if err := json.Unmarshal(c.body, &in); err != nil {
		return 0, nil, &apiError{Code: CodeInvalidRequestContent, Message: "Could not parse request body into json: " + err.Error()}
	}
	switch {
	case in.S3Bucket != "" || in.S3Key != "" || in.S3ObjectVersion != "":
		return 0, nil, invalidParam("S3Bucket is not supported by Nimbus: upload the zip as ZipFile")
	case in.ImageURI != "" && len(in.ZipFile) > 0:
		return 0, nil, invalidParam("Please provide only one source for function code: ImageUri or ZipFile")
	}
	for _, arch := range in.Architectures {
		if arch != "x86_64" {
			return 0, nil, invalidParam("Architectures " + arch + " is not supported by Nimbus: functions run on x86_64 Nomad clients")
		}
	}
	ctx := c.r.Context()
	cur, e := a.stored(ctx, c.ref.Name, !in.DryRun)
	if e != nil {
		return 0, nil, e
	}
	curSpec := (*specs.Function)(nil)
	if cur != nil {
		curSpec = cur.Spec
	} else if fn, err := a.catalog.Function(ctx, c.ref.Name); err == nil {
		curSpec = fn.Latest()
	}
	if curSpec != nil {
		switch {
		case curSpec.IsImage() && in.ImageURI == "":
			return 0, nil, invalidParam("Please provide ImageUri when updating a function with packageType Image.")
		case !curSpec.IsImage() && in.ImageURI != "":
			return 0, nil, invalidParam("Please don't provide ImageUri when updating a function with packageType Zip.")
		}
	}
	if in.ImageURI != "" {
		return a.updateImage(c, cur, curSpec, in.ImageURI, in.RevisionID, in.Publish, in.DryRun)
	}
	if in.DryRun {
		// Validate without storing: the zip must be readable and in bounds.
		if len(in.ZipFile) == 0 {
			return 0, nil, invalidParam("ZipFile is required")
		}
		if len(in.ZipFile) > MaxZippedBytes {
			return 0, nil, &apiError{Code: CodeRequestTooLargeModelled, Message: "Zipped file size must be smaller than " + strconv.Itoa(MaxZippedBytes) + " bytes"}
		}
		if cur == nil {
			fn, _ := a.catalog.Function(ctx, c.ref.Name)
			return http.StatusOK, a.describe(ctx, c.ref.Name, catalog.Latest, fn.Latest(), nil), nil
		}
		return http.StatusOK, a.describe(ctx, cur.Name, catalog.Latest, cur.Spec, cur), nil
	}
	code, sum, e := a.storeCode(ctx, in.ZipFile)
	if e != nil {
		return 0, nil, e
	}
	f, e := a.updateStored(ctx, c.ref.Name, in.RevisionID, true, func(f *functions.Function) *apiError {
		f.Spec.Code = code
		f.CodeSHA256, f.CodeSize = sum, int64(len(in.ZipFile))
		return nil
	})
	if e != nil {
		return 0, nil, e
	}
	if in.Publish {
		v, e := a.publishStored(ctx, f, "", "")
		if e != nil {
			return 0, nil, e
		}
		return http.StatusOK, a.versionConfiguration(ctx, f, v), nil
	}
	return http.StatusOK, a.describe(ctx, f.Name, catalog.Latest, f.Spec, f), nil
}

// publishStored publishes a stored $LATEST (Publish=true, PublishVersion).
// codeSHA and revision are PublishVersion's preconditions ("" = none).
func (a *API) publishStored(ctx context.Context, f *functions.Function, description, codeSHA string) (*versions.Version, *apiError) {
	if f.CodeSHA256 == "" {
		return nil, invalidParam("$LATEST of " + f.Name + " has no stored code bundle to publish: upload its code with UpdateFunctionCode (or nimbus publish for spec functions)")
	}
	if codeSHA != "" && codeSHA != lambdaSHA(f.CodeSHA256) {
		return nil, &apiError{Code: CodeInvalidParameterValue, Message: "CodeSHA256 (" + codeSHA + ") is different from current CodeSHA256 in $LATEST (" + lambdaSHA(f.CodeSHA256) + "). Please try again with the CodeSHA256 in $LATEST."}
	}
	spec := f.Spec
	if len(spec.Layers) > 0 {
		lvs, err := a.opts.Manage.Versions.ResolveLayers(ctx, spec.Runtime, spec.Layers)
		if err != nil {
			return nil, invalidParam(err.Error())
		}
		pinned := make([]string, len(lvs))
		for i, lv := range lvs {
			pinned[i] = lv.Layer + ":" + strconv.Itoa(lv.Number)
		}
		spec = f.Clone().Spec
		spec.Layers = pinned
	}
	v, _, err := a.opts.Manage.Versions.Publish(ctx, f.Name, versions.Snapshot{Spec: spec, CodeSHA256: f.CodeSHA256, Description: description})
	if err != nil {
		if errors.Is(err, versions.ErrInvalid) {
			return nil, invalidParam(err.Error())
		}
		return nil, serviceErr("publishing", err)
	}
	a.written(ctx)
	return v, nil
}

// getFunction answers GetFunction.
func (a *API) getFunction(c *manageCall) (int, any, *apiError) {
	ctx := c.r.Context()
	fn, res, e := a.manageLookup(ctx, c.ref)
	if e != nil {
		return 0, nil, e
	}
	var stored *functions.Function
	if a.opts.Manage != nil {
		stored, _ = a.opts.Manage.Functions.Get(ctx, fn.Name)
	}
	var cfg *functionConfiguration
	sum := ""
	if res.Version == catalog.Latest {
		spec := res.Spec
		if stored != nil {
			spec = stored.Spec
			sum = stored.CodeSHA256
		}
		cfg = a.describe(ctx, fn.Name, res.Version, spec, stored)
	} else {
		cfg = a.describePublished(ctx, fn.Name, res.Version, res.Spec)
	}
	if sum == "" && res.Spec.Code != nil {
		sum = strings.TrimPrefix(res.Spec.Code.Checksum, "sha256:")
	}
	code := map[string]string{"RepositoryType": "S3", "Location": ""}
	if spec := codeSpec(res, stored); spec.IsImage() {
		// Lambda's shape for an image: the URI as given and its digest.
		code = map[string]string{"RepositoryType": "ECR", "ImageUri": spec.Code.Image, "ResolvedImageUri": spec.Code.PinnedImage()}
	} else if sum != "" {
		code["Location"] = a.codeLocation(c.r.Host, sum)
	}
	out := map[string]any{"Configuration": cfg, "Code": code}
	if rc := fn.ReservedConcurrency(); rc != nil {
		out["Concurrency"] = map[string]int{"ReservedConcurrentExecutions": *rc}
	}
	if tags := fn.Latest(); tags != nil && len(tags.Tags) > 0 {
		out["Tags"] = tags.Tags
	}
	return http.StatusOK, out, nil
}

// codeSpec is the spec whose code GetFunction describes: the stored $LATEST
// when the request is for it, else the resolved version's.
func codeSpec(res *catalog.Resolution, stored *functions.Function) *specs.Function {
	if res.Version == catalog.Latest && stored != nil {
		return stored.Spec
	}
	return res.Spec
}

func (a *API) codeLocation(host, sum string) string {
	if a.opts.Manage != nil && a.opts.Manage.CodeLocation != nil {
		return a.opts.Manage.CodeLocation(host, sum)
	}
	return a.opts.Scheme + "://" + host + artifacts.Path + sum + ".zip"
}

// getFunctionConfiguration answers GetFunctionConfiguration.
func (a *API) getFunctionConfiguration(c *manageCall) (int, any, *apiError) {
	st, out, e := a.getFunction(c)
	if e != nil {
		return 0, nil, e
	}
	return st, out.(map[string]any)["Configuration"], nil
}

// deleteFunction answers DeleteFunction: the whole function with its
// versions and aliases, or one version with Qualifier.
func (a *API) deleteFunction(c *manageCall) (int, any, *apiError) {
	ctx := c.r.Context()
	name := c.ref.Name
	if _, _, e := a.manageLookup(ctx, &functionRef{Name: name}); e != nil {
		return 0, nil, e
	}
	vs := a.opts.Manage.Versions
	if q := c.ref.Qualifier; q != "" && q != catalog.Latest {
		n, err := strconv.Atoi(q)
		if err != nil {
			return 0, nil, invalidParam("Deletion of aliases is not supported by DeleteFunction; use DeleteAlias")
		}
		err = vs.DeleteVersion(ctx, name, n)
		if err == nil {
			err = a.remove(ctx, name, []string{q})
		}
		switch {
		case errors.Is(err, versions.ErrVersionInUse):
			return 0, nil, &apiError{Code: CodeResourceConflict, Message: err.Error()}
		case errors.Is(err, versions.ErrNotFound):
			return 0, nil, a.functionNotFound(name, q)
		case err != nil:
			return 0, nil, serviceErr("deleting the version", err)
		}
		return http.StatusNoContent, nil, nil
	}
	if where := a.declared(name); where != "" {
		return 0, nil, &apiError{Code: CodeResourceConflict, Message: "Function " + name + " is declared in " + where + "; remove it there"}
	}
	// Provisioned configs go first: a function created again under this
	// name must not inherit them.
	pcs, err := vs.ProvisionedConfigs(ctx, name)
	if err != nil {
		return 0, nil, serviceErr("reading provisioned concurrency configs", err)
	}
	for _, pc := range pcs {
		if err := vs.DeleteProvisioned(ctx, name, pc.Qualifier); err != nil && !errors.Is(err, versions.ErrNotFound) {
			return 0, nil, serviceErr("deleting the provisioned concurrency config of "+pc.Qualifier, err)
		}
	}
	aliases, err := vs.Aliases(ctx, name)
	if err != nil {
		return 0, nil, serviceErr("reading aliases", err)
	}
	for _, al := range aliases {
		if err := vs.DeleteAlias(ctx, name, al.Name); err != nil && !errors.Is(err, versions.ErrNotFound) {
			return 0, nil, serviceErr("deleting alias "+al.Name, err)
		}
	}
	published, err := vs.Versions(ctx, name)
	if err != nil {
		return 0, nil, serviceErr("reading versions", err)
	}
	for _, v := range published {
		if err := vs.DeleteVersion(ctx, name, v.Number); err != nil && !errors.Is(err, versions.ErrNotFound) {
			return 0, nil, serviceErr("deleting version "+v.Name(), err)
		}
	}
	if err := vs.ForgetVersions(ctx, name); err != nil {
		return 0, nil, serviceErr("resetting the version numbers", err)
	}
	if err := a.opts.Manage.Functions.Delete(ctx, name, ""); err != nil && !errors.Is(err, functions.ErrNotFound) {
		return 0, nil, a.storeError(name, err)
	}
	gone := []string{catalog.Latest}
	for _, v := range published {
		gone = append(gone, v.Name())
	}
	if err := a.remove(ctx, name, gone); err != nil {
		return 0, nil, serviceErr("taking the function out of service", err)
	}
	a.written(ctx)
	return http.StatusNoContent, nil, nil
}

func (a *API) remove(ctx context.Context, name string, versions []string) error {
	if a.opts.Manage.Remove == nil {
		return nil
	}
	return a.opts.Manage.Remove(ctx, name, versions)
}

func (a *API) declared(name string) string {
	if a.opts.Manage.Declared == nil {
		return ""
	}
	return a.opts.Manage.Declared(name)
}

// lambdaSHA is Lambda's CodeSha256: the digest in base64, not hex.
func lambdaSHA(hexSum string) string {
	b, err := hex.DecodeString(hexSum)
	if err != nil || len(b) != sha256.Size {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// lambdaTime is Lambda's LastModified format.
func lambdaTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000-0700")
}

// describe is the FunctionConfiguration of $LATEST (stored may be nil for
// a function no API call has written).
func (a *API) describe(ctx context.Context, name, version string, spec *specs.Function, stored *functions.Function) *functionConfiguration {
	c := a.configuration(name, version, spec)
	c.Layers = a.layerConfigs(ctx, spec)
	if stored == nil {
		sum := ""
		if spec.Code != nil {
			sum = strings.TrimPrefix(spec.Code.Checksum, "sha256:")
		}
		c.CodeSha256 = lambdaSHA(sum)
		if raw, err := specs.Encode(spec); err == nil {
			h := sha256.Sum256(raw)
			c.RevisionID = hex.EncodeToString(h[:16])
		}
		return c
	}
	c.Role = stored.Role
	c.CodeSha256 = lambdaSHA(stored.CodeSHA256)
	c.CodeSize = stored.CodeSize
	c.RevisionID = stored.RevisionID
	c.LastModified = lambdaTime(stored.LastModified)
	c.State, c.StateReason, c.StateReasonCode = stored.State, stored.StateReason, stored.StateReasonCode
	c.LastUpdateStatus, c.LastUpdateStatusReason, c.LastUpdateStatusReasonCode = stored.LastUpdateStatus, stored.LastUpdateStatusReason, stored.LastUpdateStatusReasonCode
	return c
}

// describePublished is the FunctionConfiguration of a published version.
func (a *API) describePublished(ctx context.Context, name, version string, spec *specs.Function) *functionConfiguration {
	c := a.configuration(name, version, spec)
	c.Layers = a.layerConfigs(ctx, spec)
	if a.opts.Manage == nil {
		return c
	}
	n, err := strconv.Atoi(version)
	if err != nil {
		return c
	}
	v, err := a.opts.Manage.Versions.Version(ctx, name, n)
	if err != nil {
		return c
	}
	return a.versionConfigurationFrom(c, v)
}

func (a *API) versionConfiguration(ctx context.Context, f *functions.Function, v *versions.Version) *functionConfiguration {
	c := a.describe(ctx, f.Name, v.Name(), v.Spec, f)
	c.State, c.StateReason, c.StateReasonCode = functions.StateActive, "", ""
	c.LastUpdateStatus, c.LastUpdateStatusReason, c.LastUpdateStatusReasonCode = functions.UpdateSuccessful, "", ""
	return a.versionConfigurationFrom(c, v)
}

func (a *API) versionConfigurationFrom(c *functionConfiguration, v *versions.Version) *functionConfiguration {
	c.Version = v.Name()
	c.FunctionArn = a.functionARN(v.Function, v.Name())
	c.CodeSha256 = lambdaSHA(v.CodeSHA256)
	c.LastModified = lambdaTime(v.Created)
	c.Description = v.Description
	h := sha256.Sum256([]byte(v.Function + "/" + v.Name() + "/" + v.ConfigHash + v.CodeSHA256))
	c.RevisionID = hex.EncodeToString(h[:16])
	return c
}

// layerConfigs are the function's layers as Lambda lists them.
func (a *API) layerConfigs(ctx context.Context, spec *specs.Function) []layerConfig {
	if len(spec.Layers) == 0 || a.opts.Manage == nil {
		return nil
	}
	lvs, err := a.opts.Manage.Versions.ResolveLayers(ctx, spec.Runtime, spec.Layers)
	if err != nil {
		return nil
	}
	out := make([]layerConfig, len(lvs))
	for i, lv := range lvs {
		out[i] = layerConfig{Arn: a.layerVersionARN(lv.Layer, lv.Number), CodeSize: lv.Size}
	}
	return out
}

type layerConfig struct {
	Arn      string `json:"Arn"`
	CodeSize int64  `json:"CodeSize"`
}

func (a *API) layerVersionARN(name string, n int) string {
	return "arn:aws:lambda:" + a.opts.Region + ":" + a.opts.AccountID + ":layer:" + name + ":" + strconv.Itoa(n)
}

// listPage applies ListFunctions' Marker and MaxItems to a sorted list.
func listPage[T any](items []T, key func(T) string, marker string, maxItems int) ([]T, string) {
	start := 0
	if marker != "" {
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > marker })
	}
	end := min(start+maxItems, len(items))
	next := ""
	if end < len(items) {
		next = key(items[end-1])
	}
	return items[start:end], next
}

// manageLookup is lookup for management operations: a function created
// through the API but not in service yet (Pending, or Failed at create)
// is found too, as its stored $LATEST, as Lambda answers for a Pending
// function.
func (a *API) manageLookup(ctx context.Context, ref *functionRef) (*catalog.Function, *catalog.Resolution, *apiError) {
	fn, res, e := a.lookup(ctx, ref)
	if e == nil || e.Code != CodeResourceNotFound || a.opts.Manage == nil || (ref.Qualifier != "" && ref.Qualifier != catalog.Latest) {
		return fn, res, e
	}
	if ref.Region != "" && ref.Region != a.opts.Region || ref.Account != "" && ref.Account != a.opts.AccountID {
		return fn, res, e
	}
	f, err := a.opts.Manage.Functions.Get(ctx, ref.Name)
	if err != nil {
		return fn, res, e
	}
	fn = &catalog.Function{Name: f.Name, Versions: map[string]*specs.Function{catalog.Latest: f.Spec}, Aliases: map[string]*specs.Alias{}}
	return fn, &catalog.Resolution{Qualifier: ref.Qualifier, Version: catalog.Latest, Spec: f.Spec}, nil
}

// pendingConflict is Lambda's answer to invoking a function that is not
// in service yet; nil when the store does not hold the function.
func (a *API) pendingConflict(ctx context.Context, name string) *apiError {
	if a.opts.Manage == nil {
		return nil
	}
	f, err := a.opts.Manage.Functions.Get(ctx, name)
	if err != nil {
		return nil
	}
	state := f.State
	if state == functions.StateActive {
		state = functions.StatePending // stored, not yet in this gateway's catalog
	}
	return &apiError{Code: CodeResourceConflict, Message: "The operation cannot be performed at this time. The function is currently in the following state: " + state}
}
