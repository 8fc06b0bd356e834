package specs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // timezones validate the same on every machine

	"github.com/hashicorp/cronexpr"
	"github.com/hashicorp/hcl/v2"

	"github.com/nimbus-fn/nimbus/specs/filter"
	"github.com/nimbus-fn/nimbus/specs/schedexpr"
)

// Lambda's limits (lambda-semantics.md §0, §2.5, §4, §5, §6, §7).
const (
	minMemoryMB            = 128
	maxMemoryMB            = 10240
	minTimeout             = time.Second
	maxTimeout             = 900 * time.Second
	minEphemeralMB         = 512
	maxEphemeralMB         = 10240
	maxEnvironmentBytes    = 4096
	maxLayers              = 5
	maxEnvironmentsPerInst = 64
	maxDescription         = 256
	maxAsyncRetries        = 2
	minEventAge            = 60 * time.Second
	maxEventAge            = 6 * time.Hour
	maxBatchSize           = 10000
	maxBatchingWindow      = 300 * time.Second
	maxRetryAttempts       = 10000
	minRecordAge           = 60 * time.Second
	maxRecordAge           = 7 * 24 * time.Hour
	minMaximumConcurrency  = 2
	maxMaximumConcurrency  = 1000
	// Lambda's ParallelizationFactor range (Kinesis, DynamoDB streams).
	minParallelizationFactor = 1
	maxParallelizationFactor = 10
	maxFilters               = 5
	maxCORSOrigins           = 100
	maxCORSOriginLen         = 253
	maxCORSMethods           = 6
	maxCORSMethodLen         = 6
	maxCORSHeaders           = 100
	maxCORSHeaderLen         = 1024
	maxCORSMaxAge            = 86400
	maxCompatibleRuntimes    = 15
	maxTagKey                = 128
	maxTagValue              = 256
	maxNomadPriority         = 100
	maxNomadVariablePathLen  = 128
	maxImageURI              = 2048 // not Lambda's number: ECR URIs are shorter; a bound all the same
	maxImageConfigItems      = 1500
	maxImageWorkingDir       = 1000
)

const (
	imageHost     = `[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?`
	imageRegistry = `(?:localhost(?::[0-9]{1,5})?|` + imageHost + `(?:\.` + imageHost + `)+(?::[0-9]{1,5})?|` + imageHost + `:[0-9]{1,5}|\[[0-9A-Fa-f:]+\](?::[0-9]{1,5})?)`
	imagePathPart = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	imagePath     = imagePathPart + `(?:/` + imagePathPart + `)*`
)

var (
	functionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	layerNameRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	aliasNameRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	sourceNameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	scheduleNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	envKeyRE       = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	versionRE      = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
	runtimeRE      = regexp.MustCompile(`^(provided|provided\.al2|provided\.al2023|python3\.[0-9]{1,2}|nodejs[0-9]{2}\.x)$`)
	checksumRE     = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// imageRefRE is an OCI image reference with an explicit registry host
	// (a name with a dot or a port, or localhost) and a tag, a digest or
	// both: host[:port]/path[:tag][@sha256:hex].
	imageRefRE = regexp.MustCompile(`^` + imageRegistry + `/` + imagePath + `(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)
	// ImageDigestRE matches a reference pinned to a manifest digest.
	ImageDigestRE  = regexp.MustCompile(`^` + imageRegistry + `/` + imagePath + `(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$`)
	nomadVarPathRE = regexp.MustCompile(`^[A-Za-z0-9_~/-]+$`)
	headerNameRE   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	methodRE       = regexp.MustCompile(`^[A-Z]+$`)
	kafkaTopicRE   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
)

// reservedEnv are the variables the platform sets itself (§1.8); a spec may
// not override them.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true, "AWS_LAMBDA_LOG_GROUP_NAME": true,
	"AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true, "AWS_ACCESS_KEY_ID": true,
	"AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true, "AWS_LAMBDA_RUNTIME_API": true,
	"LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true, "_LAMBDA_SERVER_PORT": true,
}

var nomadOperators = []string{"=", "!=", ">", ">=", "<", "<=", "regexp", "set_contains",
	"set_contains_any", "set_contains_all", "version", "semver", "is_set", "is_not_set",
	"distinct_hosts", "distinct_property"}

// validator checks the model against Lambda's limits. It knows nothing of
// HCL syntax: it reports by path, and ranges (when the model came from
// Parse) turn paths into file:line:col.
type validator struct {
	diags  hcl.Diagnostics
	ranges ranges
}

func (v *validator) report(sev hcl.DiagnosticSeverity, p path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d := &hcl.Diagnostic{Severity: sev, Summary: msg, Subject: v.ranges.lookup(p)}
	if d.Subject == nil && len(p) > 0 {
		d.Summary = p.String() + ": " + msg
	}
	v.diags = append(v.diags, d)
}

func (v *validator) errorf(p path, format string, args ...any) {
	v.report(hcl.DiagError, p, format, args...)
}

func (v *validator) warnf(p path, format string, args ...any) {
	v.report(hcl.DiagWarning, p, format, args...)
}

// Validate checks a File already in the model (for instance one built by
// hand or decoded from JSON): every function and layer against Lambda's
// limits, then the references between them. Diagnostics have no source
// ranges; their summaries start with the path of the offending value.
func Validate(f *File) hcl.Diagnostics {
	v := &validator{}
	v.file(f)
	return v.diags
}

func (v *validator) file(f *File) {
	for _, l := range f.Layers {
		v.layer(l)
	}
	for _, fn := range f.Functions {
		v.function(fn)
	}
	v.references(f)
}

func (v *validator) function(fn *Function) {
	p := path{}.block("function", fn.Name)
	if !functionNameRE.MatchString(fn.Name) {
		v.errorf(p, "function name %q must be 1–64 letters, digits, hyphens or underscores", fn.Name)
	}
	v.description(p, fn.Description)
	if fn.IsImage() {
		v.image(p, fn)
	} else {
		if fn.Runtime == "" {
			v.errorf(p.attr("runtime"), "runtime is missing; use provided.al2023, python3.N or nodejsNN.x (or package the function as code { image = \"…\" })")
		} else {
			v.runtime(p.attr("runtime"), fn.Runtime, "runtime")
		}
		if fn.ImageConfig != nil {
			v.errorf(p.attr("image_config"), "image_config applies to container images only; set code { image = \"…\" } or remove image_config")
		}
	}
	switch {
	case fn.IsImage():
	case strings.HasPrefix(fn.Runtime, "python"), strings.HasPrefix(fn.Runtime, "nodejs"):
		if fn.Handler == "" {
			v.errorf(p.attr("runtime"), "runtime %s needs a handler such as \"%s\"", fn.Runtime, exampleHandler(fn.Runtime))
		} else if i := strings.LastIndex(fn.Handler, "."); i <= 0 || i == len(fn.Handler)-1 {
			v.errorf(p.attr("handler"), "handler %q must be \"<file>.<function>\", for example %q", fn.Handler, exampleHandler(fn.Runtime))
		}
	}
	v.code(p.attr("code"), fn.Code)
	v.build(p.attr("build"), fn)

	if len(fn.Layers) > maxLayers {
		v.errorf(p.attr("layers").index(maxLayers), "a function may use at most %d layers; this one lists %d", maxLayers, len(fn.Layers))
	}
	seenLayer := map[string]bool{}
	for i, ref := range fn.Layers {
		name, version, hasVersion := strings.Cut(ref, ":")
		switch {
		case !layerNameRE.MatchString(name) || hasVersion && !versionRE.MatchString(version):
			v.errorf(p.attr("layers").index(i), "layer reference %q must be \"name\" or \"name:version\" with a positive version number", ref)
		case seenLayer[name]:
			v.errorf(p.attr("layers").index(i), "layer %q is listed twice", name)
		}
		seenLayer[name] = true
	}

	if fn.MemoryMB < minMemoryMB || fn.MemoryMB > maxMemoryMB {
		v.errorf(p.attr("memory_mb"), "memory_mb must be between %d and %d; got %d", minMemoryMB, maxMemoryMB, fn.MemoryMB)
	}
	if d, ok := v.duration(p.attr("timeout"), "timeout", fn.Timeout); ok {
		switch {
		case d < minTimeout || d > maxTimeout:
			v.errorf(p.attr("timeout"), "timeout must be between 1s and 900s (15m); got %s", fn.Timeout)
		case d%time.Second != 0:
			v.errorf(p.attr("timeout"), "timeout must be a whole number of seconds; got %s", fn.Timeout)
		}
	}
	if fn.EphemeralStorageMB < minEphemeralMB || fn.EphemeralStorageMB > maxEphemeralMB {
		v.errorf(p.attr("ephemeral_storage_mb"), "ephemeral_storage_mb must be between %d and %d; got %d", minEphemeralMB, maxEphemeralMB, fn.EphemeralStorageMB)
	}
	if fn.EnvironmentsPerInstance < 1 || fn.EnvironmentsPerInstance > maxEnvironmentsPerInst {
		v.errorf(p.attr("environments_per_instance"), "environments_per_instance must be between 1 and %d; got %d", maxEnvironmentsPerInst, fn.EnvironmentsPerInstance)
	}
	switch fn.Network {
	case "", NetworkHost, NetworkNone:
	default:
		v.errorf(p.attr("network"), "network must be %q (the default) or %q; got %q", NetworkHost, NetworkNone, fn.Network)
	}
	v.environment(p, fn)
	if fn.ReservedConcurrency != nil && *fn.ReservedConcurrency < 0 {
		v.errorf(p.attr("reserved_concurrency"), "reserved_concurrency must be 0 (throttled) or more; got %d", *fn.ReservedConcurrency)
	}
	v.provisioned(p, fn)
	v.url(p, fn)
	v.async(p, fn)
	for _, es := range fn.EventSources {
		v.eventSource(p.block("event_source", es.Name), es)
	}
	for _, a := range fn.Aliases {
		v.alias(p.block("alias", a.Name), a)
	}
	v.placement(p.attr("placement"), fn.Placement)
	for _, k := range sortedKeys(fn.Tags) {
		if k == "" || len(k) > maxTagKey || len(fn.Tags[k]) > maxTagValue {
			v.errorf(p.attr("tags").key(k), "tag keys must be 1–%d characters and values at most %d", maxTagKey, maxTagValue)
		}
	}
}

func exampleHandler(runtime string) string {
	if strings.HasPrefix(runtime, "python") {
		return "app.handler"
	}
	return "index.handler"
}

func (v *validator) description(p path, s string) {
	if len(s) > maxDescription {
		v.errorf(p.attr("description"), "description may be at most %d characters; this one has %d", maxDescription, len(s))
	}
}

func (v *validator) runtime(p path, rt, what string) {
	if rt == "" {
		v.errorf(p, "%s is missing; use provided.al2023, python3.N or nodejsNN.x", what)
	} else if !runtimeRE.MatchString(rt) {
		v.errorf(p, "%s %q is not supported; use provided, provided.al2, provided.al2023, python3.N or nodejsNN.x", what, rt)
	}
}

// image checks what an image function may and may not set: Lambda has no
// runtime, handler or layers for PackageType Image.
func (v *validator) image(p path, fn *Function) {
	if fn.Runtime != "" {
		v.errorf(p.attr("runtime"), "a container image function has no runtime (the image carries it); remove runtime")
	}
	if fn.Handler != "" {
		v.errorf(p.attr("handler"), "a container image function has no handler; set image_config { command = [%q] } to override the image's CMD", fn.Handler)
	}
	if len(fn.Layers) > 0 {
		v.errorf(p.attr("layers"), "a container image function cannot use layers (as in Lambda); build their contents into the image")
	}
	ic := fn.ImageConfig
	if ic == nil {
		return
	}
	ip := p.attr("image_config")
	if len(ic.Entrypoint) > maxImageConfigItems {
		v.errorf(ip.attr("entrypoint"), "entrypoint may have at most %d items; got %d", maxImageConfigItems, len(ic.Entrypoint))
	}
	if len(ic.Command) > maxImageConfigItems {
		v.errorf(ip.attr("command"), "command may have at most %d items; got %d", maxImageConfigItems, len(ic.Command))
	}
	if len(ic.Entrypoint) > 0 && !strings.HasPrefix(ic.Entrypoint[0], "/") {
		v.errorf(ip.attr("entrypoint").index(0), "entrypoint's first item is the program to run, an absolute path such as \"/lambda-entrypoint.sh\"; got %q", ic.Entrypoint[0])
	}
	if wd := ic.WorkingDirectory; wd != "" {
		switch {
		case len(wd) > maxImageWorkingDir:
			v.errorf(ip.attr("working_directory"), "working_directory may be at most %d characters; this one has %d", maxImageWorkingDir, len(wd))
		case !strings.HasPrefix(wd, "/") || filepath.Clean(wd) != wd:
			v.errorf(ip.attr("working_directory"), "working_directory %q must be a clean absolute path such as \"/var/task\"", wd)
		}
	}
}

func (v *validator) code(p path, c *Code) {
	if c == nil {
		v.errorf(p, "code is missing; set exactly one of dir, zip, url or image")
		return
	}
	n := 0
	for _, s := range []string{c.Dir, c.Zip, c.URL, c.Image} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		v.errorf(p, "code must set exactly one of dir, zip, url or image; %d are set", n)
	}
	if c.Image != "" {
		switch {
		case len(c.Image) > maxImageURI:
			v.errorf(p.attr("image"), "image reference may be at most %d characters; this one has %d", maxImageURI, len(c.Image))
		case !imageRefRE.MatchString(c.Image) || !strings.ContainsAny(c.Image[strings.LastIndex(c.Image, "/"):], ":@"):
			v.errorf(p.attr("image"), "image %q must be a reference with a registry host and a tag or digest: \"registry.example/team/fn:tag\" or \"registry.example/team/fn@sha256:<hex>\"", c.Image)
		case c.Checksum != "":
			v.errorf(p.attr("checksum"), "an image is pinned by its digest (image = \"…@sha256:<hex>\"); remove checksum")
		}
	}
	if c.ResolvedImage != "" && (c.Image == "" || !ImageDigestRE.MatchString(c.ResolvedImage)) {
		v.errorf(p.attr("resolved_image"), "resolved_image %q must be a digest-pinned reference of code.image", c.ResolvedImage)
	}
	if c.Zip != "" && !strings.HasSuffix(strings.ToLower(c.Zip), ".zip") {
		v.errorf(p.attr("zip"), "zip %q must name a .zip file", c.Zip)
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil || u.Host == "" || !slices.Contains([]string{"http", "https", "s3", "gcs"}, u.Scheme):
			v.errorf(p.attr("url"), "url %q must be an absolute http, https, s3 or gcs URL", c.URL)
		case c.Checksum == "":
			v.errorf(p.attr("url"), "code fetched from a url needs checksum = \"sha256:<hex>\"")
		}
	}
	if c.Checksum != "" && !checksumRE.MatchString(c.Checksum) {
		v.errorf(p.attr("checksum"), "checksum must be \"sha256:\" followed by 64 lowercase hex digits")
	}
}

func (v *validator) build(p path, fn *Function) {
	b := fn.Build
	if b == nil {
		return
	}
	switch {
	case fn.IsImage():
		v.errorf(p, "a container image function has no build block; build the image with nimbus build --image (or your own pipeline)")
	case fn.Code != nil && fn.Code.Dir == "" && (fn.Code.Zip != "" || fn.Code.URL != ""):
		v.errorf(p, "a build block needs code { dir = … }; zip and url code is packaged as it is")
	}
	switch {
	case b.Skip && (b.Command != "" || b.Output != ""):
		v.errorf(p.attr("skip"), "skip = true turns the build off; remove command and output, or skip")
	case !b.Skip && strings.TrimSpace(b.Command) == "":
		v.errorf(p, "build needs command = \"…\" (a shell command run in the code directory), or skip = true to package the code directory as it is")
	}
	if b.Output != "" && !filepath.IsLocal(b.Output) {
		v.errorf(p.attr("output"), "output %q must be a relative path inside the code directory", b.Output)
	}
}

func (v *validator) environment(p path, fn *Function) {
	size := 0
	for _, k := range sortedKeys(fn.Environment) {
		size += len(k) + len(fn.Environment[k])
		switch {
		case !envKeyRE.MatchString(k):
			v.errorf(p.attr("environment").key(k), "environment variable name %q must start with a letter and hold only letters, digits and underscores", k)
		case reservedEnv[k]:
			v.errorf(p.attr("environment").key(k), "environment variable %s is reserved; the platform sets it", k)
		}
	}
	if size > maxEnvironmentBytes {
		v.errorf(p.attr("environment"), "environment variables take %d bytes; Lambda allows at most %d in total", size, maxEnvironmentBytes)
	}
	for _, s := range fn.Secrets {
		sp := p.block("secret", s.Env)
		switch {
		case !envKeyRE.MatchString(s.Env):
			v.errorf(sp, "secret environment variable name %q must start with a letter and hold only letters, digits and underscores", s.Env)
		case reservedEnv[s.Env]:
			v.errorf(sp, "environment variable %s is reserved; the platform sets it", s.Env)
		}
		if _, clash := fn.Environment[s.Env]; clash {
			v.errorf(sp, "%s is set both in environment and as a secret; keep one", s.Env)
		}
		if len(s.Path) > maxNomadVariablePathLen || !nomadVarPathRE.MatchString(s.Path) || strings.HasPrefix(s.Path, "/") || strings.HasSuffix(s.Path, "/") || strings.Contains(s.Path, "//") {
			v.errorf(sp.attr("path"), "path %q is not a Nomad Variable path: use letters, digits, -, _, ~ and / (not at either end), at most %d characters", s.Path, maxNomadVariablePathLen)
		}
		if s.Key == "" {
			v.errorf(sp.attr("key"), "key must name an item of the Nomad Variable")
		}
	}
}

func (v *validator) provisioned(fp path, fn *Function) {
	pc := fn.Provisioned
	if pc == nil {
		return
	}
	p := fp.attr("provisioned_concurrency")
	switch {
	case pc.Min < 0:
		v.errorf(p.attr("min"), "min must be 0 or more; got %d", pc.Min)
	case pc.Max < pc.Min:
		v.errorf(p.attr("max"), "max (%d) must be at least min (%d)", pc.Max, pc.Min)
	case pc.Max < 1:
		v.errorf(p, "provisioned_concurrency needs max (or min) of at least 1")
	}
	if fn.ReservedConcurrency != nil && pc.Max > *fn.ReservedConcurrency {
		v.errorf(p.attr("max"), "provisioned concurrency (%d) cannot exceed reserved_concurrency (%d)", pc.Max, *fn.ReservedConcurrency)
	}
	if pc.TargetUtilization <= 0 || pc.TargetUtilization > 1 {
		v.errorf(p.attr("target_utilization"), "target_utilization must be more than 0 and at most 1; got %g", pc.TargetUtilization)
	}
	for _, s := range pc.Schedules {
		sp := p.block("schedule", s.Name)
		if !scheduleNameRE.MatchString(s.Name) {
			v.errorf(sp, "schedule name %q must be 1–64 letters, digits, hyphens or underscores", s.Name)
		}
		if err := checkCron(s.Cron); err != nil {
			v.errorf(sp.attr("cron"), "cron %q is not a valid cron expression: %v", s.Cron, err)
		}
		if d, ok := v.duration(sp.attr("duration"), "duration", s.Duration); ok && d <= 0 {
			v.errorf(sp.attr("duration"), "duration must be positive; got %s", s.Duration)
		}
		if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "" || s.Timezone == "Local" {
			v.errorf(sp.attr("timezone"), "timezone %q is not an IANA time zone such as \"Europe/Berlin\"", s.Timezone)
		}
		switch {
		case s.Min < 0:
			v.errorf(sp.attr("min"), "min must be 0 or more; got %d", s.Min)
		case s.Min > pc.Max:
			v.errorf(sp.attr("min"), "schedule min (%d) is above provisioned_concurrency max (%d)", s.Min, pc.Max)
		}
	}
}

// checkCron accepts what Nomad's periodic scheduler (hashicorp/cronexpr)
// accepts: 5 fields, 6 (with year, like Lambda's cron()) or 7 (with seconds).
func checkCron(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return fmt.Errorf("empty")
	}
	_, err := cronexpr.Parse(expr)
	return err
}

func (v *validator) url(fp path, fn *Function) {
	u := fn.URL
	if u == nil {
		return
	}
	p := fp.attr("url")
	if u.Auth != AuthNone && u.Auth != AuthIAM {
		v.errorf(p.attr("auth"), "auth must be \"NONE\" or \"AWS_IAM\"; got %q", u.Auth)
	}
	if u.InvokeMode != InvokeModeBuffered && u.InvokeMode != InvokeModeResponseStream {
		v.errorf(p.attr("invoke_mode"), "invoke_mode must be \"BUFFERED\" or \"RESPONSE_STREAM\"; got %q", u.InvokeMode)
	}
	if u.Qualifier != QualifierLatest && !slices.ContainsFunc(fn.Aliases, func(a *Alias) bool { return a.Name == u.Qualifier }) {
		v.errorf(p.attr("qualifier"), "qualifier %q must be \"$LATEST\" or an alias of function %q", u.Qualifier, fn.Name)
	}
	if c := u.CORS; c != nil {
		v.cors(p.attr("cors"), c)
	}
}

func (v *validator) cors(p path, c *CORS) {
	if len(c.AllowOrigins) > maxCORSOrigins {
		v.errorf(p.attr("allow_origins"), "allow_origins may hold at most %d origins; got %d", maxCORSOrigins, len(c.AllowOrigins))
	}
	for i, o := range c.AllowOrigins {
		ip := p.attr("allow_origins").index(i)
		if o == "*" {
			if c.AllowCredentials {
				v.errorf(ip, "allow_origins \"*\" cannot be combined with allow_credentials = true; browsers reject it, list the origins instead")
			}
			continue
		}
		if len(o) > maxCORSOriginLen {
			v.errorf(ip, "origin is %d characters; at most %d are allowed", len(o), maxCORSOriginLen)
			continue
		}
		if !validOrigin(o) {
			v.errorf(ip, "origin %q must be \"*\" or scheme://host[:port] with no path, such as \"https://example.com\"", o)
		}
	}
	v.noDuplicates(p.attr("allow_origins"), "allow_origins", c.AllowOrigins, strings.ToLower)

	if len(c.AllowMethods) > maxCORSMethods {
		v.errorf(p.attr("allow_methods").index(maxCORSMethods), "allow_methods may hold at most %d methods; got %d", maxCORSMethods, len(c.AllowMethods))
	}
	for i, m := range c.AllowMethods {
		if m != "*" && (len(m) > maxCORSMethodLen || !methodRE.MatchString(m)) {
			v.errorf(p.attr("allow_methods").index(i), "method %q must be \"*\" or an upper-case HTTP method of at most %d letters such as \"GET\" (preflight OPTIONS is answered for you)", m, maxCORSMethodLen)
		}
	}
	v.noDuplicates(p.attr("allow_methods"), "allow_methods", c.AllowMethods, strings.ToUpper)

	for _, list := range []struct {
		name   string
		values []string
	}{{"allow_headers", c.AllowHeaders}, {"expose_headers", c.ExposeHeaders}} {
		if len(list.values) > maxCORSHeaders {
			v.errorf(p.attr(list.name), "%s may hold at most %d headers; got %d", list.name, maxCORSHeaders, len(list.values))
		}
		for i, h := range list.values {
			if h != "*" && (len(h) > maxCORSHeaderLen || !headerNameRE.MatchString(h)) {
				v.errorf(p.attr(list.name).index(i), "header %q must be \"*\" or a header name of at most %d characters", h, maxCORSHeaderLen)
			}
		}
		v.noDuplicates(p.attr(list.name), list.name, list.values, strings.ToLower)
	}
	if c.MaxAge < 0 || c.MaxAge > maxCORSMaxAge {
		v.errorf(p.attr("max_age"), "max_age must be between 0 and %d seconds; got %d", maxCORSMaxAge, c.MaxAge)
	}
}

func validOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return false
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

func (v *validator) noDuplicates(p path, name string, values []string, fold func(string) string) {
	seen := map[string]bool{}
	for i, s := range values {
		k := fold(s)
		if seen[k] {
			v.errorf(p.index(i), "%s lists %q twice", name, s)
		}
		seen[k] = true
	}
}

func (v *validator) async(fp path, fn *Function) {
	a := fn.Async
	if a == nil {
		return
	}
	p := fp.attr("async")
	if a.MaxRetries < 0 || a.MaxRetries > maxAsyncRetries {
		v.errorf(p.attr("max_retries"), "max_retries must be between 0 and %d; got %d", maxAsyncRetries, a.MaxRetries)
	}
	if d, ok := v.duration(p.attr("max_event_age"), "max_event_age", a.MaxEventAge); ok && (d < minEventAge || d > maxEventAge) {
		v.errorf(p.attr("max_event_age"), "max_event_age must be between 60s and 6h; got %s", a.MaxEventAge)
	}
	v.destination(p.attr("on_success"), a.OnSuccess)
	v.destination(p.attr("on_failure"), a.OnFailure)
	v.destination(p.attr("dead_letter"), a.DeadLetter)
}

func (v *validator) destination(p path, d *Destination) {
	if d == nil {
		return
	}
	n := 0
	for _, s := range []string{d.Function, d.NATS, d.Kafka, d.Webhook} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		v.errorf(p, "a destination must set exactly one of function, nats, kafka or webhook; %d are set", n)
		return
	}
	switch {
	case d.Function != "":
		name, qual, hasQual := strings.Cut(d.Function, ":")
		if !functionNameRE.MatchString(name) || hasQual && qual != QualifierLatest && !versionRE.MatchString(qual) && !validAliasName(qual) {
			v.errorf(p.attr("function"), "function %q must be \"name\" or \"name:qualifier\" (a version, alias or $LATEST)", d.Function)
		}
	case d.NATS != "":
		if !validNATSSubject(d.NATS) {
			v.errorf(p.attr("nats"), "nats subject %q must be dot-separated tokens without spaces or wildcards", d.NATS)
		}
	case d.Kafka != "":
		if !kafkaTopicRE.MatchString(d.Kafka) || d.Kafka == "." || d.Kafka == ".." {
			v.errorf(p.attr("kafka"), "kafka topic %q must be 1–249 letters, digits, '.', '_' or '-'", d.Kafka)
		}
	case d.Webhook != "":
		u, err := url.Parse(d.Webhook)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.errorf(p.attr("webhook"), "webhook %q must be an absolute http or https URL", d.Webhook)
		}
	}
}

func validNATSSubject(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n*>") {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return false
		}
	}
	return true
}

func validAliasName(s string) bool {
	if !aliasNameRE.MatchString(s) {
		return false
	}
	_, err := strconv.Atoi(s)
	return err != nil
}

func (v *validator) eventSource(p path, es *EventSource) {
	if !sourceNameRE.MatchString(es.Name) {
		v.errorf(p, "event source name %q must be 1–64 letters, digits, hyphens or underscores", es.Name)
	}
	// Settings that mean nothing for a type are rejected rather than ignored.
	for _, s := range unusedSettings(es) {
		v.errorf(p.attr(s), "%s is not used by event sources of type %q", s, es.Type)
	}
	switch es.Type {
	case SourceSchedule:
		v.scheduleSource(p, es)
		return
	case SourceNATS:
		if es.Stream == "" {
			v.errorf(p, "event source of type \"nats\" needs stream (a JetStream stream name)")
		}
		if es.Subject != "" && strings.ContainsAny(es.Subject, " \t\r\n") {
			v.errorf(p.attr("subject"), "subject %q must not contain whitespace", es.Subject)
		}
		if es.ParallelizationFactor != 0 {
			v.errorf(p.attr("parallelization_factor"), "parallelization_factor does not apply to nats: an ordered (limits) stream already runs each subject as its own ordered unit, in parallel up to maximum_concurrency, and a work-queue stream has no order to keep")
		}
	case SourceKafka:
		if es.URL == "" {
			v.errorf(p, "event source of type \"kafka\" needs url (bootstrap servers, host:port[,host:port])")
		}
		if len(es.Topics) == 0 {
			v.errorf(p, "event source of type \"kafka\" needs topics")
		}
		for i, t := range es.Topics {
			if !kafkaTopicRE.MatchString(t) || t == "." || t == ".." {
				v.errorf(p.attr("topics").index(i), "kafka topic %q must be 1–249 letters, digits, '.', '_' or '-'", t)
			}
		}
	case SourceRedis:
		if es.URL == "" {
			v.errorf(p, "event source of type \"redis\" needs url (redis://host:port)")
		} else if !strings.HasPrefix(es.URL, "redis://") && !strings.HasPrefix(es.URL, "rediss://") {
			v.errorf(p.attr("url"), "url of a redis event source must start with redis:// or rediss://")
		}
		if es.Stream == "" {
			v.errorf(p, "event source of type \"redis\" needs stream (the stream key)")
		}
	case SourceRabbitMQ:
		if es.URL == "" {
			v.errorf(p, "event source of type \"rabbitmq\" needs url (amqp://host:5672/vhost)")
		} else if !strings.HasPrefix(es.URL, "amqp://") && !strings.HasPrefix(es.URL, "amqps://") {
			v.errorf(p.attr("url"), "url of a rabbitmq event source must start with amqp:// or amqps://")
		}
		if es.Queue == "" {
			v.errorf(p, "event source of type \"rabbitmq\" needs queue (the queue to consume)")
		}
	default:
		v.errorf(p.attr("type"), "event source type %q is not supported; use \"nats\", \"kafka\", \"redis\", \"rabbitmq\" or \"schedule\"", es.Type)
		return
	}
	if es.Type != SourceRabbitMQ {
		switch es.StartingFrom {
		case "LATEST", "TRIM_HORIZON":
			if es.StartingTimestamp != "" {
				v.errorf(p.attr("starting_position_timestamp"), "starting_position_timestamp needs starting_position = \"AT_TIMESTAMP\"")
			}
		case "AT_TIMESTAMP":
			if es.StartingTimestamp == "" {
				v.errorf(p.attr("starting_position"), "starting_position \"AT_TIMESTAMP\" needs starting_position_timestamp (RFC 3339, e.g. \"2026-01-02T15:04:05Z\")")
			} else if _, err := time.Parse(time.RFC3339, es.StartingTimestamp); err != nil {
				v.errorf(p.attr("starting_position_timestamp"), "starting_position_timestamp %q is not an RFC 3339 time such as \"2026-01-02T15:04:05Z\"", es.StartingTimestamp)
			}
		default:
			v.errorf(p.attr("starting_position"), "starting_position must be \"LATEST\", \"TRIM_HORIZON\" or \"AT_TIMESTAMP\"; got %q", es.StartingFrom)
		}
	}
	if es.BatchSize < 1 || es.BatchSize > maxBatchSize {
		v.errorf(p.attr("batch_size"), "batch_size must be between 1 and %d; got %d", maxBatchSize, es.BatchSize)
	}
	if d, ok := v.duration(p.attr("maximum_batching_window"), "maximum_batching_window", es.MaximumBatchingWindow); ok && (d < 0 || d > maxBatchingWindow) {
		v.errorf(p.attr("maximum_batching_window"), "maximum_batching_window must be between 0s and 300s; got %s", es.MaximumBatchingWindow)
	}
	if r := es.MaximumRetryAttempts; r != nil && (*r < -1 || *r > maxRetryAttempts) {
		v.errorf(p.attr("maximum_retry_attempts"), "maximum_retry_attempts must be -1 (retry until the record expires) or between 0 and %d; got %d", maxRetryAttempts, *r)
	}
	if es.MaximumRecordAge != "" {
		if d, ok := v.duration(p.attr("maximum_record_age"), "maximum_record_age", es.MaximumRecordAge); ok && (d < minRecordAge || d > maxRecordAge) {
			v.errorf(p.attr("maximum_record_age"), "maximum_record_age must be between 60s and 168h (7 days), or unset for no limit; got %s", es.MaximumRecordAge)
		}
	}
	if c := es.MaximumConcurrency; c != 0 && (c < minMaximumConcurrency || c > maxMaximumConcurrency) {
		v.errorf(p.attr("maximum_concurrency"), "maximum_concurrency must be between %d and %d (or unset); got %d", minMaximumConcurrency, maxMaximumConcurrency, c)
	}
	if f := es.ParallelizationFactor; f != 0 && (f < minParallelizationFactor || f > maxParallelizationFactor) {
		v.errorf(p.attr("parallelization_factor"), "parallelization_factor must be between %d and %d (or unset); got %d", minParallelizationFactor, maxParallelizationFactor, f)
	}
	if len(es.Filters) > maxFilters {
		v.errorf(p.attr("filters"), "at most %d filters are allowed; got %d", maxFilters, len(es.Filters))
	}
	for i, f := range es.Filters {
		if _, err := filter.Compile(f); err != nil {
			var fe *filter.Error
			if errors.As(err, &fe) && fe.Offset > 0 {
				v.errorf(p.attr("filters").index(i), "%v (at byte %d of the pattern)", err, fe.Offset)
			} else {
				v.errorf(p.attr("filters").index(i), "%v", err)
			}
		}
	}
	v.destination(p.attr("on_failure"), es.OnFailure)
}

func (v *validator) scheduleSource(p path, es *EventSource) {
	s := es.Schedule
	if s == "" {
		v.errorf(p, "event source of type \"schedule\" needs schedule, such as \"rate(5 minutes)\" or \"cron(0 12 * * ? *)\"")
	} else if err := schedexpr.Validate(s); err != nil {
		v.errorf(p.attr("schedule"), "%v", err)
	}
	if es.Input != "" && !json.Valid([]byte(es.Input)) {
		v.errorf(p.attr("input"), "input must be a JSON document")
	}
}

// unusedSettings names the settings of es that its type does not use.
func unusedSettings(es *EventSource) []string {
	set := map[string]bool{
		"url":                            es.URL != "",
		"stream":                         es.Stream != "",
		"subject":                        es.Subject != "",
		"topics":                         len(es.Topics) > 0,
		"queue":                          es.Queue != "",
		"starting_position_timestamp":    es.StartingTimestamp != "",
		"group":                          es.Group != "",
		"schedule":                       es.Schedule != "",
		"input":                          es.Input != "",
		"starting_position":              es.StartingFrom != "",
		"batch_size":                     es.BatchSize != 1,
		"maximum_batching_window":        es.MaximumBatchingWindow != "",
		"maximum_retry_attempts":         es.MaximumRetryAttempts != nil,
		"maximum_record_age":             es.MaximumRecordAge != "",
		"bisect_batch_on_function_error": es.BisectBatchOnFunctionError,
		"report_batch_item_failures":     es.ReportBatchItemFailures,
		"maximum_concurrency":            es.MaximumConcurrency != 0,
		"parallelization_factor":         es.ParallelizationFactor != 0,
		"filters":                        len(es.Filters) > 0,
		"on_failure":                     es.OnFailure != nil,
	}
	var unused []string
	switch es.Type {
	case SourceSchedule:
		unused = []string{"url", "stream", "subject", "topics", "queue", "group", "starting_position", "starting_position_timestamp", "batch_size",
			"maximum_batching_window", "maximum_retry_attempts", "maximum_record_age",
			"bisect_batch_on_function_error", "report_batch_item_failures", "maximum_concurrency", "parallelization_factor", "filters", "on_failure"}
	case SourceNATS:
		unused = []string{"topics", "queue", "schedule", "input"}
	case SourceKafka:
		unused = []string{"stream", "subject", "queue", "schedule", "input"}
	case SourceRedis:
		unused = []string{"subject", "topics", "queue", "schedule", "input"}
	case SourceRabbitMQ:
		unused = []string{"stream", "subject", "topics", "group", "starting_position", "starting_position_timestamp", "schedule", "input", "parallelization_factor"}
	}
	var out []string
	for _, s := range unused {
		if set[s] {
			out = append(out, s)
		}
	}
	return out
}

func (v *validator) alias(p path, a *Alias) {
	if !validAliasName(a.Name) || a.Name == QualifierLatest {
		v.errorf(p, "alias name %q must be 1–128 letters, digits, hyphens or underscores and not only digits", a.Name)
	}
	v.description(p, a.Description)
	if a.Version != QualifierLatest && !versionRE.MatchString(a.Version) {
		v.errorf(p.attr("version"), "version %q must be a published version number such as \"3\" (or \"$LATEST\"); aliases cannot point at aliases", a.Version)
	}
	if len(a.Routing) == 0 {
		return
	}
	rp := p.attr("routing")
	if a.Version == QualifierLatest {
		v.errorf(rp, "weighted routing needs published versions; alias %q points at $LATEST", a.Name)
	}
	if len(a.Routing) > 1 {
		v.errorf(rp, "an alias routes to at most one additional version; alias %q routes to %d", a.Name, len(a.Routing))
	}
	total := 0.0
	for _, ver := range sortedKeys(a.Routing) {
		w := a.Routing[ver]
		switch {
		case !versionRE.MatchString(ver):
			v.errorf(rp.key(ver), "routing version %q must be a published version number", ver)
		case ver == a.Version:
			v.errorf(rp.key(ver), "routing version %s is the alias's own version; route to a different version", ver)
		case w < 0 || w > 1:
			v.errorf(rp.key(ver), "routing weight for version %s must be between 0 and 1; got %g", ver, w)
		}
		total += w
	}
	if len(a.Routing) > 1 && total > 1 {
		v.errorf(rp, "routing weights add up to %g; they must not exceed 1 (the alias's version gets the rest)", total)
	}
}

func (v *validator) placement(p path, pl *Placement) {
	if pl == nil {
		return
	}
	for i, dc := range pl.Datacenters {
		if strings.TrimSpace(dc) == "" {
			v.errorf(p.attr("datacenters").index(i), "datacenter names must not be empty")
		}
	}
	if pl.Priority != 0 && (pl.Priority < 1 || pl.Priority > maxNomadPriority) {
		v.errorf(p.attr("priority"), "priority must be between 1 and %d; got %d", maxNomadPriority, pl.Priority)
	}
	for i, c := range pl.Constraints {
		cp := p.attr("constraint").index(i)
		if !slices.Contains(nomadOperators, c.Operator) {
			v.errorf(cp.attr("operator"), "operator %q is not a Nomad constraint operator; use one of %s", c.Operator, strings.Join(nomadOperators, ", "))
			continue
		}
		if c.Attribute == "" && c.Operator != "distinct_hosts" {
			v.errorf(cp, "constraint needs attribute, such as \"${attr.kernel.name}\"")
		}
		needsValue := !slices.Contains([]string{"is_set", "is_not_set", "distinct_hosts", "distinct_property"}, c.Operator)
		if needsValue && c.Value == "" {
			v.errorf(cp, "constraint with operator %q needs value", c.Operator)
		}
		if c.Operator == "regexp" {
			if _, err := regexp.Compile(c.Value); err != nil {
				v.errorf(cp.attr("value"), "value is not a valid regular expression: %v", err)
			}
		}
	}
}

func (v *validator) layer(l *Layer) {
	p := path{}.block("layer", l.Name)
	if !layerNameRE.MatchString(l.Name) {
		v.errorf(p, "layer name %q must be 1–64 letters, digits, hyphens or underscores", l.Name)
	}
	v.description(p, l.Description)
	v.code(p.attr("code"), l.Code)
	if l.Code != nil && l.Code.Image != "" {
		v.errorf(p.attr("code").attr("image"), "a layer cannot be a container image; use dir, zip or url")
	}
	if len(l.CompatibleRuntimes) > maxCompatibleRuntimes {
		v.errorf(p.attr("compatible_runtimes"), "compatible_runtimes may list at most %d runtimes; got %d", maxCompatibleRuntimes, len(l.CompatibleRuntimes))
	}
	for i, rt := range l.CompatibleRuntimes {
		v.runtime(p.attr("compatible_runtimes").index(i), rt, "compatible runtime")
	}
	v.noDuplicates(p.attr("compatible_runtimes"), "compatible_runtimes", l.CompatibleRuntimes, func(s string) string { return s })
}

// duration parses a model duration; a malformed one is reported.
func (v *validator) duration(p path, name, s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	if err != nil {
		v.errorf(p, "%s %q is not a duration such as \"30s\"", name, s)
		return 0, false
	}
	return d, true
}

// references checks what points from one block to another: layers used by
// functions and functions used as destinations.
func (v *validator) references(f *File) {
	layers := map[string]*Layer{}
	for _, l := range f.Layers {
		layers[l.Name] = l
	}
	functions := map[string]*Function{}
	for _, fn := range f.Functions {
		functions[fn.Name] = fn
	}
	for _, fn := range f.Functions {
		p := path{}.block("function", fn.Name)
		for i, ref := range fn.Layers {
			name, _, _ := strings.Cut(ref, ":")
			l, ok := layers[name]
			if !ok {
				v.errorf(p.attr("layers").index(i), "layer %q is not declared; add a layer %q { } block%s", name, name, suggest(name, sortedKeys(layers)))
				continue
			}
			if len(l.CompatibleRuntimes) > 0 && !slices.Contains(l.CompatibleRuntimes, fn.Runtime) {
				v.warnf(p.attr("layers").index(i), "layer %q does not list runtime %s in compatible_runtimes", name, fn.Runtime)
			}
		}
		check := func(dp path, d *Destination) {
			if d == nil || d.Function == "" {
				return
			}
			name, qual, hasQual := strings.Cut(d.Function, ":")
			target, ok := functions[name]
			switch {
			case !ok:
				v.errorf(dp.attr("function"), "destination function %q is not declared%s", name, suggest(name, sortedKeys(functions)))
			case name == fn.Name:
				v.errorf(dp.attr("function"), "function %q cannot be its own destination; that would loop", name)
			case hasQual && validAliasName(qual) && !slices.ContainsFunc(target.Aliases, func(a *Alias) bool { return a.Name == qual }):
				v.errorf(dp.attr("function"), "function %q has no alias %q", name, qual)
			}
		}
		if a := fn.Async; a != nil {
			ap := p.attr("async")
			check(ap.attr("on_success"), a.OnSuccess)
			check(ap.attr("on_failure"), a.OnFailure)
			check(ap.attr("dead_letter"), a.DeadLetter)
		}
		for _, es := range fn.EventSources {
			check(p.block("event_source", es.Name).attr("on_failure"), es.OnFailure)
		}
	}
}

// suggest offers the closest known name, if one is close enough.
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist && d < len(name) {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// CheckEventSource fills the defaults Parse would for an event source of
// function fn and validates it on its own (the management API's
// CreateEventSourceMapping uses it). The error lists every problem, each
// starting with the setting's name.
func CheckEventSource(fn string, es *EventSource) error {
	f := &Function{Name: fn, EventSources: []*EventSource{es}}
	applyEventSourceDefaults(f)
	v := &validator{}
	name := es.Name
	if name == "" {
		es.Name = "mapping" // API mappings are named by UUID
	}
	v.eventSource(path{}, es)
	es.Name = name
	var msgs []string
	for _, d := range v.diags {
		if d.Severity == hcl.DiagError {
			msgs = append(msgs, d.Summary)
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}
