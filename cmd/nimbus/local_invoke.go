package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/local"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/specs"
)

func init() {
	register("local invoke", command{
		summary: "run a function once from its spec (or a code directory), in-process (no Nomad, no gateway)",
		run:     runLocalInvoke,
	})
}

func runLocalInvoke(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "local invoke", "SPEC | DIR | --image REF\n\n"+
		"SPEC is a spec file or a directory holding *.hcl specs: the function's runtime, handler,\n"+
		"memory, timeout, environment, environments and code come from it, and flags override them.\n"+
		"DIR (a directory without specs) is a code directory, described by the flags alone.\n"+
		"--image REF runs a container image (registry/repo:tag or @sha256:…) as nimbus dev and the driver do.\n")
	image := fs.String("image", "", "run this OCI image (a tag is resolved to its digest) instead of a spec or directory")
	imageCache := fs.String("image-cache", "", "directory pulled image layers are kept in, shared by runs (default: <user cache dir>/nimbus-images)")
	var imgFlags imageFlags
	imgFlags.add(fs)
	runtime := fs.String("runtime", "provided.al2023", "Lambda runtime (provided.al2023, python3.12, nodejs20.x, …)")
	handler := fs.String("handler", "", "handler (file.function for managed runtimes)")
	name := fs.String("name", "", "function name (default: the spec's, or the directory's name)")
	function := fs.String("function", "", "with a spec: the function to run (required when it declares several)")
	vars := specVars{}
	fs.Var(vars, "var", "with a spec: set a spec variable, name=value (repeatable)")
	memory := fs.Int("memory", instance.DefaultMemoryMB, "memory size in MB")
	timeout := fs.Duration("timeout", instance.DefaultTimeout, "function timeout")
	eventPath := fs.String("event", "", "event JSON file, or - for stdin (default: {})")
	logLevel := fs.String("log-level", "warn", "platform log level")
	var envVars listFlag
	fs.Var(&envVars, "env", "environment variable K=V for the function (repeatable; wins over the spec's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *image != "" {
		if fs.NArg() != 0 || set["runtime"] || set["handler"] || set["function"] || len(vars) > 0 {
			return fmt.Errorf("--image runs an image: give no SPEC or DIR, --runtime, --handler, --function or --var (the image carries its runtime)")
		}
	} else if fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	var path string
	if fs.NArg() == 1 {
		p, err := filepath.Abs(fs.Arg(0))
		if err != nil {
			return err
		}
		path = p
	}
	userVars := map[string]string{}
	for _, kv := range envVars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--env %q: want K=V", kv)
		}
		userVars[k] = v
	}
	event, err := readEvent(env, *eventPath)
	if err != nil {
		return err
	}
	logger := newLogger(env, "nimbus", *logLevel)
	cacheDir, err := imageCacheDir(*imageCache)
	if err != nil {
		return err
	}
	var cfg *instance.Config
	isSpec := false
	if *image != "" {
		fn := &specs.Function{Name: "image", Code: &specs.Code{Image: *image}}
		ic, err := imageInstance(ctx, imgFlags.resolver(env), imgFlags.auth(env), fn, cacheDir)
		if err != nil {
			return err
		}
		cfg = &instance.Config{Function: "image", Image: ic}
	} else if isSpec, err = isSpecArg(path); err != nil {
		return err
	}
	switch {
	case cfg != nil: // --image
	case isSpec:
		work, err := os.MkdirTemp("", "nimbus-local-code-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		if cfg, err = specConfig(ctx, env, path, *function, vars, work, logger, &imgFlags, cacheDir); err != nil {
			return err
		}
	default:
		if set["function"] || len(vars) > 0 {
			return fmt.Errorf("--function and --var need a spec: %s is a directory without *%s files", path, specs.Extension)
		}
		cfg = &instance.Config{Function: filepath.Base(path), Runtime: *runtime, CodeDir: path}
		set["memory"], set["timeout"], set["handler"] = true, true, true
	}
	// Flags given on the command line win over the spec.
	if set["runtime"] {
		cfg.Runtime = *runtime
	}
	if set["handler"] {
		cfg.Handler = *handler
	}
	if set["memory"] {
		cfg.MemoryMB = *memory
	}
	if set["timeout"] {
		cfg.Timeout = *timeout
	}
	if *name != "" {
		cfg.Function = *name
	}
	if len(userVars) > 0 {
		merged := make(map[string]string, len(cfg.Env)+len(userVars))
		maps.Copy(merged, cfg.Env)
		maps.Copy(merged, userVars)
		cfg.Env = merged
	}
	return localInvoke(ctx, env, cfg, event, *logLevel)
}

// isSpecArg reports whether path is a spec (a file, or a directory holding
// *.hcl files) rather than a bare code directory.
func isSpecArg(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return true, nil
	}
	files, err := specs.SpecFiles(path)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	return len(files) > 0, nil
}

// specConfig loads the spec at path and builds the instance config of the
// function named function (or the only one). Zip code and layers are
// unpacked under work; the code is built (build block or the runtime's
// default) as nimbus dev builds it. Diagnostics go to stderr; errors in
// them exit 1.
func specConfig(ctx context.Context, env *cliEnv, path, function string, vars specVars, work string, logger hclog.Logger, imgFlags *imageFlags, cacheDir string) (*instance.Config, error) {
	file, diags := specs.Load(path, &specs.Options{Vars: vars, Env: env.getenv})
	if len(diags) > 0 {
		fmt.Fprint(env.stderr, specs.FormatDiagnostics(diags, nil))
	}
	if diags.HasErrors() {
		return nil, exitError{code: 1}
	}
	fn, err := pickFunction(file, function, path)
	if err != nil {
		return nil, err
	}
	if fn.IsImage() {
		ic, err := imageInstance(ctx, imgFlags.resolver(env), imgFlags.auth(env), fn, cacheDir)
		if err != nil {
			return nil, err
		}
		timeout, err := time.ParseDuration(fn.Timeout)
		if err != nil {
			return nil, fmt.Errorf("function %s timeout %q: %w", fn.Name, fn.Timeout, err)
		}
		return &instance.Config{
			Function: fn.Name, Image: ic, MemoryMB: fn.MemoryMB, Timeout: timeout,
			EphemeralStorageMB: fn.EphemeralStorageMB, Environments: max(fn.EnvironmentsPerInstance, 1),
			Env: maps.Clone(fn.Environment),
		}, nil
	}
	codeDir, err := localCode(fn.Code, fn.Dir, filepath.Join(work, "code"), "function "+fn.Name)
	if err != nil {
		return nil, err
	}
	// The code is built the way nimbus dev builds it.
	built := *fn
	built.Code = &specs.Code{Dir: codeDir}
	dev := &devLauncher{stateDir: work, logger: logger}
	if codeDir, err = dev.codeDir(ctx, &built, jobs.LatestVersion); err != nil {
		return nil, err
	}
	var layers []string
	for i, ref := range fn.Layers {
		lname, _, _ := strings.Cut(ref, ":")
		l := file.Layer(lname)
		if l == nil {
			return nil, fmt.Errorf("function %s: layer %q is not declared in %s; only declared layers run locally", fn.Name, ref, path)
		}
		dir, err := localCode(l.Code, l.Dir, filepath.Join(work, "layer-"+strconv.Itoa(i)), "layer "+l.Name)
		if err != nil {
			return nil, err
		}
		layers = append(layers, dir)
	}
	for _, sec := range fn.Secrets {
		fmt.Fprintf(env.stderr, "nimbus local invoke: warning: secret %s (Nomad Variable %s, key %s) is not set locally; use --env %s=…\n",
			sec.Env, sec.Path, sec.Key, sec.Env)
	}
	timeout, err := time.ParseDuration(fn.Timeout)
	if err != nil {
		return nil, fmt.Errorf("function %s timeout %q: %w", fn.Name, fn.Timeout, err)
	}
	return &instance.Config{
		Function:           fn.Name,
		Runtime:            fn.Runtime,
		Handler:            fn.Handler,
		CodeDir:            codeDir,
		LayerDirs:          layers,
		MemoryMB:           fn.MemoryMB,
		Timeout:            timeout,
		EphemeralStorageMB: fn.EphemeralStorageMB,
		Environments:       max(fn.EnvironmentsPerInstance, 1),
		Env:                maps.Clone(fn.Environment),
		Network:            fn.Network,
	}, nil
}

// pickFunction returns the function named name, or the only one.
func pickFunction(file *specs.File, name, path string) (*specs.Function, error) {
	var names []string
	for _, fn := range file.Functions {
		names = append(names, fn.Name)
	}
	switch {
	case name != "":
		if fn := file.Function(name); fn != nil {
			return fn, nil
		}
		return nil, fmt.Errorf("no function %q in %s (functions: %s)", name, path, strings.Join(names, ", "))
	case len(names) == 1:
		return file.Functions[0], nil
	case len(names) == 0:
		return nil, fmt.Errorf("%s declares no function", path)
	}
	return nil, fmt.Errorf("%s declares %d functions (%s): choose one with --function", path, len(names), strings.Join(names, ", "))
}

// localCode returns a directory holding code: a code dir resolved against
// the spec's directory, or a zip unpacked into dest. URL code is fetched
// only by Nomad's artifact blocks, so it cannot run here.
func localCode(code *specs.Code, specDir, dest, what string) (string, error) {
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(specDir, p)
	}
	switch {
	case code == nil:
		return "", fmt.Errorf("%s has no code block", what)
	case code.Dir != "":
		dir := rel(code.Dir)
		fi, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("%s code dir: %w", what, err)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s code dir %s is not a directory", what, dir)
		}
		return dir, nil
	case code.Zip != "":
		if err := bundle.Extract(rel(code.Zip), dest, bundle.Limits{}); err != nil {
			return "", fmt.Errorf("%s code: %w", what, err)
		}
		return dest, nil
	case code.URL != "":
		return "", fmt.Errorf("%s takes its code from %s; local invoke runs code { dir } or code { zip } only (download and unzip it, or point the spec at a local copy)", what, code.URL)
	}
	return "", fmt.Errorf("%s code block names no dir, zip or url", what)
}

// readEvent reads the event from path ("-" is stdin; empty is {}).
func readEvent(env *cliEnv, path string) ([]byte, error) {
	switch path {
	case "":
		return []byte("{}"), nil
	case "-":
		b, err := io.ReadAll(env.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading event from stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading event: %w", err)
	}
	return b, nil
}

// localInvoke runs one invocation of the function cfg describes in an
// in-process instance: the result goes to stdout, the function's logs and
// the START/END/REPORT lines to stderr. A function error returns exit
// status 1 after printing the error body. The spec-file path calls this
// with a Config built from the spec.
func localInvoke(ctx context.Context, env *cliEnv, cfg *instance.Config, event []byte, logLevel string) error {
	base, err := os.MkdirTemp("", "nimbus-local-invoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	c := *cfg
	c.StdoutPath = filepath.Join(base, "stdout.log")
	c.StderrPath = filepath.Join(base, "stderr.log")
	l := local.NewLauncher(filepath.Join(base, "instances"), newLogger(env, "nimbus", logLevel))
	h, err := l.Launch(ctx, &c)
	if err != nil {
		return err
	}
	client := &invokeapi.Client{Secret: h.Secret}
	resp, ierr := client.Invoke(ctx, h.Addr, &invokeapi.Request{Payload: event})
	var body []byte
	if ierr == nil {
		body, ierr = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := h.Stop(stopCtx)
	// The sinks are closed (flushed) once the instance stopped.
	for _, p := range []string{c.StdoutPath, c.StderrPath} {
		if b, err := os.ReadFile(p); err == nil {
			_, _ = env.stderr.Write(b)
		}
	}
	if ierr != nil {
		return fmt.Errorf("invoking %s: %w", c.Function, ierr)
	}
	_, _ = env.stdout.Write(body)
	if len(body) > 0 && body[len(body)-1] != '\n' {
		fmt.Fprintln(env.stdout)
	}
	if serr != nil {
		fmt.Fprintf(env.stderr, "nimbus local invoke: stopping instance: %v\n", serr)
	}
	if resp.FunctionError != "" {
		return exitError{code: 1}
	}
	return nil
}

// imageCacheDir is where local invoke keeps pulled image layers, shared by
// runs: flag (made absolute), else the user's cache dir.
func imageCacheDir(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "nimbus-images"), nil
}
