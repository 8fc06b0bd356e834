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
	// Runtime is "provided", "provided.al2", "provided.al2023", "python3.x" or "nodejsNN.x". Required.
	Runtime string `hcl:"runtime" json:"runtime" codec:"runtime"`
	// Handler is the handler string (`module.function` for python, `file.function`
	// for node; ignored by provided runtimes).
	Handler string `hcl:"handler,optional" json:"handler,omitempty" codec:"handler"`
	// CodeDir is the function code directory, relative to the task directory
	// (where the code artifact was unpacked). Default: "local/code".
	CodeDir string `hcl:"code_dir,optional" json:"code_dir,omitempty" codec:"code_dir"`
	// LayerDirs are the unpacked layers in order (low to high priority), relative
	// to the task directory. At most MaxLayers.
	LayerDirs []string `hcl:"layer_dirs,optional" json:"layer_dirs,omitempty" codec:"layer_dirs"`
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
	// starts. Exactly one of InvokeSecretFile and InvokeSecret is required.
	InvokeSecretFile string `hcl:"invoke_secret_file,optional" json:"invoke_secret_file,omitempty" codec:"invoke_secret_file"`
	// InvokeSecret is the secret itself, in clear in the job. Jobs compiled
	// before InvokeSecretFile existed carry it; the compiler no longer
	// writes it.
	InvokeSecret string `hcl:"invoke_secret,optional" json:"invoke_secret,omitempty" codec:"invoke_secret"`
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

// ErrInvalid wraps every validation error Normalize returns.
var ErrInvalid = errors.New("invalid task config")

// Normalize fills defaults and validates the config.
func (c *TaskConfig) Normalize() error {
	if c.Version == "" {
		c.Version = "$LATEST"
	}
	if c.CodeDir == "" {
		c.CodeDir = "local/code"
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
	var errs []string
	if c.Function == "" {
		errs = append(errs, "function is required")
	}
	if c.Runtime == "" {
		errs = append(errs, "runtime is required")
	}
	switch {
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
	if len(c.LayerDirs) > MaxLayers {
		errs = append(errs, fmt.Sprintf("%d layers given, at most %d allowed", len(c.LayerDirs), MaxLayers))
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
		{"runtime", "string", true},
		{"handler", "string", false},
		{"code_dir", "string", false},
		{"layer_dirs", "list(string)", false},
		{"memory_mb", "number", false},
		{"timeout", "string", false},
		{"ephemeral_storage_mb", "number", false},
		{"environments", "number", false},
		{"initialization_type", "string", false},
		{"invoke_port", "string", false},
		{"invoke_secret_file", "string", false},
		{"invoke_secret", "string", false},
		{"run_as", "string", false},
		{"allow_root", "bool", false},
		{"network", "string", false},
		{"region", "string", false},
		{"account_id", "string", false},
	}
}
