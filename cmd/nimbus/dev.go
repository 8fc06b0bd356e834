package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/nimbus-fn/nimbus/bundle/build"
	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	driverlocal "github.com/nimbus-fn/nimbus/driver/local"
	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/images"
	"github.com/nimbus-fn/nimbus/gateway/local"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/specs"
)

// defaultDevDir is what `nimbus dev` serves without an argument.
const defaultDevDir = "examples/hello-go"

func init() {
	register("dev", command{
		summary: "run functions locally: gateway + launcher + spec reload in one process",
		run:     runDev,
	})
}

func runDev(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "dev", "[DIR]")
	listen := fs.String("listen", "127.0.0.1:9000", "listen address")
	cfgPath := fs.String("config", "", "gateway config file (HCL); dev = true is implied")
	logLevel := fs.String("log-level", "info", "log level (trace, debug, info, warn, error)")
	versionsDir := fs.String("state-dir", defaultStateDir(env), "local version store nimbus publish, alias and layer write (env "+envStateDir+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	cfg.Dev = true
	listenSet := false
	fs.Visit(func(f *flag.Flag) { listenSet = listenSet || f.Name == "listen" })
	if cfg.Listen == "" || listenSet {
		cfg.Listen = *listen
	}
	return serveDev(ctx, env, cfg, fs.Arg(0), *versionsDir, newLogger(env, "nimbus", *logLevel))
}

// defaultStateDir is the version store nimbus dev and the CLI's publish,
// alias and layer commands use by default: $NIMBUS_STATE_DIR, else
// .nimbus/state, made absolute against the working directory (instances
// take code and layer dirs only as absolute paths).
func defaultStateDir(env *cliEnv) string {
	d := env.getenv(envStateDir)
	if d == "" {
		d = filepath.Join(".nimbus", "state")
	}
	if abs, err := filepath.Abs(d); err == nil {
		return abs
	}
	return d
}

// runDevGateway serves the specs in dir (the dev sample when empty and
// examples/hello-go is absent) with local instances until ctx ends, with the
// default version store.
func runDevGateway(ctx context.Context, env *cliEnv, cfg *config.Config, dir string, logger hclog.Logger) error {
	return serveDev(ctx, env, cfg, dir, defaultStateDir(env), logger)
}

// serveDev is `nimbus dev`: the spec directory's $LATEST overlaid with the
// published versions, aliases and layers of the version store in
// versionsDir, served by local instances; the gateway's embedded NATS
// holds the async queue and the artifact store.
func serveDev(ctx context.Context, env *cliEnv, cfg *config.Config, dir, versionsDir string, logger hclog.Logger) error {
	// Instances refuse relative code, layer and state dirs, and the store's
	// paths reach them as they are.
	versionsDir, err := filepath.Abs(versionsDir)
	if err != nil {
		return fmt.Errorf("version store %s: %w", versionsDir, err)
	}
	tmp, err := filepath.Abs(os.TempDir())
	if err != nil {
		return fmt.Errorf("temporary dir: %w", err)
	}
	// A nimbus dev killed with SIGKILL leaves its state dir behind; the
	// next one removes those whose owner is gone.
	if removed, err := sweepStaleTempDirs(tmp, staleTempPrefixes); err != nil {
		logger.Warn("removing stale temporary dirs", "error", err)
	} else if len(removed) > 0 {
		logger.Info("removed temporary dirs of nimbus processes that no longer run", "dirs", removed)
	}
	stateDir, err := makeOwnedTempDir(tmp, "nimbus-dev-")
	if err != nil {
		return fmt.Errorf("creating dev state dir: %w", err)
	}
	defer os.RemoveAll(stateDir)
	if dir == "" {
		dir = defaultDevDir
		if _, err := os.Stat(dir); err != nil {
			if dir, err = writeDevSample(stateDir); err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "No %s here; serving the built-in sample from %s\n", defaultDevDir, dir)
		}
	}
	// A consul block in the config (only there: Defaults fills one in
	// below) makes the dev gateway register in Consul.
	registers := cfg.Consul != nil && cfg.Consul.Registers()
	if cfg.ConnectEnabled() && !registers {
		return errors.New("gateway config: connect needs a consul block with registration on: the dev gateway's leaf certificates, intentions and Connect-native URL services live in Consul")
	}
	if registers {
		cfg.Consul.Address = cmp.Or(cfg.Consul.Address, env.getenv("CONSUL_HTTP_ADDR"))
		cfg.Consul.Token = cmp.Or(cfg.Consul.Token, env.getenv("CONSUL_HTTP_TOKEN"))
	}
	cat, err := catalog.NewLocal(dir, devSpecLoader(specs.Load, &specs.Options{Env: env.getenv}), logger)
	if err != nil {
		return err
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	if err := requireInstanceSecret(cfg, logger); err != nil {
		return err
	}
	if cfg.Queue.URL == "" && cfg.Queue.DataDir == "" {
		// In the state dir, not a nimbus-queue-* dir of its own: it goes
		// with the state dir, at exit or in the next sweep.
		cfg.Queue.DataDir = filepath.Join(stateDir, "queue")
	}
	// Published versions, aliases and layers come from the store the CLI
	// writes; the overlay reads it every second, so a publish or an alias
	// change is live without a restart.
	vlocal, err := versions.NewLocal(versionsDir)
	if err != nil {
		return err
	}
	vstore := versions.New(vlocal, logger)
	// Aliases a spec declares run the versions they name (published ones),
	// never $LATEST in their place; reportAliases says which cannot run.
	// Functions created or changed through the management API come from
	// the same store; a spec file saved after an API write wins again.
	fstore := functions.NewStore(vlocal)
	// onStoreChange is set once the pool exists: a change in what the
	// store serves replaces instances as a spec change does.
	var onStoreChange func()
	fcat := functions.NewCatalog(cat, fstore, functions.CatalogConfig{SpecTime: specFileTime, OnChange: func() {
		if onStoreChange != nil {
			onStoreChange()
		}
	}}, logger)
	if err := fcat.Refresh(ctx); err != nil {
		return fmt.Errorf("reading the function store in %s: %w", versionsDir, err)
	}
	overlay := versions.NewCatalog(local.SpecAliases{Base: fcat}, vstore, versions.CatalogConfig{Published: true}, logger)
	if err := overlay.Refresh(ctx); err != nil {
		return fmt.Errorf("reading the version store in %s: %w", versionsDir, err)
	}
	// Image functions: registries are reached with the docker-style config
	// of the environment (loopback ones over plain HTTP).
	var imgFlags imageFlags
	resolver := imgFlags.resolver(env)
	launcher := &devLauncher{
		launcher: driverlocal.NewLauncher(filepath.Join(stateDir, "instances"), logger),
		stateDir: stateDir, key: cfg.InvokeKeyBytes, region: cfg.Region, account: cfg.AccountID,
		versions: vstore, layers: vlocal,
		logger:   logger,
		resolver: resolver, pull: imgFlags.auth(env),
		// An instance that cannot pull its image (deleted, refused)
		// fails its function with Lambda's reason, as GetFunction shows.
		imageFailed: func(ctx context.Context, function, image string, pullErr error) {
			changed, err := images.PullFailed(ctx, fstore, function, image, pullErr)
			switch {
			case err != nil:
				logger.Warn("recording an image pull failure", "function", function, "error", err)
			case changed:
				logger.Error("function failed: its instance cannot pull its image", "function", function, "image", image, "reason", oci.Reason(pullErr), "error", pullErr)
			}
		},
	}
	pool := local.New(launcher, overlay, logger)
	// Code edits count like spec edits: instances of a function whose code
	// directory changed are replaced (and Go code rebuilt). So does a new
	// version of a layer $LATEST uses (unpinned: the newest).
	stamp := func(fn *specs.Function) string { return codeStamp(fn) + layerStamp(ctx, vstore, fn) }
	pool.SetCodeStamp(stamp)
	cat.WatchAlso(func(snap *catalog.Snapshot) string {
		var b strings.Builder
		for _, fn := range snap.Functions() {
			if l := fn.Latest(); l != nil {
				b.WriteString(fn.Name + "=" + stamp(l) + ";")
			}
		}
		return b.String()
	})
	// One dev process is one member of every event-source group: a stable
	// name lets a restarted dev take back what it held at once.
	host, _ := os.Hostname()
	// The controller makes an API write live: the code is unpacked by the
	// time the write is stored, so applying is checking it is there.
	controller := functions.NewController(fstore, functions.ApplierFunc(func(ctx context.Context, f *functions.Function) error {
		if f.Spec.IsImage() {
			return checkImage(ctx, resolver, f.Spec)
		}
		return devApply(ctx, f)
	}), time.Second, logger)
	// A provisioned concurrency config changes no function entry, so the
	// controller applies nothing: every write also reloads the versions
	// overlay and provisions at once (in the background).
	provisionKick := make(chan struct{}, 1)
	manage := &server.ManageDeps{
		Functions: fstore, Versions: vstore, UnpackDir: vlocal.UnpackedDir, ResolveImage: resolver.Resolve,
		// Read your writes: versions and aliases answer as soon as the
		// call that made them has.
		Changed: func(ctx context.Context) {
			if err := fcat.Refresh(ctx); err != nil {
				logger.Warn("reloading managed functions", "error", err)
			}
			if err := overlay.Refresh(ctx); err != nil {
				logger.Warn("reloading versions and aliases", "error", err)
			}
		},
		Applied: func() {
			controller.Kick()
			select {
			case provisionKick <- struct{}{}:
			default:
			}
		},
		Provisioned: func(ctx context.Context, function, version string) (int, error) {
			ready, err := pool.ProvisionedStatus(function, version)
			per := 1
			if fn, ferr := overlay.Function(ctx, function); ferr == nil && fn.Versions[version] != nil {
				per = max(fn.Versions[version].EnvironmentsPerInstance, 1)
			}
			return ready * per, err
		},
		Declared: func(name string) string {
			if f, err := cat.Snapshot().Function(name); err == nil && f.Latest() != nil {
				return f.Latest().Pos
			}
			return ""
		},
	}
	deps := server.Deps{Catalog: overlay, Source: pool, Scaler: pool, Logger: logger,
		MappingBackend: vlocal, Member: "dev-" + host, Manage: manage, Blueprints: consoleBlueprints{}}
	var reg *devConsul
	if registers {
		if reg, err = newDevConsul(cfg, overlay, logger); err != nil {
			return err
		}
		defer reg.close() // the server closes the listeners once it served
		deps.Listener, deps.Registrars, deps.Mesh = reg.ln, []server.Registrar{reg.r}, reg.mesh
		reg.sync(ctx) // registered with the gateway at Start
	}
	s, err := server.New(cfg, deps)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	storeDir := versionsDir
	printDevEndpoints(env, cfg, s.Addr(), storeDir, cat.Snapshot())
	printDevNATS(env, s.Queue().ClientURL())
	reportAliases(ctx, env, vstore, cat.Snapshot())
	reloadCtx, stopReload := context.WithCancel(context.WithoutCancel(ctx))
	cat.Watch(func(snap *catalog.Snapshot) {
		// A saved spec may take a function back from the store.
		if err := fcat.Refresh(reloadCtx); err != nil {
			logger.Warn("reloading managed functions", "error", err)
		}
		pool.Refresh(reloadCtx)
		reg.sync(reloadCtx)
		printDevEndpoints(env, cfg, s.Addr(), storeDir, snap)
		reportAliases(reloadCtx, env, vstore, snap)
	})
	go cat.Run(reloadCtx, 500*time.Millisecond)
	go overlay.Run(reloadCtx)
	onStoreChange = func() {
		pool.Refresh(reloadCtx)
		reg.sync(reloadCtx)
	}
	reg.run(reloadCtx)
	go fcat.Run(reloadCtx)
	controller.OnApplied(func() {
		if err := overlay.Refresh(reloadCtx); err != nil {
			logger.Warn("reloading versions and aliases", "error", err)
		}
		if err := fcat.Refresh(reloadCtx); err != nil {
			logger.Warn("reloading managed functions", "error", err)
		}
	})
	go controller.Run(reloadCtx)
	go func() {
		for {
			select {
			case <-reloadCtx.Done():
				return
			case <-provisionKick:
			}
			if err := overlay.Refresh(reloadCtx); err != nil {
				logger.Warn("reloading versions and aliases", "error", err)
			}
			if err := pool.Provision(reloadCtx); err != nil && reloadCtx.Err() == nil {
				logger.Error("provisioning instances", "error", err)
			}
		}
	}()
	// Provisioned concurrency from load time: schedule windows are checked
	// and failed launches retried every 15 s; reloads re-provision at once.
	go pool.RunProvisioned(reloadCtx, 15*time.Second)
	err = s.Serve(ctx)
	stopReload()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(err, pool.Close(stopCtx))
}

// requireInstanceSecret makes instances require a secret whenever callers
// must authenticate: with access keys but no invoke key, the gateway checks
// SigV4 while anyone on the host could call an instance's endpoint directly
// and skip it, so a random invoke key is made for this run.
func requireInstanceSecret(cfg *config.Config, logger hclog.Logger) error {
	if len(cfg.AccessKeys) == 0 || len(cfg.InvokeKeyBytes) > 0 || cfg.InvokeKeyFile != "" {
		return nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("making an invoke key: %w", err)
	}
	// Both forms: the server validates the config again, which derives
	// InvokeKeyBytes from InvokeKey.
	cfg.InvokeKey = hex.EncodeToString(key)
	cfg.InvokeKeyBytes = []byte(cfg.InvokeKey)
	logger.Info("access keys are set without an invoke key: instances require a random secret for this run")
	return nil
}

// devSpecLoader is how nimbus dev reads its specs, at start and on every
// reload: diagnostics become the error (the catalog logs it and keeps the
// previous specs), and so does a panic while reading, so no spec file can
// end the process. (specs.Load bounds the cost of evaluating a spec itself.)
func devSpecLoader(load func(string, *specs.Options) (*specs.File, hcl.Diagnostics), opts *specs.Options) func(string) (*specs.File, error) {
	return func(path string) (f *specs.File, err error) {
		defer func() {
			if r := recover(); r != nil {
				f, err = nil, fmt.Errorf("reading specs in %s: internal error: %v", path, r)
			}
		}()
		// An empty directory is a valid start: functions come through
		// the management API.
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			if names, err := specs.SpecFiles(path); err == nil && len(names) == 0 {
				return &specs.File{}, nil
			}
		}
		f, diags := load(path, opts)
		if diags.HasErrors() {
			return nil, errors.New(specs.FormatDiagnostics(diags, nil))
		}
		return f, nil
	}
}

// printDevEndpoints tells the developer where everything answers.
func printDevEndpoints(env *cliEnv, cfg *config.Config, addr, storeDir string, snap *catalog.Snapshot) {
	base := "http://" + addr
	_, port, _ := strings.Cut(addr, ":")
	// The console's line is a contract (console-contract.md): tests and
	// scripts read the URL from it.
	fmt.Fprintf(env.stdout, "\nconsole: %s%s\n", base, console.Prefix)
	fmt.Fprintf(env.stdout, "Invoke API:  %s   (aws lambda invoke --endpoint-url %s …, or nimbus invoke --endpoint %s FN)\n", base, base, base)
	fmt.Fprintf(env.stdout, "Metrics:     %s%s\n", base, server.MetricsPath)
	fmt.Fprintf(env.stdout, "Artifacts:   %s%s   (nimbus deploy --endpoint %s …)\n", base, artifacts.Path, base)
	fmt.Fprintf(env.stdout, "Versions:    %s   (nimbus publish, alias, layer publish with %s=%s)\n", storeDir, envStateDir, storeDir)
	for _, fn := range snap.Functions() {
		u := fn.URL()
		if u == nil {
			fmt.Fprintf(env.stdout, "Function %-20s (no URL)\n", fn.Name)
			continue
		}
		fmt.Fprintf(env.stdout, "Function %-20s %s://%s.%s:%s/   or   %s/url/%s/   (auth %s, %s)\n",
			fn.Name, "http", fn.Name, cfg.URLDomain, port, base, fn.Name, u.Auth, u.InvokeMode)
	}
	for _, fn := range snap.Functions() {
		if l := fn.Latest(); l != nil {
			for _, es := range l.EventSources {
				state := "enabled"
				if !es.Enabled {
					state = "disabled"
				}
				fmt.Fprintf(env.stdout, "Event source %s/%s: %s, %s   (nimbus event-sources)\n", fn.Name, es.Name, es.Type, state)
			}
		}
	}
}

// printDevNATS tells the developer how to reach the embedded NATS (async
// queue, artifact store, event sources without a url): its URL carries the
// token every client must present, so it goes to standard output, where
// the developer sees it, and never to the log. Empty with an external NATS.
func printDevNATS(env *cliEnv, url string) {
	if url == "" {
		return
	}
	fmt.Fprintf(env.stdout, "NATS:        %s   (embedded JetStream; the URL holds its token: keep it to yourself)\n", url)
}

// reportAliases prints, for every alias a spec declares (and the store does
// not override) that names a version not published in the store, where it
// is and what invoking it answers: nimbus dev refuses to run such an alias
// rather than running $LATEST in its place.
func reportAliases(ctx context.Context, env *cliEnv, store *versions.Store, snap *catalog.Snapshot) {
	for _, fn := range snap.Functions() {
		latest := fn.Latest()
		if latest == nil {
			continue
		}
		for _, a := range latest.Aliases {
			if _, err := store.Alias(ctx, fn.Name, a.Name); err == nil {
				continue // set in the store: that one runs
			}
			missing := unpublished(ctx, store, fn.Name, a)
			if len(missing) == 0 {
				continue
			}
			fmt.Fprintf(env.stdout, "%s: alias %s of %s names version %s, which is not published here: invoking %s:%s answers ResourceNotFoundException until nimbus publish %s creates it\n",
				aliasPos(latest, a.Name), a.Name, fn.Name, strings.Join(missing, ", "), fn.Name, a.Name, fn.Name)
		}
	}
}

// unpublished lists the versions alias a routes to that the store lacks.
func unpublished(ctx context.Context, store *versions.Store, fn string, a *specs.Alias) []string {
	names := []string{a.Version}
	for v := range a.Routing {
		names = append(names, v)
	}
	sort.Strings(names[1:])
	var missing []string
	for _, v := range names {
		if v == catalog.Latest {
			continue
		}
		n, err := strconv.Atoi(v)
		if err == nil {
			_, err = store.Version(ctx, fn, n)
		}
		if err != nil {
			missing = append(missing, v)
		}
	}
	return missing
}

// aliasPos is where fn's spec declares alias name ("file:line:col" of the
// block), found by reading the spec file again; fn.Pos when it cannot be.
func aliasPos(fn *specs.Function, name string) string {
	file := fn.Pos
	for i := 0; i < 2; i++ {
		if j := strings.LastIndexByte(file, ':'); j >= 0 {
			file = file[:j]
		}
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return fn.Pos
	}
	f, diags := hclsyntax.ParseConfig(src, file, hcl.InitialPos)
	if diags.HasErrors() {
		return fn.Pos
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return fn.Pos
	}
	for _, b := range body.Blocks {
		if b.Type != "function" || len(b.Labels) != 1 || b.Labels[0] != fn.Name {
			continue
		}
		for _, ab := range b.Body.Blocks {
			if ab.Type == "alias" && len(ab.Labels) == 1 && ab.Labels[0] == name {
				r := ab.DefRange()
				return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
			}
		}
	}
	return fn.Pos
}

// devLauncher adapts driver/local to the dev pool: it turns a function
// spec into an instance config. Go functions on provided runtimes whose code
// directory has sources but no bootstrap, or a bootstrap older than a source,
// are built first (cached by source fingerprint, so an edited function is
// rebuilt for its next instance); the log says which bootstrap runs.
type devLauncher struct {
	launcher        *driverlocal.Launcher
	stateDir        string
	key             []byte
	region, account string
	// versions resolves layer references; layers holds their unpacked
	// bundles (what nimbus layer publish wrote).
	versions *versions.Store
	layers   *versions.Local
	logger   hclog.Logger
	// resolver and pull run image functions (resolve a spec file's tag;
	// the instance pulls into stateDir/images).
	resolver *images.Resolver
	pull     oci.Auth
	// imageFailed hears of an instance whose image pull failed.
	imageFailed func(ctx context.Context, function, image string, err error)
	buildMu     sync.Mutex // one build at a time
	// builds are the custom builds run so far (guarded by buildMu).
	builds map[string]devBuild
}

var (
	_ local.Launcher            = (*devLauncher)(nil)
	_ local.ProvisionedLauncher = (*devLauncher)(nil)
)

// Launch starts an on-demand instance: environments start lazily.
func (l *devLauncher) Launch(ctx context.Context, fn *specs.Function, version string) (discovery.Instance, error) {
	return l.launch(ctx, fn, version, instance.InitOnDemand)
}

// LaunchProvisioned starts an instance of the provisioned group: every
// environment initialises at once, and the instance is handed over only when
// all of them are ready.
func (l *devLauncher) LaunchProvisioned(ctx context.Context, fn *specs.Function, version string) (discovery.Instance, error) {
	return l.launch(ctx, fn, version, instance.InitProvisioned)
}

// provisionedInitWait bounds how long a provisioned instance may take to
// initialise every environment (Lambda allows 10 s; slow machines get more).
const provisionedInitWait = 30 * time.Second

func (l *devLauncher) launch(ctx context.Context, fn *specs.Function, version, initType string) (discovery.Instance, error) {
	var (
		codeDir   string
		layerDirs []string
		image     *instance.ImageConfig
		err       error
	)
	if fn.IsImage() {
		// The same path as under Nomad: the instance pulls the image.
		if image, err = imageInstance(ctx, l.resolver, l.pull, fn, filepath.Join(l.stateDir, "images")); err != nil {
			return discovery.Instance{}, err
		}
	} else {
		if codeDir, err = l.codeDir(ctx, fn, version); err != nil {
			return discovery.Instance{}, err
		}
		// A published version names its layer versions; $LATEST takes
		// each layer's newest.
		if layerDirs, err = l.layers.LayerDirs(ctx, l.versions, fn); err != nil {
			return discovery.Instance{}, fmt.Errorf("function %s version %s: %w", fn.Name, version, err)
		}
	}
	timeout, err := time.ParseDuration(fn.Timeout)
	if err != nil {
		return discovery.Instance{}, fmt.Errorf("function %s timeout %q: %w", fn.Name, fn.Timeout, err)
	}
	cfg := &instance.Config{
		Function:           fn.Name,
		Version:            version,
		Runtime:            fn.Runtime,
		Handler:            fn.Handler,
		CodeDir:            codeDir,
		LayerDirs:          layerDirs,
		Image:              image,
		MemoryMB:           fn.MemoryMB,
		Timeout:            timeout,
		EphemeralStorageMB: fn.EphemeralStorageMB,
		Environments:       max(fn.EnvironmentsPerInstance, 1),
		InitializationType: initType,
		Env:                fn.Environment,
		Network:            fn.Network,
		InvokeAddr:         "127.0.0.1:0",
		Region:             l.region,
		AccountID:          l.account,
	}
	if len(l.key) > 0 {
		cfg.InvokeSecret = invokeapi.DeriveSecret(l.key, fn.Name, version)
	}
	// The instance outlives the scaler call that launched it.
	h, err := l.launcher.Launch(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return discovery.Instance{}, err
	}
	if image != nil && l.imageFailed != nil {
		if perr := h.ImageFailure(); perr != nil {
			l.imageFailed(context.WithoutCancel(ctx), fn.Name, image.Ref, perr)
		}
	}
	in := discovery.Instance{ID: h.ID, Address: h.Addr, Function: fn.Name, Version: version, Group: discovery.GroupOnDemand}
	if initType != instance.InitProvisioned {
		return in, nil
	}
	if err := waitInitialised(ctx, h); err != nil {
		_ = h.Stop(context.WithoutCancel(ctx))
		return discovery.Instance{}, fmt.Errorf("provisioned instance %s: %w", h.ID, err)
	}
	in.Group = discovery.GroupProvisioned
	return in, nil
}

// waitInitialised polls the instance until every environment is idle
// (initialised), the wait times out or ctx ends.
func waitInitialised(ctx context.Context, h *driverlocal.Handle) error {
	ctx, cancel := context.WithTimeout(ctx, provisionedInitWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		st := h.Status()
		if st.Idle >= st.Max {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d environments initialised: %w", st.Idle, st.Max, ctx.Err())
		case <-tick.C:
		}
	}
}

func (l *devLauncher) Stop(ctx context.Context, id string) error {
	h, ok := l.launcher.Get(id)
	if !ok {
		return fmt.Errorf("no instance %s", id)
	}
	return h.Stop(ctx)
}

// codeDir returns the directory to run for version of fn: for $LATEST the
// output of its build (buildFunction: the spec's build block, else the
// runtime's default, built for this machine's GOOS into the state dir and
// reused while the sources are unchanged), for a published version its
// unpacked bundle, built when it was published (only the Go default still
// applies, to versions published as sources).
func (l *devLauncher) codeDir(ctx context.Context, fn *specs.Function, version string) (string, error) {
	if fn.Code == nil || fn.Code.Dir == "" {
		return "", fmt.Errorf("function %s: nimbus dev runs code from a directory (code { dir = … }); zip and URL code need a cluster", fn.Name)
	}
	dir, err := functionCodeDir(fn)
	if err != nil {
		return "", err
	}
	if version != jobs.LatestVersion {
		if !strings.HasPrefix(fn.Runtime, "provided") {
			return dir, nil
		}
		// Versions published before publish built code may hold Go sources
		// only: the Go default still builds those (a no-op for a bundle
		// that holds its bootstrap).
		plain := *fn
		plain.Build = nil
		fn = &plain
	}
	l.buildMu.Lock()
	defer l.buildMu.Unlock()
	if fn.Build != nil && !fn.Build.Skip {
		return l.customBuild(ctx, fn, dir)
	}
	if fn.Build == nil && strings.HasPrefix(fn.Runtime, "provided") {
		need, prebuilt, newest, err := build.GoStatus(dir)
		switch {
		case err != nil:
			return "", fmt.Errorf("function %s: %w", fn.Name, err)
		case prebuilt != "":
			l.logger.Info("running the prebuilt bootstrap", "function", fn.Name, "bootstrap", prebuilt)
		case need && newest != "":
			l.logger.Info("Go sources are newer than the prebuilt bootstrap; building them instead",
				"function", fn.Name, "bootstrap", filepath.Join(dir, "bootstrap"), "source", newest)
		}
	}
	res, err := buildFunction(ctx, fn, dir, l.buildOptions(), nil)
	if err != nil {
		return "", err
	}
	if res.Step != "" {
		l.logger.Info("running the build of the function's code", "function", fn.Name, "dir", dir,
			"build", res.Step, "output", res.Dir, "reused", res.Cached)
	}
	return res.Dir, nil
}

// customBuild runs fn's build command unless the code dir is as the last
// run of it left it. Must hold buildMu.
func (l *devLauncher) customBuild(ctx context.Context, fn *specs.Function, dir string) (string, error) {
	stamp, err := build.Stamp(dir)
	if err != nil {
		return "", fmt.Errorf("function %s: %w", fn.Name, err)
	}
	key := fn.Name + "\x00" + dir + "\x00" + fn.Build.Command + "\x00" + fn.Build.Output
	if b, ok := l.builds[key]; ok && b.stamp == stamp {
		return b.dir, nil
	}
	l.logger.Info("running the build command", "function", fn.Name, "dir", dir, "command", fn.Build.Command)
	res, err := buildFunction(ctx, fn, dir, l.buildOptions(), nil)
	if err != nil {
		return "", err
	}
	if stamp, err = build.Stamp(dir); err != nil {
		return "", fmt.Errorf("function %s: %w", fn.Name, err)
	}
	if l.builds == nil {
		l.builds = map[string]devBuild{}
	}
	l.builds[key] = devBuild{stamp: stamp, dir: res.Dir}
	return res.Dir, nil
}

// devBuild is a custom build's output and the code dir's stamp after it.
type devBuild struct{ stamp, dir string }

// buildOptions builds for this machine into the state dir, which keeps
// builds of unchanged sources.
func (l *devLauncher) buildOptions() build.Options {
	return build.Options{CacheDir: filepath.Join(l.stateDir, "build"), GOOS: runtime.GOOS}
}

// codeStamp fingerprints a function's code directory (names, sizes and
// mtimes of its files, not recursive); "" when it has none.
func codeStamp(fn *specs.Function) string {
	dir, err := functionCodeDir(fn)
	if err != nil || dir == "" {
		return ""
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	h := sha256.New()
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			fmt.Fprintf(h, "%s|%d|%d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// layerStamp names the layer versions fn's references resolve to now ("" for
// a function without layers), or why they do not resolve.
func layerStamp(ctx context.Context, store *versions.Store, fn *specs.Function) string {
	if len(fn.Layers) == 0 {
		return ""
	}
	lvs, err := store.ResolveLayers(ctx, fn.Runtime, fn.Layers)
	if err != nil {
		return "|layers: " + err.Error()
	}
	var b strings.Builder
	b.WriteString("|layers:")
	for _, lv := range lvs {
		fmt.Fprintf(&b, " %s:%d", lv.Layer, lv.Number)
	}
	return b.String()
}

// The built-in sample: a Python function with a public URL, used when
// neither a directory is given nor examples/hello-go exists.
const devSampleSpec = `function "hello" {
  description = "Built-in nimbus dev sample"
  runtime     = "python3.12"
  handler     = "app.handler"
  timeout     = "5s"

  code {
    dir = "."
  }

  url {
    auth = "NONE"
  }
}
`

const devSampleCode = `import json


def handler(event, context):
    name = "world"
    if isinstance(event, dict):
        params = event.get("queryStringParameters") or {}
        name = params.get("name") or event.get("name") or name
    return {"message": "hello, " + name}
`

func writeDevSample(stateDir string) (string, error) {
	dir := filepath.Join(stateDir, "sample")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), []byte(devSampleSpec), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(devSampleCode), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// specFileTime is when the spec file that declares fn was last written
// (zero when it cannot be read): a spec saved after an API write wins.
func specFileTime(fn *specs.Function) time.Time {
	file := fn.Pos
	for range 2 {
		if i := strings.LastIndexByte(file, ':'); i > 0 {
			file = file[:i]
		}
	}
	st, err := os.Stat(file)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// devApply puts a stored revision into service in dev mode: its code must
// be on disk (the API unpacked it before storing the revision).
func devApply(_ context.Context, f *functions.Function) error {
	if f.Spec.Code == nil || f.Spec.Code.Dir == "" {
		return fmt.Errorf("function %s has no code directory", f.Name)
	}
	if _, err := os.Stat(f.Spec.Code.Dir); err != nil {
		return fmt.Errorf("function %s: code: %w", f.Name, err)
	}
	return nil
}
