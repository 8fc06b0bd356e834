package taskconfig

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// DriverName is the name jobs use in `driver = "nimbus"`.
const DriverName = "nimbus"

// Initialization types, as Lambda names them in AWS_LAMBDA_INITIALIZATION_TYPE.
const (
	InitOnDemand    = "on-demand"
	InitProvisioned = "provisioned-concurrency"
)

// Networks an environment can have.
const (
	NetworkHost = "host"
	NetworkNone = "none"
)

// Defaults applied by Normalize.
const (
	DefaultMemoryMB     = 128
	DefaultTimeout      = 3 * time.Second
	DefaultEnvironments = 1
	DefaultRegion       = "us-east-1"
	DefaultAccountID    = "000000000000"
	DefaultPortLabel    = "invoke"
)

// Limits shared by the compiler's validation and the driver's.
const (
	MinMemoryMB     = 128
	MaxMemoryMB     = 10240
	MaxTimeout      = 900 * time.Second
	MaxEnvironments = 64
	MaxLayers       = 5
)

// TaskConfig is the task's `config {}` block. The hcl tags name the HCL
// attributes; the json tags the same names in Nomad's JSON job form.
type TaskConfig struct {
	// Function is the function's name. Required.
	Function string `hcl:"function" json:"function" codec:"function"`
	// Version is "$LATEST" or a published version number. Default: "$LATEST".
	Version string `hcl:"version,optional" json:"version,omitempty" codec:"version"`
	// Runtime is "provided", "provided.al2", "provided.al2023", "python3.x"
	// or "nodejsNN.x". Required for zip functions; must be empty for image
	// functions (the image carries its runtime).
	Runtime string `hcl:"runtime" json:"runtime" codec:"runtime"`
	// Handler is the handler string (`module.function` for python, `file.function`
	// for node; ignored by provided runtimes).
	Handler string `hcl:"handler,optional" json:"handler,omitempty" codec:"handler"`
	// CodeDir is the function code directory, relative to the task directory
	// (where the code artifact was unpacked). Default: "local/code" for zip
	// functions; must be empty for image functions.
	CodeDir string `hcl:"code_dir,optional" json:"code_dir,omitempty" codec:"code_dir"`
	// LayerDirs are the unpacked layers in order (low to high priority), relative
	// to the task directory. At most MaxLayers.
	LayerDirs []string `hcl:"layer_dirs,optional" json:"layer_dirs,omitempty" codec:"layer_dirs"`
	// CodeURL and CodeSHA256 name the function's code bundle (a zip over
	// http or https and its hex sha256) that the driver fetches into its
	// client-wide bundle cache, instead of an artifact block unpacking it
	// into code_dir for every allocation. Set both or neither; exclusive
	// with an explicit code_dir.
	CodeURL    string `hcl:"code_url,optional" json:"code_url,omitempty" codec:"code_url"`
	CodeSHA256 string `hcl:"code_sha256,optional" json:"code_sha256,omitempty" codec:"code_sha256"`
	// LayerURLs and LayerSHA256s are the layer bundles the same way, in
	// layer order, pairwise; exclusive with layer_dirs.
	LayerURLs    []string `hcl:"layer_urls,optional" json:"layer_urls,omitempty" codec:"layer_urls"`
	LayerSHA256s []string `hcl:"layer_sha256s,optional" json:"layer_sha256s,omitempty" codec:"layer_sha256s"`
	// Image makes this an image function (Lambda's PackageType Image): a
	// digest-pinned reference (registry/repo@sha256:…) the driver pulls into
	// its image cache; the environment's root is the image's filesystem.
	// Tags are refused (the compiler pins them). Excludes code_dir,
	// layer_dirs, runtime and handler.
	Image string `hcl:"image,optional" json:"image,omitempty" codec:"image"`
	// ImageEntrypoint, ImageCommand and ImageWorkingDirectory override the
	// image's ENTRYPOINT, CMD and WORKDIR, each on its own (Lambda's
	// ImageConfig). Only with Image.
	ImageEntrypoint       []string `hcl:"image_entrypoint,optional" json:"image_entrypoint,omitempty" codec:"image_entrypoint"`
	ImageCommand          []string `hcl:"image_command,optional" json:"image_command,omitempty" codec:"image_command"`
	ImageWorkingDirectory string   `hcl:"image_working_directory,optional" json:"image_working_directory,omitempty" codec:"image_working_directory"`
	// MemoryMB is the memory of one execution environment. Default: 128.
	MemoryMB int `hcl:"memory_mb,optional" json:"memory_mb,omitempty" codec:"memory_mb"`
	// Timeout is the invocation timeout as a Go duration string. Default: "3s".
	Timeout string `hcl:"timeout,optional" json:"timeout,omitempty" codec:"timeout"`
	// EphemeralStorageMB is the size of each environment's /tmp. Default: 512.
	EphemeralStorageMB int `hcl:"ephemeral_storage_mb,optional" json:"ephemeral_storage_mb,omitempty" codec:"ephemeral_storage_mb"`
	// Environments is the number of execution environments one instance hosts
	// (started lazily). Default: 1.
	Environments int `hcl:"environments,optional" json:"environments,omitempty" codec:"environments"`
	// InitializationType is "on-demand" or "provisioned-concurrency"; the
	// latter starts every environment at once. Default: "on-demand".
	InitializationType string `hcl:"initialization_type,optional" json:"initialization_type,omitempty" codec:"initialization_type"`
	// InvokePort is the label of the network port the invoke endpoint binds. Default: "invoke".
	InvokePort string `hcl:"invoke_port,optional" json:"invoke_port,omitempty" codec:"invoke_port"`
	// InvokeSecretFile is the file, relative to the task directory, that
	// holds the secret gateways authenticate to the invoke endpoint with
	// (surrounding white space is ignored). The compiler renders it from a
	// Nomad Variable into the task's secrets dir with a template, so the
	// secret is never part of the job; the driver reads it when the task
	// starts. Without ConnectService, exactly one of InvokeSecretFile and
	// InvokeSecret is required; with it, neither is allowed.
	InvokeSecretFile string `hcl:"invoke_secret_file,optional" json:"invoke_secret_file,omitempty" codec:"invoke_secret_file"`
	// InvokeSecret is the secret itself, in clear in the job. Jobs compiled
	// before InvokeSecretFile existed carry it; the compiler no longer
	// writes it.
	InvokeSecret string `hcl:"invoke_secret,optional" json:"invoke_secret,omitempty" codec:"invoke_secret"`
	// ConnectService, when set, makes the invoke endpoint a Consul
	// Connect-native service of that name (the job's service block says
	// `connect { native = true }`): the instance fetches the service's leaf
	// certificate from the Consul agent Nomad names in the task's
	// environment (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT, …),
	// serves the endpoint over TLS, and takes invocations only from callers
	// whose client certificate Consul's intentions allow to reach this
	// service. It replaces the invoke secret: mutual TLS authenticates the
	// gateway, so InvokeSecretFile and InvokeSecret must be empty. Default:
	// empty (plain HTTP with the secret).
	ConnectService string `hcl:"connect_service,optional" json:"connect_service,omitempty" codec:"connect_service"`
	// RunAs is the user the function runs as. Default: the driver's
	// configured default, else a dedicated uid per environment.
	RunAs string `hcl:"run_as,optional" json:"run_as,omitempty" codec:"run_as"`
	// AllowRoot lets RunAs resolve to root; the driver's plugin config must
	// allow it too (allow_root). Even then the function has no capabilities.
	AllowRoot bool `hcl:"allow_root,optional" json:"allow_root,omitempty" codec:"allow_root"`
	// Network is "host" (the Nomad client's network) or "none" (each
	// environment in a network namespace of its own with only loopback;
	// needs the sandbox). Default (empty): "host"; left empty by Normalize
	// so that jobs of host-network functions stay as they were.
	Network string `hcl:"network,optional" json:"network,omitempty" codec:"network"`
	// Region and AccountID make up the function's ARN. Defaults: "us-east-1", "000000000000".
	Region    string `hcl:"region,optional" json:"region,omitempty" codec:"region"`
	AccountID string `hcl:"account_id,optional" json:"account_id,omitempty" codec:"account_id"`
}

// Attribute names other packages read from a compiled job's config.
const (
	AttrCodeURL      = "code_url"
	AttrCodeSHA256   = "code_sha256"
	AttrLayerURLs    = "layer_urls"
	AttrLayerSHA256s = "layer_sha256s"
	// AttrConnectService is Config.ConnectService: set, the job is
	// Connect-native and reads no invoke secret.
	AttrConnectService = "connect_service"
)

// ErrInvalid wraps every validation error Normalize returns.
var ErrInvalid = errors.New("invalid task config")

// Normalize fills defaults and validates the config.
func (c *TaskConfig) Normalize() error {
	if c.Version == "" {
		c.Version = "$LATEST"
	}
	var errs []string
	switch {
	case c.Image != "":
		if c.CodeURL != "" || c.CodeSHA256 != "" || len(c.LayerURLs) > 0 {
			errs = append(errs, "code_url, code_sha256 and layer_urls must be empty for an image function")
		}
	case c.CodeURL == "" && c.CodeSHA256 == "" && c.CodeDir == "":
		c.CodeDir = "local/code"
	case c.CodeURL != "" && c.CodeDir != "":
		errs = append(errs, "set one of code_url and code_dir, not both")
	case (c.CodeURL == "") != (c.CodeSHA256 == ""):
		errs = append(errs, "code_url and code_sha256 go together")
	}
	switch {
	case len(c.LayerURLs) != len(c.LayerSHA256s):
		errs = append(errs, fmt.Sprintf("%d layer_urls but %d layer_sha256s", len(c.LayerURLs), len(c.LayerSHA256s)))
	case len(c.LayerURLs) > 0 && len(c.LayerDirs) > 0:
		errs = append(errs, "set one of layer_urls and layer_dirs, not both")
	}
	for _, u := range append([]string{c.CodeURL}, c.LayerURLs...) {
		if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Sprintf("bundle URL %q is not http or https", u))
		}
	}
	for _, h := range append([]string{c.CodeSHA256}, c.LayerSHA256s...) {
		if h != "" && !isSHA256(h) {
			errs = append(errs, fmt.Sprintf("bundle sha256 %q is not 64 hex digits", h))
		}
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	if c.Timeout == "" {
		c.Timeout = DefaultTimeout.String()
	}
	if c.EphemeralStorageMB == 0 {
		c.EphemeralStorageMB = 512
	}
	if c.Environments == 0 {
		c.Environments = DefaultEnvironments
	}
	if c.InitializationType == "" {
		c.InitializationType = InitOnDemand
	}
	if c.InvokePort == "" {
		c.InvokePort = DefaultPortLabel
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.AccountID == "" {
		c.AccountID = DefaultAccountID
	}
	if c.Function == "" {
		errs = append(errs, "function is required")
	}
	if c.Image == "" {
		if c.Runtime == "" {
			errs = append(errs, "runtime is required")
		}
		if len(c.ImageEntrypoint)+len(c.ImageCommand) > 0 || c.ImageWorkingDirectory != "" {
			errs = append(errs, "image_entrypoint, image_command and image_working_directory need image")
		}
	} else {
		errs = append(errs, imageErrors(c)...)
	}
	switch {
	case c.ConnectService != "" && (c.InvokeSecret != "" || c.InvokeSecretFile != ""):
		errs = append(errs, "connect_service replaces the invoke secret: set neither invoke_secret_file nor invoke_secret with it")
	case c.ConnectService != "" && !validServiceName(c.ConnectService):
		errs = append(errs, fmt.Sprintf("connect_service %q is not a service name (letters, digits and '-', at most 63)", c.ConnectService))
	case c.ConnectService != "":
	case c.InvokeSecret == "" && c.InvokeSecretFile == "":
		errs = append(errs, "invoke_secret_file is required (or invoke_secret, in jobs compiled before it existed)")
	case c.InvokeSecret != "" && c.InvokeSecretFile != "":
		errs = append(errs, "set one of invoke_secret_file and invoke_secret, not both")
	case c.InvokeSecretFile != "" && (filepath.IsAbs(c.InvokeSecretFile) || !filepath.IsLocal(c.InvokeSecretFile)):
		errs = append(errs, fmt.Sprintf("invoke_secret_file %q must be a path inside the task directory, relative to it", c.InvokeSecretFile))
	}
	if c.MemoryMB < MinMemoryMB || c.MemoryMB > MaxMemoryMB {
		errs = append(errs, fmt.Sprintf("memory_mb %d is outside %d..%d", c.MemoryMB, MinMemoryMB, MaxMemoryMB))
	}
	if d, err := time.ParseDuration(c.Timeout); err != nil {
		errs = append(errs, fmt.Sprintf("timeout %q is not a duration", c.Timeout))
	} else if d <= 0 || d > MaxTimeout {
		errs = append(errs, fmt.Sprintf("timeout %s is outside 1ms..%s", d, MaxTimeout))
	}
	if c.Environments < 1 || c.Environments > MaxEnvironments {
		errs = append(errs, fmt.Sprintf("environments %d is outside 1..%d", c.Environments, MaxEnvironments))
	}
	if n := max(len(c.LayerDirs), len(c.LayerURLs)); n > MaxLayers {
		errs = append(errs, fmt.Sprintf("%d layers given, at most %d allowed", n, MaxLayers))
	}
	if c.Network != "" && c.Network != NetworkHost && c.Network != NetworkNone {
		errs = append(errs, fmt.Sprintf("network %q is not %q or %q", c.Network, NetworkHost, NetworkNone))
	}
	switch c.InitializationType {
	case InitOnDemand, InitProvisioned:
	default:
		errs = append(errs, fmt.Sprintf("initialization_type %q is not %q or %q", c.InitializationType, InitOnDemand, InitProvisioned))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// validServiceName reports whether s is a DNS label, as Consul service
// names (and their SPIFFE IDs) must be.
func validServiceName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// IsImage reports whether the task runs an image function.
func (c *TaskConfig) IsImage() bool { return c.Image != "" }

// imageErrors checks an image function's attributes.
func imageErrors(c *TaskConfig) []string {
	var errs []string
	repo, digest, ok := strings.Cut(c.Image, "@")
	hex, isSHA := strings.CutPrefix(digest, "sha256:")
	if !ok || repo == "" || !isSHA || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		errs = append(errs, fmt.Sprintf("image %q must be pinned by digest (registry/repository@sha256:<64 hex>)", c.Image))
	}
	if c.Runtime != "" {
		errs = append(errs, "runtime must be empty for an image function (the image carries its runtime)")
	}
	if c.Handler != "" {
		errs = append(errs, "handler must be empty for an image function (use image_command)")
	}
	if c.CodeDir != "" {
		errs = append(errs, "code_dir must be empty for an image function")
	}
	if len(c.LayerDirs) > 0 {
		errs = append(errs, "layer_dirs must be empty for an image function (Lambda: no layers for container images)")
	}
	if len(c.ImageEntrypoint) > 0 && !strings.HasPrefix(c.ImageEntrypoint[0], "/") {
		errs = append(errs, fmt.Sprintf("image_entrypoint[0] %q must be an absolute path", c.ImageEntrypoint[0]))
	}
	if c.ImageWorkingDirectory != "" && !strings.HasPrefix(c.ImageWorkingDirectory, "/") {
		errs = append(errs, fmt.Sprintf("image_working_directory %q must be an absolute path", c.ImageWorkingDirectory))
	}
	return errs
}

// TimeoutDuration returns the parsed timeout; call Normalize first.
func (c *TaskConfig) TimeoutDuration() time.Duration {
	d, err := time.ParseDuration(c.Timeout)
	if err != nil {
		return DefaultTimeout
	}
	return d
}

// Attribute describes one attribute of the block for schema builders (the
// driver's TaskConfigSchema and the compiler both walk this list).
type Attribute struct {
	Name     string
	Type     string // "string", "number", "bool", "list(string)"
	Required bool
}

// Schema lists the block's attributes in a fixed order.
func Schema() []Attribute {
	return []Attribute{
		{"function", "string", true},
		{"version", "string", false},
		{"runtime", "string", false},
		{"handler", "string", false},
		{"code_dir", "string", false},
		{"layer_dirs", "list(string)", false},
		{"code_url", "string", false},
		{"code_sha256", "string", false},
		{"layer_urls", "list(string)", false},
		{"layer_sha256s", "list(string)", false},
		{"image", "string", false},
		{"image_entrypoint", "list(string)", false},
		{"image_command", "list(string)", false},
		{"image_working_directory", "string", false},
		{"memory_mb", "number", false},
		{"timeout", "string", false},
		{"ephemeral_storage_mb", "number", false},
		{"environments", "number", false},
		{"initialization_type", "string", false},
		{"invoke_port", "string", false},
		{"invoke_secret_file", "string", false},
		{"invoke_secret", "string", false},
		{"connect_service", "string", false},
		{"run_as", "string", false},
		{"allow_root", "bool", false},
		{"network", "string", false},
		{"region", "string", false},
		{"account_id", "string", false},
	}
}
