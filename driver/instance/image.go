package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
)

// ImageConfig makes an instance run an image function (Lambda's
// PackageType Image): the environments' root is the image's filesystem.
type ImageConfig struct {
	// Ref is the digest-pinned image reference (registry/repo@sha256:…). Required.
	Ref string `json:"ref"`
	// Entrypoint, Command and WorkingDirectory override the image's
	// ENTRYPOINT, CMD and WORKDIR (Lambda's ImageConfig), each on its own.
	Entrypoint       []string `json:"entrypoint,omitempty"`
	Command          []string `json:"command,omitempty"`
	WorkingDirectory string   `json:"working_directory,omitempty"`
	// CacheDir is the client's image cache (driver/oci Store), shared by
	// every instance on the machine. Required (absolute).
	CacheDir string `json:"cache_dir"`
	// CacheMaxMB bounds the cache (least recently used layers no running
	// image holds are evicted). 0: unbounded.
	CacheMaxMB int64 `json:"cache_max_mb,omitempty"`
	// Auth holds the registry credentials and insecure registries.
	Auth oci.Auth `json:"auth,omitempty"`
}

func (ic *ImageConfig) validate(c *Config) error {
	switch {
	case c.Runtime != "" || c.Handler != "":
		return errors.New("instance config: an image function has no runtime or handler (the image carries them)")
	case c.CodeDir != "" || len(c.LayerDirs) > 0:
		return errors.New("instance config: an image function has no code_dir or layer_dirs")
	case !strings.Contains(ic.Ref, "@sha256:"):
		return fmt.Errorf("instance config: image %q must be pinned by digest", ic.Ref)
	case !filepath.IsAbs(ic.CacheDir):
		return fmt.Errorf("instance config: image cache_dir %q must be an absolute path", ic.CacheDir)
	case ic.CacheMaxMB < 0:
		return errors.New("instance config: image cache_max_mb must not be negative")
	case len(ic.Entrypoint) > 0 && !filepath.IsAbs(ic.Entrypoint[0]):
		return fmt.Errorf("instance config: image entrypoint %q must be an absolute path", ic.Entrypoint[0])
	case ic.WorkingDirectory != "" && !filepath.IsAbs(ic.WorkingDirectory):
		return fmt.Errorf("instance config: image working_directory %q must be an absolute path", ic.WorkingDirectory)
	}
	return ic.Auth.Validate()
}

// ErrImageNeedsIsolation: image functions run only in the sandbox (their
// root is the image); a host that cannot isolate cannot run them.
var ErrImageNeedsIsolation = errors.New("image functions need isolation")

// imageError is a pull failure that every invocation answers with, as
// Lambda names it (ImageDeleted, ImageAccessDenied, InvalidImage).
type imageError struct {
	typ string
	err error
}

func (e *imageError) Error() string { return e.err.Error() }
func (e *imageError) Unwrap() error { return e.err }

// pullImage pulls the instance's image into the cache and pins it until
// Stop. A failure is kept for invocations to answer with, not returned:
// the instance runs and says why its function cannot.
func (in *Instance) pullImage(ctx context.Context) {
	ic := in.cfg.Image
	store, err := oci.Open(ic.CacheDir, ic.CacheMaxMB<<20)
	if err == nil {
		in.imageStore = store
		in.image, err = store.Pull(ctx, ic.Ref, ic.Auth)
	}
	if err != nil {
		in.imageErr = &imageError{typ: oci.ErrorType(err), err: fmt.Errorf("pulling image %s: %w", ic.Ref, err)}
		in.log.Error("image function cannot run: pulling its image failed", "image", ic.Ref, "reason", in.imageErr.typ, "error", err)
		return
	}
	in.log.Info("image ready", "image", in.image.Ref, "layers", len(in.image.Layers), "bytes", in.image.Size)
}

// ImageFailure is why an image function's instance cannot run its image
// (its pull failed; the error wraps driver/oci's, so oci.Reason names it),
// nil when the image is ready or the function is a zip function. It is
// settled once Start returns; every invocation answers with it.
func (in *Instance) ImageFailure() error {
	if in.imageErr == nil {
		return nil
	}
	return in.imageErr
}

// releaseImage unpins the image (Stop).
func (in *Instance) releaseImage() {
	if in.imageStore != nil && in.image != nil {
		in.imageStore.Release(in.image)
	}
}

// imageArgv is the image function's command (paths inside the image).
func (in *Instance) imageArgv() ([]string, error) {
	if in.imageErr != nil {
		return nil, in.imageErr
	}
	ic := in.cfg.Image
	argv := oci.Command(in.image.Config, ic.Entrypoint, ic.Command)
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: the image has no ENTRYPOINT or CMD and image_entrypoint is not set", ErrInvalidEntrypoint)
	}
	exe := argv[0]
	if !filepath.IsAbs(exe) {
		found, ok := in.lookInImage(exe, in.imageVars()["PATH"])
		if !ok {
			return nil, fmt.Errorf("%w: %s is not on the image's PATH", ErrInvalidEntrypoint, exe)
		}
		exe = found
	} else if _, ok := in.inImage(exe); !ok {
		return nil, fmt.Errorf("%w: %s is not in the image", ErrInvalidEntrypoint, exe)
	}
	argv[0] = exe
	return argv, nil
}

// inImage finds path (inside the image) in the layers, top first, as
// overlayfs would: a whiteout hides it in the layers below. It does not
// follow symlinks (the kernel does that inside the environment).
func (in *Instance) inImage(p string) (os.FileInfo, bool) {
	layers := in.image.Layers
	for i := len(layers) - 1; i >= 0; i-- {
		fi, err := os.Lstat(filepath.Join(layers[i], p))
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode()&os.ModeCharDevice != 0 && st.Rdev == 0 {
			return nil, false // whiteout
		}
		if fi.Mode().IsRegular() && fi.Mode()&0o111 == 0 {
			return fi, false
		}
		return fi, true
	}
	return nil, false
}

func (in *Instance) lookInImage(name, path string) (string, bool) {
	if path == "" {
		path = sandbox.Path
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if _, ok := in.inImage(p); ok {
			return p, true
		}
	}
	return "", false
}

// imageVars is the image's Env as a map.
func (in *Instance) imageVars() map[string]string {
	vars := map[string]string{}
	if in.image == nil {
		return vars
	}
	for _, kv := range in.image.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return vars
}

// imageWorkDir is image_working_directory, else the image's WORKDIR, else /var/task.
func (in *Instance) imageWorkDir() string {
	if d := in.cfg.Image.WorkingDirectory; d != "" {
		return d
	}
	if in.image != nil && in.image.Config.WorkingDir != "" {
		return in.image.Config.WorkingDir
	}
	return sandboxPaths.code
}

// imageEnviron is an image function's environment: the image's Env, under
// the function's variables, under the reserved Lambda variables.
func (in *Instance) imageEnviron(runtimeAPI string) []string {
	c := in.cfg
	vars := in.imageVars()
	def := func(k, v string) {
		if _, ok := vars[k]; !ok {
			vars[k] = v
		}
	}
	def("PATH", strings.TrimSuffix(sandbox.Path, ":/opt/bin"))
	def("LANG", "en_US.UTF-8")
	def("TZ", ":UTC")
	for k, v := range c.Env {
		vars[k] = v
	}
	// The handler of an image function is its command (CMD, or the
	// override): what the base images' entrypoint passes on as _HANDLER.
	handler := ""
	if cmd := oci.Command(oci.ImageConfig{Cmd: in.image.Config.Cmd}, nil, c.Image.Command); len(cmd) > 0 {
		handler = cmd[0]
	}
	reserved := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          runtimeAPI,
		"_HANDLER":                        handler,
		"LAMBDA_TASK_ROOT":                sandboxPaths.code,
		"LAMBDA_RUNTIME_DIR":              sandboxPaths.runtime,
		"AWS_LAMBDA_FUNCTION_NAME":        c.Function,
		"AWS_LAMBDA_FUNCTION_VERSION":     c.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(c.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + c.Function,
		"AWS_LAMBDA_LOG_STREAM_NAME":      logStreamName(c.Version),
		"AWS_LAMBDA_INITIALIZATION_TYPE":  c.InitializationType,
		"AWS_REGION":                      c.Region,
		"AWS_DEFAULT_REGION":              c.Region,
		"TMPDIR":                          sandboxPaths.tmp,
	}
	for k, v := range reserved {
		vars[k] = v
	}
	delete(vars, "_LAMBDA_SERVER_PORT") // see environ
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// imagePlan is the sandbox plan of an image function's environment: the
// image's layers as the root, the host's name resolution files, the
// synthetic user database, a private /tmp.
func (e *env) imagePlan(argv []string) *sandbox.Plan {
	in := e.inst
	layers := make([]string, 0, len(in.image.Layers))
	for i := len(in.image.Layers) - 1; i >= 0; i-- {
		layers = append(layers, in.image.Layers[i])
	}
	return &sandbox.Plan{
		Root:       e.rootDir,
		RootLayers: layers,
		Mounts: []sandbox.Mount{
			{Source: "/etc/resolv.conf", Target: "/etc/resolv.conf"},
			{Source: "/etc/hosts", Target: "/etc/hosts"},
		},
		TmpMB:    in.cfg.EphemeralStorageMB,
		MaxProcs: 1024,
		UID:      e.uid,
		GID:      e.gid,
		Files: map[string]string{
			"/etc/passwd": sandbox.Passwd(e.uid, e.gid),
			"/etc/group":  sandbox.Group(e.gid),
		},
		Argv: argv,
		Env:  in.imageEnviron(e.addr),
		Dir:  in.imageWorkDir(),
	}
}
