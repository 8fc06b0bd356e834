package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/bundle/build"
	"github.com/nimbus-fn/nimbus/gateway/images"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/specs"
)

// Environment variables the job commands read.
const (
	envSecretKey       = "NIMBUS_SECRET_KEY"
	envArtifactBaseURL = "NIMBUS_ARTIFACT_BASE_URL"
)

func init() {
	register("render", command{
		summary: "print the Nomad job of a function (HCL for `nomad job run`, or JSON)",
		run:     runRender,
	})
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// jobFlags are the flags render, plan and deploy share: which functions,
// and the compile options that are not in the spec.
type jobFlags struct {
	function        string
	version         string
	vars            listFlag
	region          string
	namespace       string
	nodePool        string
	datacenters     listFlag
	serviceProvider string
	artifactBaseURL string
	bundleDir       string
	secretKeyFile   string
	rollingUpdates  bool
	images          imageFlags
	connect         bool
}

func (f *jobFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.function, "function", "", "only this function (default: every function in the specs)")
	fs.StringVar(&f.version, "version", jobs.LatestVersion, "function version: $LATEST or a published version number")
	fs.Var(&f.vars, "var", "set a spec variable, name=value (repeatable)")
	fs.StringVar(&f.region, "region", "", "Nomad region when the spec's placement names none (default \"global\")")
	fs.StringVar(&f.namespace, "namespace", "", "Nomad namespace when the spec's placement names none (default \"default\")")
	fs.StringVar(&f.nodePool, "node-pool", "", "Nomad node pool when the spec's placement names none")
	fs.Var(&f.datacenters, "datacenter", "Nomad datacenter when the spec's placement names none (repeatable; default \"*\")")
	fs.StringVar(&f.serviceProvider, "service-provider", jobs.ProviderConsul, "where instances register their invoke service: consul or nomad")
	fs.StringVar(&f.artifactBaseURL, "artifact-base-url", "", "URL the Nomad clients fetch code bundles from, as <url>/<sha256>.zip (env "+envArtifactBaseURL+")")
	fs.StringVar(&f.bundleDir, "bundle-dir", filepath.Join(".nimbus", "bundles"), "where packaged code bundles are written for you to place at --artifact-base-url")
	fs.BoolVar(&f.connect, "connect", false, "make instances Consul Connect-native services: the gateway calls them over mutual TLS, admitted by intentions, instead of with the invoke secret (gateways need connect { enabled = true }; needs --service-provider consul)")
	fs.BoolVar(&f.rollingUpdates, "rolling-updates", false, "roll new versions out behind health checks with auto-revert (Nomad blocks scaling while a rollout runs)")
	f.images.add(fs)
	fs.StringVar(&f.secretKeyFile, "secret-key-file", "", "file holding the cluster key invoke secrets derive from (env "+envSecretKey+"; gateways use the same key); deploy needs it, render only with --print-var-command")
}

// compiled is one function's job, the variable it needs and the bundles
// it needs placed.
type compiled struct {
	fn  *specs.Function
	job *api.Job
	// secrets is the job's Nomad Variable (jobs.InvokeVariable); nil when
	// compiled without the cluster key.
	secrets *api.Variable
	bundles []placedBundle
}

// placedBundle is a packaged bundle written locally that must be served at url.
type placedBundle struct {
	path string
	url  string
}

// errReported means diagnostics were already printed.
var errReported = exitError{code: 1}

// compileSpecs loads the specs at path, selects functions and compiles
// them all; it registers nothing and fails if any function fails. With
// withSecrets it also derives each job's variable from the cluster key,
// which it then requires.
//
// Code directories are built first (bundle/build: the spec's build block or
// the runtime's default) into a temporary directory removed on return, and
// the build's output is what gets packaged.
func compileSpecs(ctx context.Context, env *cliEnv, path string, f *jobFlags, withSecrets bool) ([]compiled, error) {
	vars, err := flagVars(f)
	if err != nil {
		return nil, err
	}
	file, diags := specs.Load(path, &specs.Options{Vars: vars, Env: env.getenv})
	if len(diags) > 0 {
		fmt.Fprint(env.stderr, specs.FormatDiagnostics(diags, nil))
	}
	if diags.HasErrors() || file == nil {
		return nil, errReported
	}
	fns, err := selectFunctions(file, path, f.function)
	if err != nil {
		return nil, err
	}
	var key []byte
	if withSecrets {
		if key, err = secretKey(env, f.secretKeyFile); err != nil {
			return nil, err
		}
	}
	base := f.artifactBaseURL
	if base == "" {
		base = env.getenv(envArtifactBaseURL)
	}
	opts := jobs.Options{
		Version:         f.version,
		Region:          f.region,
		Namespace:       f.namespace,
		NodePool:        f.nodePool,
		Datacenters:     f.datacenters,
		ServiceProvider: f.serviceProvider,
		ArtifactBaseURL: base,
		RollingUpdates:  f.rollingUpdates,
		Connect:         f.connect,
	}
	cache, err := makeOwnedTempDir("", buildTempPrefix)
	if err != nil {
		return nil, fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(cache)
	bopts := build.Options{CacheDir: cache}
	res := f.images.resolver(env)
	var out []compiled
	var errs []string
	for _, fn := range fns {
		c, err := compileOne(ctx, env, file, fn, opts, bopts, f.bundleDir, res)
		if err == nil && withSecrets {
			c.secrets, err = jobs.InvokeVariable(c.job, key)
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return out, nil
}

// flagVars reads the --var flags.
func flagVars(f *jobFlags) (map[string]string, error) {
	vars := map[string]string{}
	for _, v := range f.vars {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("-var %q: want name=value", v)
		}
		vars[name] = value
	}
	return vars, nil
}

func selectFunctions(file *specs.File, path, name string) ([]*specs.Function, error) {
	if name == "" {
		if len(file.Functions) == 0 {
			return nil, fmt.Errorf("%s: no function blocks", path)
		}
		return file.Functions, nil
	}
	if fn := file.Function(name); fn != nil {
		return []*specs.Function{fn}, nil
	}
	var names []string
	for _, fn := range file.Functions {
		names = append(names, fn.Name)
	}
	return nil, fmt.Errorf("%s: no function %q (functions: %s)", path, name, strings.Join(names, ", "))
}

func secretKey(env *cliEnv, file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the secret key: %w", err)
		}
		if k := strings.TrimSpace(string(b)); k != "" {
			return []byte(k), nil
		}
		return nil, fmt.Errorf("secret key file %s is empty", file)
	}
	if k := env.getenv(envSecretKey); k != "" {
		return []byte(k), nil
	}
	return nil, fmt.Errorf("no invoke secret key: set %s or pass --secret-key-file (the gateways must use the same key)", envSecretKey)
}

func compileOne(ctx context.Context, env *cliEnv, file *specs.File, fn *specs.Function, opts jobs.Options, bopts build.Options, bundleDir string, res *images.Resolver) (compiled, error) {
	where := fmt.Sprintf("%s: function %q", fn.Pos, fn.Name)
	c := compiled{fn: fn}
	if fn.IsImage() {
		// A tag is pinned now: the job runs this digest until the next deploy.
		pinned, err := res.Resolve(ctx, fn.Code.Image)
		if err != nil {
			return c, fmt.Errorf("%s: code: %w", where, err)
		}
		fn.Code.ResolvedImage = pinned
	} else if fn.Code != nil && fn.Code.URL == "" {
		code := fn.Code
		if dir, err := functionCodeDir(fn); err != nil {
			return c, fmt.Errorf("%s: code: %w", where, err)
		} else if dir != "" && opts.ArtifactBaseURL != "" {
			res, err := buildFunction(ctx, fn, dir, bopts, env.stderr)
			if err != nil {
				return c, err
			}
			code = &specs.Code{Dir: res.Dir}
		}
		art, pb, err := packageCode(code, fn.Dir, opts.ArtifactBaseURL, bundleDir)
		if err != nil {
			return c, fmt.Errorf("%s: code: %w", where, err)
		}
		opts.CodeChecksum = art.Checksum
		c.bundles = append(c.bundles, pb)
	}
	for _, ref := range fn.Layers {
		name, _, _ := strings.Cut(ref, ":")
		l := file.Layer(name)
		if l == nil || l.Code == nil {
			return c, fmt.Errorf("%s: layer %q is not declared in these specs", where, ref)
		}
		if l.Code.URL != "" {
			opts.LayerArtifacts = append(opts.LayerArtifacts, jobs.Artifact{Source: l.Code.URL, Checksum: l.Code.Checksum})
			continue
		}
		art, pb, err := packageCode(l.Code, l.Dir, opts.ArtifactBaseURL, bundleDir)
		if err != nil {
			return c, fmt.Errorf("%s: layer %q (%s): %w", where, name, l.Pos, err)
		}
		opts.LayerArtifacts = append(opts.LayerArtifacts, art)
		c.bundles = append(c.bundles, pb)
	}
	job, err := jobs.Compile(fn, opts)
	if err != nil {
		return c, fmt.Errorf("%s: %w", where, err)
	}
	c.job = job
	return c, nil
}

// packageCode turns a dir or zip into a content-addressed bundle under
// bundleDir and the artifact that fetches it from base.
func packageCode(code *specs.Code, specDir, base, bundleDir string) (jobs.Artifact, placedBundle, error) {
	src, kind := code.Dir, "dir"
	if src == "" {
		src, kind = code.Zip, "zip"
	}
	if !filepath.IsAbs(src) {
		src = filepath.Join(specDir, src)
	}
	if base == "" {
		return jobs.Artifact{}, placedBundle{}, fmt.Errorf("%s %s: the job needs a URL to fetch the code bundle from; "+
			"nimbus deploy --endpoint GATEWAY (or NIMBUS_ENDPOINT) uploads it to that gateway's artifact store, "+
			"or give the code as url + checksum, or pass --artifact-base-url (or %s) and place the bundle written to --bundle-dir there yourself",
			kind, src, envArtifactBaseURL)
	}
	if err := os.MkdirAll(bundleDir, 0o755); err != nil {
		return jobs.Artifact{}, placedBundle{}, fmt.Errorf("creating the bundle dir: %w", err)
	}
	tmp, err := os.CreateTemp(bundleDir, ".bundle-*.zip")
	if err != nil {
		return jobs.Artifact{}, placedBundle{}, fmt.Errorf("creating a bundle: %w", err)
	}
	defer os.Remove(tmp.Name())
	var sum string
	if kind == "dir" {
		sum, err = bundle.Zip(src, tmp)
	} else {
		sum, err = copyZip(src, tmp)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return jobs.Artifact{}, placedBundle{}, err
	}
	dst := filepath.Join(bundleDir, sum+".zip")
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return jobs.Artifact{}, placedBundle{}, fmt.Errorf("writing the bundle: %w", err)
	}
	url := strings.TrimRight(base, "/") + "/" + sum + ".zip"
	return jobs.Artifact{Source: url, Checksum: "sha256:" + sum}, placedBundle{path: dst, url: url}, nil
}

// copyZip copies a ready zip (checking it is one) and returns its sha256.
func copyZip(src string, w io.Writer) (string, error) {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return "", fmt.Errorf("zip %s: %w", src, err)
	}
	zr.Close()
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), f); err != nil {
		return "", fmt.Errorf("zip %s: %w", src, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// reportBundles tells the user which bundles to place where.
func reportBundles(w io.Writer, cs []compiled) {
	seen := map[string]bool{}
	var lines []string
	for _, c := range cs {
		for _, b := range c.bundles {
			if !seen[b.path] {
				seen[b.path] = true
				lines = append(lines, fmt.Sprintf("bundle %s must be served at %s", b.path, b.url))
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func specPath(fs *flag.FlagSet) (string, error) {
	switch fs.NArg() {
	case 0:
		return ".", nil
	case 1:
		return fs.Arg(0), nil
	default:
		return "", fmt.Errorf("want at most one spec path, got %d", fs.NArg())
	}
}

func runRender(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "render", "[spec file or dir]")
	var f jobFlags
	f.add(fs)
	format := fs.String("format", "hcl", "output format: hcl (nomad job run) or json (nomad job run -json)")
	printVar := fs.Bool("print-var-command", false, "also print (to stderr) the `nomad var put` command that creates the job's variable; it shows the invoke secret in clear and needs the cluster key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := specPath(fs)
	if err != nil {
		return err
	}
	if *format != "hcl" && *format != "json" {
		return fmt.Errorf("--format %q: want hcl or json", *format)
	}
	cs, err := compileSpecs(ctx, env, path, &f, *printVar)
	if err != nil {
		return err
	}
	if len(cs) != 1 {
		var names []string
		for _, c := range cs {
			names = append(names, c.fn.Name)
		}
		return fmt.Errorf("%s holds %d functions (%s) and a jobspec holds one job: pick one with --function", path, len(cs), strings.Join(names, ", "))
	}
	var out []byte
	if *format == "hcl" {
		out, err = jobs.RenderHCL(cs[0].job)
	} else {
		out, err = jobs.RenderJSON(cs[0].job)
	}
	if err != nil {
		return err
	}
	if _, err := env.stdout.Write(out); err != nil {
		return err
	}
	reportBundles(env.stderr, cs)
	id := *cs[0].job.ID
	if g := cs[0].job.TaskGroups; len(g) > 0 && len(g[0].Services) > 0 && g[0].Services[0].Connect != nil {
		fmt.Fprintf(env.stderr, "job %s is Connect-native: gateways call its instances over mutual TLS as service %s, "+
			"so Consul's intentions must allow the gateways' service (connect service, default nimbus-gateway) to call it\n",
			id, g[0].Services[0].Name)
		if *printVar {
			return errors.New("--print-var-command: a Connect-native job reads no invoke secret, so it needs no variable")
		}
		return nil
	}
	fmt.Fprintf(env.stderr, "job %s holds no secret: its tasks read the invoke secret from Nomad Variable %s (item %s), which must exist before the job runs; "+
		"nimbus deploy writes it, or pass --print-var-command to print the `nomad var put` command for plain `nomad job run`\n",
		id, jobs.VariablePath(id), jobs.VariableInvokeSecret)
	if *printVar {
		cmd, err := jobs.VarPutCommand(cs[0].secrets)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.stderr, cmd)
	}
	return nil
}
