package nomadplugin

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/oci"
)

// Config is the agent's `plugin "nimbus-driver" { config { ... } }` block.
type Config struct {
	// RuntimesDir holds the managed runtimes' bootstraps (python, node) on
	// the client. Default: "" (each instance unpacks its embedded copies).
	RuntimesDir string `hcl:"runtimes_dir"`
	// AllowedRunAs lists the users a task may ask for with `run_as` (or the
	// task's `user`), besides DefaultRunAs. Default: none.
	AllowedRunAs []string `hcl:"allowed_run_as"`
	// DefaultRunAs is the user functions run as when the task names none.
	// Default: "" (the agent's user).
	DefaultRunAs string `hcl:"default_run_as"`
	// CgroupParent is the cgroup v2 directory under which instances create
	// per-environment cgroups. Default: "" (the instance detects one).
	CgroupParent string `hcl:"cgroup_parent"`
	// StatsInterval is the TaskStats period when Nomad sends none. Default: "1s".
	StatsInterval string `hcl:"stats_interval"`
	// FingerprintInterval is how often the fingerprint is re-sent. Default: "30s".
	FingerprintInterval string `hcl:"fingerprint_interval"`
	// StartTimeout bounds how long StartTask waits for the instance to accept
	// invocations (and for Nomad's log FIFOs to open). Default: "30s".
	StartTimeout string `hcl:"start_timeout"`
	// StopSignal is sent by StopTask when the job sets no kill_signal. Default: "SIGTERM".
	StopSignal string `hcl:"stop_signal"`
	// UIDRange ("first-last") is where each execution environment's own
	// uid and gid come from when the task runs as no named user.
	// Default: "64000-64999".
	UIDRange string `hcl:"uid_range"`
	// AllowRoot lets tasks that also set allow_root run functions as root
	// (without capabilities). Default: false.
	AllowRoot bool `hcl:"allow_root"`
	// ChrootEnv maps host paths to where they are bound, read-only, in
	// every environment's root. Default: see sandbox.DefaultChrootEnv.
	ChrootEnv map[string]string `hcl:"chroot_env"`
	// ImageCacheDir is the client's cache of image functions' unpacked
	// layers, shared by every task. Default: "/var/lib/nimbus/images".
	ImageCacheDir string `hcl:"image_cache_dir"`
	// ImageCacheMaxMB bounds the cache: the least recently used layers no
	// running task holds are evicted beyond it (an image larger than the
	// whole cache still runs). Default: 10240.
	ImageCacheMaxMB int `hcl:"image_cache_max_mb"`
	// RegistryAuth lists registry credentials, each a map with "registry"
	// (host[:port]) and either "username" and "password" or "token".
	// Default: none (anonymous).
	RegistryAuth []map[string]string `hcl:"registry_auth"`
	// RegistryAuthFile is a docker-style config.json ("auths") consulted
	// for registries RegistryAuth does not name. Default: "".
	RegistryAuthFile string `hcl:"registry_auth_file"`
	// InsecureRegistries are registry hosts pulled from over plain HTTP.
	// Loopback registries always are; no other is. Default: none.
	InsecureRegistries []string `hcl:"insecure_registries"`
}

// Defaults for Config.
const (
	DefaultStatsInterval       = time.Second
	DefaultFingerprintInterval = 30 * time.Second
	DefaultStartTimeout        = 30 * time.Second
	DefaultStopSignal          = "SIGTERM"
	DefaultImageCacheDir       = "/var/lib/nimbus/images"
	DefaultImageCacheMaxMB     = 10240
)

// configSchema is what ConfigSchema advertises. Defaults travel in the
// schema too, so Nomad's encoded bytes already carry them.
func configSchema() schema {
	return schema{
		{name: "runtimes_dir", typ: "string"},
		{name: "allowed_run_as", typ: "list(string)", def: "[]"},
		{name: "default_run_as", typ: "string"},
		{name: "cgroup_parent", typ: "string"},
		{name: "stats_interval", typ: "string", def: `"` + DefaultStatsInterval.String() + `"`},
		{name: "fingerprint_interval", typ: "string", def: `"` + DefaultFingerprintInterval.String() + `"`},
		{name: "start_timeout", typ: "string", def: `"` + DefaultStartTimeout.String() + `"`},
		{name: "stop_signal", typ: "string", def: `"` + DefaultStopSignal + `"`},
		{name: "uid_range", typ: "string", def: `"` + instance.DefaultUIDRange + `"`},
		{name: "allow_root", typ: "bool", def: "false"},
		{name: "chroot_env", typ: "map(string)"},
		{name: "image_cache_dir", typ: "string", def: `"` + DefaultImageCacheDir + `"`},
		{name: "image_cache_max_mb", typ: "number", def: strconv.Itoa(DefaultImageCacheMaxMB)},
		{name: "registry_auth", typ: "list(map(string))"},
		{name: "registry_auth_file", typ: "string"},
		{name: "insecure_registries", typ: "list(string)"},
	}
}

// DefaultConfig returns the configuration used before SetConfig and for
// every attribute the agent leaves out.
func DefaultConfig() Config {
	return Config{
		StatsInterval:       DefaultStatsInterval.String(),
		FingerprintInterval: DefaultFingerprintInterval.String(),
		StartTimeout:        DefaultStartTimeout.String(),
		StopSignal:          DefaultStopSignal,
		UIDRange:            instance.DefaultUIDRange,
		ImageCacheDir:       DefaultImageCacheDir,
		ImageCacheMaxMB:     DefaultImageCacheMaxMB,
	}
}

// ErrInvalidConfig wraps every validation error of the agent config.
var ErrInvalidConfig = errors.New("invalid nimbus driver config")

// settings is a validated Config with parsed values.
type settings struct {
	Config
	statsInterval       time.Duration
	fingerprintInterval time.Duration
	startTimeout        time.Duration
	stopSignal          unix.Signal
	registryAuth        oci.Auth
}

// Validate checks the config and returns its parsed form.
func (c Config) validate() (settings, error) {
	s := settings{Config: c}
	var errs []string
	dur := func(name, v string, dst *time.Duration) {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("%s %q is not a duration", name, v))
		case d <= 0:
			errs = append(errs, fmt.Sprintf("%s must be positive", name))
		default:
			*dst = d
		}
	}
	dur("stats_interval", c.StatsInterval, &s.statsInterval)
	dur("fingerprint_interval", c.FingerprintInterval, &s.fingerprintInterval)
	dur("start_timeout", c.StartTimeout, &s.startTimeout)
	if sig, err := parseSignal(c.StopSignal); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.stopSignal = sig
	}
	if s.ImageCacheDir == "" {
		s.ImageCacheDir = DefaultImageCacheDir
	}
	if c.ImageCacheMaxMB < 0 {
		errs = append(errs, "image_cache_max_mb must not be negative (0: unbounded)")
	}
	if auth, err := registryAuth(c); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.registryAuth = auth
	}
	for name, p := range map[string]string{"runtimes_dir": c.RuntimesDir, "cgroup_parent": c.CgroupParent, "image_cache_dir": s.ImageCacheDir, "registry_auth_file": c.RegistryAuthFile} {
		if p != "" && !filepath.IsAbs(p) {
			errs = append(errs, fmt.Sprintf("%s %q must be an absolute path", name, p))
		}
	}
	if s.UIDRange == "" {
		s.UIDRange = instance.DefaultUIDRange
	}
	if _, _, err := instance.ParseUIDRange(s.UIDRange); err != nil {
		errs = append(errs, err.Error())
	}
	for src, dst := range c.ChrootEnv {
		if !filepath.IsAbs(src) || !filepath.IsAbs(dst) {
			errs = append(errs, fmt.Sprintf("chroot_env %q = %q: both paths must be absolute", src, dst))
		}
		for _, bad := range []string{"/etc/shadow", "/etc/gshadow"} {
			if within, _ := filepath.Rel(src, bad); src == bad || (within != "" && !strings.HasPrefix(within, "..")) {
				errs = append(errs, fmt.Sprintf("chroot_env %q would expose %s", src, bad))
			}
		}
	}
	for _, u := range c.AllowedRunAs {
		if strings.TrimSpace(u) == "" {
			errs = append(errs, "allowed_run_as has an empty user")
		}
	}
	if len(errs) > 0 {
		return settings{}, fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(errs, "; "))
	}
	return s, nil
}

// registryAuth turns the registry settings into the puller's Auth.
func registryAuth(c Config) (oci.Auth, error) {
	a := oci.Auth{ConfigFile: c.RegistryAuthFile, InsecureRegistries: c.InsecureRegistries}
	for i, m := range c.RegistryAuth {
		var cr oci.Credential
		for k, v := range m {
			switch k {
			case "registry":
				cr.Registry = v
			case "username":
				cr.Username = v
			case "password":
				cr.Password = v
			case "token":
				cr.Token = v
			default:
				return oci.Auth{}, fmt.Errorf("registry_auth[%d]: unknown key %q (registry, username, password, token)", i, k)
			}
		}
		a.Credentials = append(a.Credentials, cr)
	}
	if err := a.Validate(); err != nil {
		return oci.Auth{}, err
	}
	return a, nil
}

// runAs picks the user a task runs as: its own request, else the default;
// a request must be the default or in the allow list.
func (s settings) runAs(requested string) (string, error) {
	if requested == "" || requested == s.DefaultRunAs {
		return s.DefaultRunAs, nil
	}
	for _, u := range s.AllowedRunAs {
		if u == requested {
			return requested, nil
		}
	}
	return "", fmt.Errorf("user %q is not in the driver's allowed_run_as", requested)
}

// parseSignal reads a Go-style signal name ("SIGTERM"; "TERM" also works).
func parseSignal(name string) (unix.Signal, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	if sig := unix.SignalNum(n); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", name)
}
