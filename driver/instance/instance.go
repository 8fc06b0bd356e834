package instance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/driver/runtimeapi"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
	"github.com/nimbus-fn/nimbus/mesh"
)

// MaxStreamedResponse is the largest streamed response body (Lambda's 200 MB).
const MaxStreamedResponse = 200 << 20

// Instance hosts one function version's execution environments and its
// invoke endpoint.
type Instance struct {
	cfg        *Config
	log        hclog.Logger
	id         string
	optDir     string
	runtimeDir string
	cgroup     *cgroupParent
	// detectCgroup finds the cgroup parent at Start (tests replace it to
	// exercise the RSS-polling fallback on hosts with cgroups).
	detectCgroup func(parent string) *cgroupParent
	cred         *syscall.Credential
	// isolated: environments run in driver/sandbox; isolationMissing says
	// why not when the host cannot (logged once, at Start).
	isolated         bool
	isolationMissing []string
	// imageStore, image and imageErr (image functions): the client's
	// image cache, the pulled image (pinned from Start to Stop) or why it
	// could not be pulled (every invocation answers with it).
	imageStore *oci.Store
	image      *oci.Image
	imageErr   *imageError
	getenv     func(string) string
	stdout     *logSink
	stderr     *logSink
	// logs keeps recent log lines for invokeapi.PathLogs.
	logs *logRing
	envs []*env

	invokeLn  net.Listener
	invokeSrv *http.Server
	// mesh is the endpoint's Connect identity (nil without Config.Mesh).
	mesh *meshServer
	// wrapAuthz, when set (tests, before Start), wraps the agent the
	// endpoint asks about intentions.
	wrapAuthz func(mesh.AuthorizeAgent) mesh.AuthorizeAgent

	invocations atomic.Uint64
	// maxStream bounds a streamed response (Lambda: 200 MB).
	maxStream int64

	mu      sync.Mutex
	started bool
	// closing is set (under mu) when Stop begins; it is atomic so that
	// holders of an env.mu can read it without taking mu.
	closing atomic.Bool
	// closingCh closes when Stop begins: log followers end then, so the
	// invoke server's drain does not wait for them.
	closingCh chan struct{}
	stopped   chan struct{}
	pins      []*os.File // PinDirs, locked shared while the instance runs
}

// New validates cfg (after defaults) and returns an instance that is not
// started yet.
func New(cfg *Config, logger hclog.Logger) (*Instance, error) {
	if cfg == nil {
		return nil, errors.New("instance config is nil")
	}
	c := cfg.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	id := uuid.NewString()[:8]
	cred, err := credential(c.RunAs)
	if err != nil {
		return nil, err
	}
	isolated, missing, err := isolationPlan(c, cred)
	if err != nil {
		return nil, err
	}
	if c.Image != nil && !isolated {
		why := "isolation is disabled"
		if len(missing) > 0 {
			why = "this host cannot isolate: " + strings.Join(missing, "; ")
		}
		return nil, fmt.Errorf("%w (their root is the image, never the host's): %s", ErrImageNeedsIsolation, why)
	}
	runtimeDir := c.RuntimesDir
	if runtimeDir == "" {
		runtimeDir = filepath.Join(c.StateDir, "runtime")
	}
	return &Instance{
		cfg:              c,
		log:              logger.Named("instance").With("function", c.Function, "version", c.Version, "instance", id),
		id:               id,
		optDir:           filepath.Join(c.StateDir, "opt"),
		runtimeDir:       runtimeDir,
		cred:             cred,
		isolated:         isolated,
		isolationMissing: missing,
		getenv:           os.Getenv,
		detectCgroup:     detectCgroup,
		stopped:          make(chan struct{}),
		closingCh:        make(chan struct{}),
		logs:             newLogRing(nil),
		maxStream:        MaxStreamedResponse,
	}, nil
}

// Config returns the effective configuration (defaults applied).
func (in *Instance) Config() Config { return *in.cfg }

// Start prepares the state directory, binds every environment's Runtime API
// listener and the invoke listener, and (for provisioned concurrency) starts
// all environments. Bootstraps are spawned only after their listener is bound.
func (in *Instance) Start(ctx context.Context) error {
	in.mu.Lock()
	if in.started {
		in.mu.Unlock()
		return errors.New("instance already started")
	}
	in.started = true
	in.mu.Unlock()

	c := in.cfg
	if err := in.pin(c.PinDirs); err != nil {
		return err
	}
	if err := os.MkdirAll(c.StateDir, 0o755); err != nil {
		return fmt.Errorf("creating state dir: %w", err)
	}
	_ = os.RemoveAll(in.optDir)
	if err := mergeLayers(c.LayerDirs, in.optDir); err != nil {
		return err
	}
	if err := in.prepareRuntime(); err != nil {
		return err
	}
	if c.Image != nil {
		// Before any environment: their plans (and zygotes) need the layers.
		in.pullImage(ctx)
	}
	switch {
	case in.isolated && c.Image == nil:
		openToFunctions(append([]string{c.CodeDir}, c.LayerDirs...)...)
		in.log.Debug("environments are isolated", "uid_range", in.uidRange(), "run_as", c.RunAs)
	case len(in.isolationMissing) > 0:
		in.log.Warn("environments run WITHOUT isolation: this host cannot provide it", "missing", strings.Join(in.isolationMissing, "; "))
	}
	in.cgroup = in.detectCgroup(c.CgroupParent)
	if in.cgroup != nil {
		in.cgroup.sweep(time.Now())
		in.log.Debug("limiting memory with cgroups", "cgroup", in.cgroup.String())
	} else {
		in.log.Debug("no writable cgroup v2 or v1 memory hierarchy; limiting memory by polling RSS")
	}
	var err error
	if in.stdout, err = openSink(c.StdoutPath, os.Stdout); err != nil {
		return fmt.Errorf("opening stdout sink: %w", err)
	}
	if in.stderr, err = openSink(c.StderrPath, os.Stderr); err != nil {
		_ = in.stdout.Close()
		return fmt.Errorf("opening stderr sink: %w", err)
	}
	for i := 0; i < c.Environments; i++ {
		e, err := in.newEnv(i)
		if err != nil {
			in.abortStart()
			return err
		}
		in.envs = append(in.envs, e)
	}
	if c.Mesh != nil {
		if in.mesh, err = startMesh(ctx, c.Mesh, in.log, in.wrapAuthz); err != nil {
			in.abortStart()
			return err
		}
	}
	var lc net.ListenConfig
	in.invokeLn, err = lc.Listen(ctx, "tcp", c.InvokeAddr)
	if err != nil {
		in.abortStart()
		return fmt.Errorf("binding invoke endpoint %s: %w", c.InvokeAddr, err)
	}
	if in.mesh != nil {
		in.invokeLn = tls.NewListener(in.invokeLn, in.mesh.tlsConfig())
	}
	in.invokeSrv = &http.Server{Handler: in.handler(), ReadHeaderTimeout: 10 * time.Second}
	if in.mesh != nil {
		in.invokeSrv.ConnContext = in.mesh.connContext
	}
	go func() { _ = in.invokeSrv.Serve(in.invokeLn) }()
	in.log.Info("instance started", "invoke_addr", in.Addr(), "environments", c.Environments, "runtime", c.Runtime, "mesh", in.mesh != nil)
	if c.InitializationType == InitProvisioned {
		in.warm(c.Environments)
	}
	return nil
}

func (in *Instance) abortStart() {
	if in.mesh != nil {
		in.mesh.close()
	}
	for _, e := range in.envs {
		_ = e.srv.Close()
		e.closeZygote()
		e.closeCgroup()
		e.uidLease.release()
		_ = e.netns.Close()
	}
	_ = in.stdout.Close()
	_ = in.stderr.Close()
	in.unpin()
}

// newEnv creates environment i's directories and binds its Runtime API.
func (in *Instance) newEnv(i int) (*env, error) {
	e := &env{inst: in, idx: i, closed: make(chan struct{})}
	e.log = in.log.With("environment", i)
	e.tmpDir = filepath.Join(e.dirName(), "tmp")
	if err := os.MkdirAll(e.tmpDir, 0o1777); err != nil {
		return nil, fmt.Errorf("creating environment tmp dir: %w", err)
	}
	if in.cred != nil {
		_ = os.Chown(e.tmpDir, int(in.cred.Uid), int(in.cred.Gid))
	}
	if in.isolated {
		if err := in.isolateEnv(e); err != nil {
			return nil, err
		}
	}
	if in.cgroup != nil && in.cgroup.v1 {
		cg, err := in.cgroup.create(e.cgroupName(), int64(in.cfg.MemoryMB)<<20)
		if err != nil {
			return nil, err
		}
		e.cgV1, e.spawner = cg, newSpawner(cg)
	}
	var ln net.Listener
	var err error
	if in.cfg.Network == NetworkNone {
		// The function reaches its Runtime API on its own loopback: the
		// listener is opened inside its network namespace.
		e.netns, ln, err = sandbox.NewNetNS("127.0.0.1:0")
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		e.closeCgroup()
		e.uidLease.release()
		return nil, fmt.Errorf("binding runtime api for environment %d: %w", i, err)
	}
	e.ln, e.addr = ln, ln.Addr().String()
	if in.isolated && (in.cgroup == nil || in.cgroup.v1) {
		// (cgroup v2 gives each process a fresh cgroup at its birth, which
		// a zygote's fork cannot.)
		e.startZygote()
	}
	info := runtimeapi.FunctionInfo{FunctionName: in.cfg.Function, FunctionVersion: in.cfg.Version, Handler: in.cfg.Handler}
	e.srv = &http.Server{Handler: runtimeapi.NewServer(e, info, uuid.NewString, e.closed)}
	go func() { _ = e.srv.Serve(ln) }()
	return e, nil
}

// closeCgroup ends a cgroup v1 environment's spawner and removes its
// cgroup; its processes are gone (or were never started).
func (e *env) closeCgroup() {
	if e.spawner != nil {
		e.spawner.stop()
		e.cgV1.remove()
	}
}

// Addr is the bound invoke endpoint address (host:port).
func (in *Instance) Addr() string {
	if in.invokeLn == nil {
		return ""
	}
	return in.invokeLn.Addr().String()
}

func (in *Instance) isClosing() bool { return in.closing.Load() }

// errNoIdle and errClosing are acquire's refusals.
var (
	errNoIdle  = errors.New("no idle environment")
	errClosing = errors.New("instance is shutting down")
)

// acquire assigns inv to the most ready free environment, spawning its
// process if needed. It never waits for a busy environment.
func (in *Instance) acquire(inv *invocation) error {
	in.mu.Lock()
	if in.closing.Load() {
		in.mu.Unlock()
		return errClosing
	}
	var best *env
	bestRank := 0
	for _, e := range in.envs {
		e.mu.Lock()
		rank, ok := e.freeLocked()
		e.mu.Unlock()
		if ok && (best == nil || rank < bestRank) {
			best, bestRank = e, rank
			if rank == 0 {
				break
			}
		}
	}
	if best == nil {
		in.mu.Unlock()
		return errNoIdle
	}
	best.mu.Lock()
	spawn := false
	if _, ok := best.freeLocked(); ok {
		spawn = best.assignLocked(inv)
	} else {
		best.mu.Unlock()
		in.mu.Unlock()
		return errNoIdle
	}
	best.mu.Unlock()
	in.mu.Unlock()
	if spawn {
		best.spawn()
	}
	return nil
}

// warm starts stopped environments until at least n are running.
func (in *Instance) warm(n int) {
	in.mu.Lock()
	if in.closing.Load() {
		in.mu.Unlock()
		return
	}
	var toSpawn []*env
	running := 0
	for _, e := range in.envs {
		e.mu.Lock()
		if e.state != stateStopped {
			running++
		}
		e.mu.Unlock()
	}
	for _, e := range in.envs {
		if running >= n {
			break
		}
		e.mu.Lock()
		if e.warmLocked() {
			toSpawn = append(toSpawn, e)
			running++
		}
		e.mu.Unlock()
	}
	in.mu.Unlock()
	for _, e := range toSpawn {
		e.spawn()
	}
}

// Status reports environment accounting.
func (in *Instance) Status() invokeapi.Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := invokeapi.Status{
		Function:           in.cfg.Function,
		Version:            in.cfg.Version,
		Max:                len(in.envs),
		InitializationType: in.cfg.InitializationType,
		Invocations:        in.invocations.Load(),
		ShuttingDown:       in.closing.Load(),
	}
	for _, e := range in.envs {
		e.mu.Lock()
		switch {
		case e.inv != nil:
			st.Busy++
		case e.state == stateIdle || e.state == stateDone:
			st.Idle++
		case e.state == stateInitializing:
			st.Initializing++
		}
		if e.state != stateStopped && e.state != stateClosed {
			st.Started++
		}
		e.mu.Unlock()
	}
	return st
}

// Stop stops taking invocations, lets in-flight ones finish until ctx ends,
// then ends every environment (SIGTERM, SIGKILL after StopGrace) and closes
// the listeners and log sinks.
func (in *Instance) Stop(ctx context.Context) error {
	in.mu.Lock()
	if in.closing.Load() {
		in.mu.Unlock()
		<-in.stopped
		return nil
	}
	in.closing.Store(true)
	close(in.closingCh)
	in.mu.Unlock()
	defer close(in.stopped)

	var errs []error
	if in.invokeSrv != nil {
		// Shutdown waits for in-flight invoke handlers (bounded by ctx).
		if err := in.invokeSrv.Shutdown(ctx); err != nil {
			_ = in.invokeSrv.Close()
			errs = append(errs, fmt.Errorf("draining invocations: %w", err))
		}
	}
	if in.mesh != nil {
		in.mesh.close()
	}
	var wg sync.WaitGroup
	for _, e := range in.envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.stop(in.cfg.StopGrace, ctx.Done())
		}()
	}
	wg.Wait()
	for _, e := range in.envs {
		close(e.closed) // releases extension polls of processes that outlived SIGKILL
		_ = e.srv.Close()
		e.closeZygote()
		e.closeCgroup()
		e.uidLease.release()
		_ = e.netns.Close()
	}
	if in.stdout != nil {
		_ = in.stdout.Close()
		_ = in.stderr.Close()
	}
	in.unpin()
	in.releaseImage()
	in.log.Info("instance stopped", "invocations", in.invocations.Load())
	return errors.Join(errs...)
}

// Run starts an instance from cfg, writes ReadyFile, serves until ctx ends
// and stops. It is what `nimbus-driver instance` runs: it assumes the
// process is the instance's own and sizes the Go runtime for it (see
// tuneRuntime); in-process hosts (the local launcher, tests) use New.
func Run(ctx context.Context, cfg *Config, logger hclog.Logger) error {
	in, err := New(cfg, logger)
	if err != nil {
		return err
	}
	tuneRuntime(in.cfg, os.Getenv)
	if err := in.Start(ctx); err != nil {
		return err
	}
	if cfg.ReadyFile != "" {
		if err := writeReadyFile(cfg.ReadyFile, in.Addr()); err != nil {
			_ = in.Stop(context.Background())
			return err
		}
	}
	<-ctx.Done()
	c := in.cfg
	stopCtx, cancel := context.WithTimeout(context.Background(), c.Timeout+c.StopGrace+5*time.Second)
	defer cancel()
	return in.Stop(stopCtx)
}

// writeReadyFile publishes addr atomically (write then rename).
func writeReadyFile(path, addr string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.TrimSpace(addr)+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("publishing ready file: %w", err)
	}
	return nil
}

// prepareRuntime unpacks managed runtimes' bootstraps when needed.
func (in *Instance) prepareRuntime() error {
	if err := os.MkdirAll(in.runtimeDir, 0o755); err != nil {
		return fmt.Errorf("creating runtime dir: %w", err)
	}
	return installRuntimes(in.cfg, in.runtimeDir)
}
