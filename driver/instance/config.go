package instance

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Config is everything one instance needs to start. The Nomad driver and the
// local launcher build it and hand it to `nimbus-driver instance --config FILE`
// (JSON) or to New in-process.
type Config struct {
	// Function, Version, Runtime, Handler as in the task config.
	Function string `json:"function"`
	Version  string `json:"version"`
	Runtime  string `json:"runtime"`
	Handler  string `json:"handler,omitempty"`
	// CodeDir is the absolute path of the function code ($LAMBDA_TASK_ROOT).
	CodeDir string `json:"code_dir"`
	// LayerDirs are absolute paths of unpacked layers, low to high priority.
	LayerDirs []string `json:"layer_dirs,omitempty"`
	// RuntimesDir holds the managed runtimes' bootstraps (python, node); empty
	// means the instance unpacks its embedded copies into StateDir.
	RuntimesDir string `json:"runtimes_dir,omitempty"`
	// StateDir is a private, writable directory for this instance (layer root,
	// per-environment /tmp, sockets). Required.
	StateDir string        `json:"state_dir"`
	MemoryMB int           `json:"memory_mb"`
	Timeout  time.Duration `json:"timeout"`
	// EphemeralStorageMB bounds each environment's tmp directory.
	EphemeralStorageMB int `json:"ephemeral_storage_mb,omitempty"`
	// Environments is the most execution environments hosted (started lazily).
	Environments int `json:"environments"`
	// InitializationType is "on-demand" or "provisioned-concurrency" (start all at once).
	InitializationType string `json:"initialization_type,omitempty"`
	// Env is the user's environment for the function (reserved Lambda
	// variables override it).
	Env map[string]string `json:"env,omitempty"`
	// InvokeAddr is where the invoke endpoint listens (host:port; port 0 picks one).
	InvokeAddr string `json:"invoke_addr"`
	// InvokeSecret authenticates callers of the invoke endpoint; empty disables auth (local mode only).
	InvokeSecret string `json:"invoke_secret,omitempty"`
	// StdoutPath and StderrPath are the log sinks (files or FIFOs) the
	// environments' output and REPORT lines go to; empty means the instance's own.
	StdoutPath string `json:"stdout_path,omitempty"`
	StderrPath string `json:"stderr_path,omitempty"`
	// RunAs is a user name or uid to run environments as; empty means the current user.
	RunAs string `json:"run_as,omitempty"`
	// CgroupParent is a cgroup v2 directory under which per-environment
	// cgroups are created when writable; empty means detect.
	CgroupParent string `json:"cgroup_parent,omitempty"`
	Region       string `json:"region,omitempty"`
	AccountID    string `json:"account_id,omitempty"`
	// ReadyFile, when set, receives the bound invoke address once the
	// instance accepts invocations (so launchers learn port-0 addresses).
	ReadyFile string `json:"ready_file,omitempty"`
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
