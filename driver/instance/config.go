package instance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Config is everything one instance needs to start. The Nomad driver and the
// local launcher build it and hand it to `nimbus-driver instance --config FILE`
// (JSON) or to New in-process.
type Config struct {
	// Function, Version, Runtime, Handler as in the task config.
	Function string `json:"function"`
	// Version is "$LATEST" or a published version number. Default: $LATEST.
	Version string `json:"version"`
	Runtime string `json:"runtime"`
	Handler string `json:"handler,omitempty"`
	// Image, when set, makes this an image function: Runtime, Handler,
	// CodeDir and LayerDirs are then empty, and environments need isolation.
	Image *ImageConfig `json:"image,omitempty"`
	// CodeDir is the absolute path of the function code ($LAMBDA_TASK_ROOT).
	CodeDir string `json:"code_dir"`
	// LayerDirs are absolute paths of unpacked layers, low to high priority.
	LayerDirs []string `json:"layer_dirs,omitempty"`
	// PinDirs are directories the instance holds a shared flock on for as
	// long as it runs: the driver's bundle-cache entries its code and layers
	// live in, which the cache never evicts while someone holds them.
	PinDirs []string `json:"pin_dirs,omitempty"`
	// RuntimesDir holds the managed runtimes' bootstraps (python, node); empty
	// means the instance unpacks its embedded copies into StateDir.
	RuntimesDir string `json:"runtimes_dir,omitempty"`
	// StateDir is a private, writable directory for this instance (layer root,
	// per-environment /tmp, sockets). Required.
	StateDir string `json:"state_dir"`
	// MemoryMB is each environment's memory size (128..10240). Default: 128.
	MemoryMB int `json:"memory_mb"`
	// Timeout bounds each invocation (at most 900s). Default: 3s.
	Timeout time.Duration `json:"timeout"`
	// EphemeralStorageMB is the size of each environment's /tmp (a tmpfs
	// of that size when isolated; unenforced otherwise). Default: 512. Its
	// pages are charged to the environment's memory cgroup: /tmp data
	// counts against MemoryMB (see specs/LANGUAGE.md).
	EphemeralStorageMB int `json:"ephemeral_storage_mb,omitempty"`
	// Environments is the most execution environments hosted (started lazily). Default: 1.
	Environments int `json:"environments"`
	// InitializationType is "on-demand" or "provisioned-concurrency" (start
	// all at once). Default: on-demand.
	InitializationType string `json:"initialization_type,omitempty"`
	// Env is the user's environment for the function (reserved Lambda
	// variables override it).
	Env map[string]string `json:"env,omitempty"`
	// InvokeAddr is where the invoke endpoint listens (host:port; port 0
	// picks one). Default: 127.0.0.1:0.
	InvokeAddr string `json:"invoke_addr"`
	// InvokeSecret authenticates callers of the invoke endpoint; empty disables auth (local mode only).
	InvokeSecret string `json:"invoke_secret,omitempty"`
	// Mesh, when set, makes the invoke endpoint a Consul Connect-native
	// service: TLS with the service's leaf certificate, and every call but
	// the health check needs a client certificate from the mesh's CA whose
	// service Consul's intentions allow to call Mesh.Service. It replaces
	// InvokeSecret, which must then be empty.
	Mesh *MeshConfig `json:"mesh,omitempty"`
	// StdoutPath and StderrPath are the log sinks (files or FIFOs) the
	// environments' output and REPORT lines go to; empty means the instance's own.
	StdoutPath string `json:"stdout_path,omitempty"`
	StderrPath string `json:"stderr_path,omitempty"`
	// RunAs is a user name or uid to run environments as; empty means a
	// uid per environment from Isolation.UIDRange when isolated, else the
	// current user. Root needs Isolation.AllowRoot.
	RunAs string `json:"run_as,omitempty"`
	// Isolation configures the environments' sandbox.
	Isolation Isolation `json:"isolation,omitempty"`
	// Network is "" or "host" (the environments use the host's network)
	// or "none" (each its own network namespace with only loopback; needs
	// the sandbox: New refuses it where environments are not isolated).
	Network string `json:"network,omitempty"`
	// CgroupParent is a cgroup v2 directory (or, on a cgroup v1 host, a
	// directory of the memory hierarchy) under which per-environment
	// cgroups are created when writable; empty means detect (v2 first,
	// then v1; the instance's own cgroup is the parent).
	CgroupParent string `json:"cgroup_parent,omitempty"`
	// Region and AccountID build the default invoked ARN and AWS_REGION.
	// Default: us-east-1 and 000000000000.
	Region    string `json:"region,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	// ReadyFile, when set, receives the bound invoke address once the
	// instance accepts invocations (so launchers learn port-0 addresses).
	ReadyFile string `json:"ready_file,omitempty"`
	// InitTimeout bounds an environment's init phase. Default: 10s (Lambda's limit).
	InitTimeout time.Duration `json:"init_timeout,omitempty"`
	// StopGrace is how long environments get between SIGTERM and SIGKILL when
	// the instance stops. Default: 2s.
	StopGrace time.Duration `json:"stop_grace,omitempty"`
}

// MeshConfig is an instance's Connect identity and the Consul agent that
// issues it. The agent fields take the values Nomad gives a Connect-native
// task (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT, …); the
// instance reads nothing of its own process environment.
type MeshConfig struct {
	// Service is the Consul service the instance is (nimbus-<fn>): its leaf
	// certificate is presented, and intentions towards it admit callers.
	// Required.
	Service string `json:"service"`
	// Address is the Consul agent's HTTP API: "host:port",
	// "http(s)://host:port" or "unix:///path". Required.
	Address string `json:"address"`
	// Token is the ACL token for the agent (a service identity token);
	// empty when Consul has no ACLs.
	Token string `json:"token,omitempty"`
	// SSL talks HTTPS to the agent (also implied by an https:// Address).
	SSL bool `json:"ssl,omitempty"`
	// CAFile, CertFile and KeyFile are absolute paths of the agent API's
	// TLS files; TLSServerName the name to verify; InsecureSkipVerify
	// turns verification off (CONSUL_HTTP_SSL_VERIFY=false).
	CAFile             string `json:"ca_file,omitempty"`
	CertFile           string `json:"cert_file,omitempty"`
	KeyFile            string `json:"key_file,omitempty"`
	TLSServerName      string `json:"tls_server_name,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// Defaults and bounds.
const (
	DefaultVersion     = "$LATEST"
	DefaultMemoryMB    = 128
	DefaultTimeout     = 3 * time.Second
	DefaultInitTimeout = 10 * time.Second
	DefaultStopGrace   = 2 * time.Second
	DefaultInvokeAddr  = "127.0.0.1:0"
	DefaultRegion      = "us-east-1"
	DefaultAccountID   = "000000000000"
	MinMemoryMB        = 128
	MaxMemoryMB        = 10240
	MaxTimeout         = 900 * time.Second

	InitOnDemand    = "on-demand"
	InitProvisioned = "provisioned-concurrency"

	NetworkHost = "host"
	NetworkNone = "none"
)

// withDefaults returns a copy of c with every unset field at its default.
func (c *Config) withDefaults() *Config {
	d := *c
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&d.Version, DefaultVersion)
	def(&d.InvokeAddr, DefaultInvokeAddr)
	def(&d.Region, DefaultRegion)
	def(&d.AccountID, DefaultAccountID)
	def(&d.InitializationType, InitOnDemand)
	if d.MemoryMB == 0 {
		d.MemoryMB = DefaultMemoryMB
	}
	if d.Timeout == 0 {
		d.Timeout = DefaultTimeout
	}
	if d.InitTimeout == 0 {
		d.InitTimeout = DefaultInitTimeout
	}
	if d.StopGrace == 0 {
		d.StopGrace = DefaultStopGrace
	}
	if d.Environments == 0 {
		d.Environments = 1
	}
	return &d
}

// Validate reports the first problem with c (after defaults).
func (c *Config) Validate() error {
	switch {
	case c.Function == "":
		return fmt.Errorf("instance config: function is required")
	case c.Image != nil:
		if err := c.Image.validate(c); err != nil {
			return err
		}
	case c.Runtime == "":
		return fmt.Errorf("instance config: runtime is required")
	case !filepath.IsAbs(c.CodeDir):
		return fmt.Errorf("instance config: code_dir %q must be an absolute path", c.CodeDir)
	}
	switch {
	case !filepath.IsAbs(c.StateDir):
		return fmt.Errorf("instance config: state_dir %q must be an absolute path", c.StateDir)
	case c.MemoryMB < MinMemoryMB || c.MemoryMB > MaxMemoryMB:
		return fmt.Errorf("instance config: memory_mb %d outside %d..%d", c.MemoryMB, MinMemoryMB, MaxMemoryMB)
	case c.Timeout <= 0 || c.Timeout > MaxTimeout:
		return fmt.Errorf("instance config: timeout %s outside (0, %s]", c.Timeout, MaxTimeout)
	case c.Environments < 1:
		return fmt.Errorf("instance config: environments %d must be at least 1", c.Environments)
	case c.InitializationType != InitOnDemand && c.InitializationType != InitProvisioned:
		return fmt.Errorf("instance config: initialization_type %q is neither %q nor %q", c.InitializationType, InitOnDemand, InitProvisioned)
	case c.InitTimeout < 0 || c.StopGrace < 0:
		return fmt.Errorf("instance config: init_timeout and stop_grace must not be negative")
	case c.Network != "" && c.Network != NetworkHost && c.Network != NetworkNone:
		return fmt.Errorf("instance config: network %q is neither %q nor %q", c.Network, NetworkHost, NetworkNone)
	}
	if m := c.Mesh; m != nil {
		switch {
		case c.InvokeSecret != "":
			return fmt.Errorf("instance config: mesh replaces invoke_secret; set one, not both")
		case m.Service == "":
			return fmt.Errorf("instance config: mesh.service is required")
		case m.Address == "":
			return fmt.Errorf("instance config: mesh.address (the consul agent) is required")
		}
		for _, f := range []string{m.CAFile, m.CertFile, m.KeyFile} {
			if f != "" && !filepath.IsAbs(f) {
				return fmt.Errorf("instance config: mesh tls file %q must be an absolute path", f)
			}
		}
	}
	for _, l := range c.LayerDirs {
		if !filepath.IsAbs(l) {
			return fmt.Errorf("instance config: layer dir %q must be an absolute path", l)
		}
	}
	return nil
}

// LoadConfig reads a JSON Config from path.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading instance config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decoding instance config %s: %w", path, err)
	}
	return &c, nil
}
