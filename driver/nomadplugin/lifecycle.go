package nomadplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nimbus-fn/nimbus/driver/instance"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
	structspb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/structs"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
)

const (
	// pollEvery is how often the driver checks ready files and recovered pids.
	pollEvery = 25 * time.Millisecond
	// watchEvery is how often a recovered instance's pid is checked.
	watchEvery = 200 * time.Millisecond
	// killWait bounds the wait for a SIGKILLed instance to be gone.
	killWait = 10 * time.Second
)

// recoverable wraps err in a status Nomad reads as "retry per the restart
// policy" (a RecoverableError first detail).
func recoverable(code codes.Code, err error) error {
	st, derr := status.New(code, err.Error()).WithDetails(&structspb.RecoverableError{Recoverable: true})
	if derr != nil {
		return status.Error(code, err.Error())
	}
	return st.Err()
}

func (d *Driver) lookup(id string) (*task, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, ok := d.tasks[id]
	return t, ok
}

// StartTask launches the task's instance, waits until it accepts
// invocations and returns a handle carrying everything recovery needs.
// Configuration errors fail the task for good; launch errors are marked
// recoverable so Nomad's restart policy applies.
func (d *Driver) StartTask(ctx context.Context, req *driverpb.StartTaskRequest) (*driverpb.StartTaskResponse, error) {
	cfg := req.GetTask()
	if cfg.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "start task: task id is empty")
	}
	if _, ok := d.lookup(cfg.GetId()); ok {
		return nil, status.Errorf(codes.AlreadyExists, "task %s is already started", cfg.GetId())
	}
	tc, err := DecodeTaskConfig(cfg.GetMsgpackDriverConfig())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	set := d.settings()
	icfg, st, err := d.instanceConfig(cfg, tc, set)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	logger := d.logger.With("function", tc.Function, "version", tc.Version, "instance", cfg.GetId(), "alloc_id", cfg.GetAllocId())
	began := time.Now()
	pins, err := d.fetchBundles(ctx, cfg, tc, icfg, &st, set)
	if err != nil {
		logger.Error("fetching bundles", "error", err)
		d.events.emit(cfg, "Bundle fetch failed: "+err.Error(), nil)
		return nil, recoverable(codes.Unavailable, fmt.Errorf("fetching the code of %s: %w", tc.Function, err))
	}
	t, err := d.launch(ctx, cfg, icfg, st, set)
	closePins(pins) // the instance holds its own pins once it is up
	if err != nil {
		logger.Error("starting instance", "error", err)
		d.events.emit(cfg, "Instance failed to start: "+err.Error(), nil)
		return nil, recoverable(codes.FailedPrecondition, fmt.Errorf("starting instance of %s: %w", tc.Function, err))
	}
	took := time.Since(began)
	logger.Info("instance ready", "pid", t.state.Pid, "invoke_addr", t.state.InvokeAddr, "start_time", took)
	d.events.emit(cfg, "Instance ready", map[string]string{"invoke_addr": t.state.InvokeAddr,
		"start_ms": strconv.FormatFloat(float64(took)/float64(time.Millisecond), 'f', 1, 64)})
	handle, err := t.handle()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &driverpb.StartTaskResponse{Handle: handle}, nil
}

func (t *task) handle() (*driverpb.TaskHandle, error) {
	b, err := json.Marshal(t.state)
	if err != nil {
		return nil, fmt.Errorf("encoding driver state: %w", err)
	}
	state := driverpb.TaskState_RUNNING
	if t.exited() {
		state = driverpb.TaskState_EXITED
	}
	return &driverpb.TaskHandle{Version: handleVersion, Config: t.cfg, State: state, DriverState: b}, nil
}

// instanceConfig derives the instance launch config from the task config,
// Nomad's task environment, directories and allocated ports.
func (d *Driver) instanceConfig(cfg *driverpb.TaskConfig, tc *taskconfig.TaskConfig, set settings) (*instance.Config, taskState, error) {
	if !filepath.IsAbs(cfg.GetAllocDir()) {
		return nil, taskState{}, fmt.Errorf("alloc dir %q is not an absolute path", cfg.GetAllocDir())
	}
	if cfg.GetName() == "" {
		return nil, taskState{}, errors.New("task name is empty")
	}
	taskDir := filepath.Join(cfg.GetAllocDir(), cfg.GetName())
	var codeDir string
	if !tc.IsImage() {
		var err error
		if codeDir, err = within(taskDir, tc.CodeDir); err != nil {
			return nil, taskState{}, fmt.Errorf("code_dir: %w", err)
		}
	}
	layers := make([]string, 0, len(tc.LayerDirs))
	for _, l := range tc.LayerDirs {
		p, err := within(taskDir, l)
		if err != nil {
			return nil, taskState{}, fmt.Errorf("layer_dirs: %w", err)
		}
		layers = append(layers, p)
	}
	requested := tc.RunAs
	if requested == "" {
		requested = cfg.GetUser()
	}
	runAs, err := set.runAs(requested)
	if err != nil {
		return nil, taskState{}, err
	}
	if (runAs == "root" || runAs == "0") && !(set.AllowRoot && tc.AllowRoot) {
		return nil, taskState{}, errors.New("running a function as root needs allow_root in both the driver's plugin config and the task config")
	}
	addr, err := invokeAddr(cfg.GetResources(), tc.InvokePort)
	if err != nil {
		return nil, taskState{}, err
	}
	var secret string
	var meshCfg *instance.MeshConfig
	env := cfg.GetEnv()
	if tc.ConnectService != "" {
		meshCfg, env, err = connectNative(cfg.GetAllocDir(), taskDir, tc.ConnectService, env)
	} else {
		secret, err = invokeSecret(taskDir, tc)
	}
	if err != nil {
		return nil, taskState{}, err
	}
	// Small private files (config with the secret, ready, exit status) go to
	// the task's private dir (a 1 MiB noexec tmpfs when Nomad runs as root);
	// the instance's working state (environments' /tmp, layers) needs disk.
	dir := filepath.Join(taskDir, "private", taskDirName(cfg.GetId()))
	stateDir := filepath.Join(taskDir, "tmp", taskDirName(cfg.GetId()))
	icfg := &instance.Config{
		Function:           tc.Function,
		Version:            tc.Version,
		Runtime:            tc.Runtime,
		Handler:            tc.Handler,
		CodeDir:            codeDir,
		LayerDirs:          layers,
		RuntimesDir:        set.RuntimesDir,
		StateDir:           stateDir,
		MemoryMB:           tc.MemoryMB,
		Timeout:            tc.TimeoutDuration(),
		EphemeralStorageMB: tc.EphemeralStorageMB,
		Environments:       tc.Environments,
		InitializationType: tc.InitializationType,
		Env:                env,
		InvokeAddr:         addr,
		InvokeSecret:       secret,
		Mesh:               meshCfg,
		RunAs:              runAs,
		Isolation: instance.Isolation{
			UIDRange:  set.UIDRange,
			AllowRoot: set.AllowRoot && tc.AllowRoot,
			ChrootEnv: set.ChrootEnv,
		},
		Network:      tc.Network,
		CgroupParent: set.CgroupParent,
		Region:       tc.Region,
		AccountID:    tc.AccountID,
		ReadyFile:    filepath.Join(dir, "ready"),
	}
	if tc.IsImage() {
		icfg.Image = &instance.ImageConfig{
			Ref:              tc.Image,
			Entrypoint:       tc.ImageEntrypoint,
			Command:          tc.ImageCommand,
			WorkingDirectory: tc.ImageWorkingDirectory,
			CacheDir:         set.ImageCacheDir,
			CacheMaxMB:       int64(set.ImageCacheMaxMB),
			Auth:             set.registryAuth,
		}
	}
	st := taskState{
		Dir:        dir,
		StateDir:   stateDir,
		ConfigPath: filepath.Join(dir, "instance.json"),
		StatusPath: filepath.Join(dir, "exit.json"),
		Function:   tc.Function,
		Version:    tc.Version,
		CodeDir:    codeDir,
		Image:      tc.Image,
		RunAs:      runAs,
	}
	return icfg, st, nil
}

// invokeSecret is the secret the instance's invoke endpoint requires: read
// from invoke_secret_file, which Nomad's template hook rendered from the
// job's Nomad Variable before the task started, or — for jobs compiled
// before that file existed — taken from invoke_secret in the config.
func invokeSecret(taskDir string, tc *taskconfig.TaskConfig) (string, error) {
	if tc.InvokeSecretFile == "" {
		if tc.InvokeSecret == "" {
			return "", errors.New("task config sets neither invoke_secret_file nor invoke_secret")
		}
		return tc.InvokeSecret, nil
	}
	p, err := within(taskDir, tc.InvokeSecretFile)
	if err != nil {
		return "", fmt.Errorf("invoke_secret_file: %w", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("reading invoke_secret_file (rendered by the task's template from the job's Nomad Variable): %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("invoke_secret_file %s is empty: the job's Nomad Variable lacks the invoke secret", tc.InvokeSecretFile)
	}
	return s, nil
}

// invokeAddr is host_ip:value of the group port labelled label (or of a
// legacy task-level dynamic/reserved port).
func invokeAddr(res *driverpb.Resources, label string) (string, error) {
	for _, p := range res.GetPorts() {
		if p.GetLabel() == label {
			ip := p.GetHostIp()
			if ip == "" {
				ip = "127.0.0.1"
			}
			return net.JoinHostPort(ip, strconv.Itoa(int(p.GetValue()))), nil
		}
	}
	for _, n := range res.GetAllocatedResources().GetNetworks() {
		for _, p := range append(n.GetDynamicPorts(), n.GetReservedPorts()...) {
			if p.GetLabel() == label {
				ip := n.GetIp()
				if ip == "" {
					ip = "127.0.0.1"
				}
				return net.JoinHostPort(ip, strconv.Itoa(int(p.GetValue()))), nil
			}
		}
	}
	return "", fmt.Errorf("no port labelled %q is allocated to the task; add `network { port %q {} }` to its group", label, label)
}

// launch writes the instance config, starts the detached instance process
// with Nomad's log FIFOs as its stdout and stderr, and waits for its ready file.
func (d *Driver) launch(ctx context.Context, cfg *driverpb.TaskConfig, icfg *instance.Config, st taskState, set settings) (*task, error) {
	deadline := time.Now().Add(set.startTimeout)
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating instance dir: %w", err)
	}
	if err := os.MkdirAll(icfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating instance state dir: %w", err)
	}
	for _, p := range []string{icfg.ReadyFile, st.StatusPath} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("clearing %s: %w", p, err)
		}
	}
	b, err := json.MarshalIndent(icfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding instance config: %w", err)
	}
	if err := os.WriteFile(st.ConfigPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("writing instance config: %w", err)
	}
	stdout, err := openFIFO(sinkPath(cfg.GetStdoutPath()), deadline)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := openFIFO(sinkPath(cfg.GetStderrPath()), deadline)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()

	cmd := exec.Command(d.opts.Executable, "instance", "--config", st.ConfigPath, "--status-file", st.StatusPath)
	cmd.Dir = st.Dir
	cmd.Env = instanceEnv(cfg.GetEnv())
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own session: no signal aimed at the plugin's process group (or a
	// terminal) reaches it, and it outlives the plugin process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", d.opts.Executable, err)
	}
	ps, err := readStat(d.opts.ProcRoot, cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("reading instance process: %w", err)
	}
	st.Pid, st.StartTicks, st.StartedAt = cmd.Process.Pid, ps.startTime, time.Now()
	t := newTask(cfg, st, d.logger.With("function", st.Function, "version", st.Version, "instance", cfg.GetId()))
	go t.reap(cmd, d.opts.ProcRoot)

	addr, err := waitReady(ctx, icfg.ReadyFile, t, deadline)
	if err != nil {
		_ = t.proc.killTree(d.opts.ProcRoot)
		reaped := time.NewTimer(killWait)
		defer reaped.Stop()
		select {
		case <-t.done:
		case <-reaped.C:
			d.logger.Warn("instance not reaped after a failed start", "pid", st.Pid, "instance", cfg.GetId())
		}
		if res, msg := t.exit(); res != nil && t.startFailedEarly(err) {
			err = fmt.Errorf("%w (exit code %d, signal %d) %s", err, res.GetExitCode(), res.GetSignal(), msg)
		}
		return nil, err
	}
	t.state.InvokeAddr = addr
	d.mu.Lock()
	d.tasks[t.id] = t
	d.mu.Unlock()
	return t, nil
}

var errExitedBeforeReady = errors.New("instance exited before it was ready")

func (t *task) startFailedEarly(err error) bool { return errors.Is(err, errExitedBeforeReady) }

// waitReady polls the ready file until it names an address.
func waitReady(ctx context.Context, path string, t *task, deadline time.Time) (string, error) {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			addr := strings.TrimSpace(string(b))
			if _, port, err := net.SplitHostPort(addr); err == nil && port != "" && port != "0" {
				return addr, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for the instance: %w", ctx.Err())
		case <-t.done:
			return "", errExitedBeforeReady
		case <-timer.C:
			return "", errors.New("instance not ready before the start timeout")
		case <-tick.C:
		}
	}
}

func sinkPath(p string) string {
	if p == "" {
		return os.DevNull
	}
	return p
}

// instanceEnv is the instance process's own environment. The function's
// environment travels in its config; the process needs only a PATH.
func instanceEnv(taskEnv map[string]string) []string {
	path := taskEnv["PATH"]
	if path == "" {
		path = os.Getenv("PATH")
	}
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + path}
	for _, k := range []string{"LANG", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// WaitTask blocks until the task exits (or Nomad gives up waiting) and
// always sets result. Concurrent and repeated calls all get the same answer.
func (d *Driver) WaitTask(ctx context.Context, req *driverpb.WaitTaskRequest) (*driverpb.WaitTaskResponse, error) {
	t, ok := d.lookup(req.GetTaskId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%v: %s", errTaskNotFound, req.GetTaskId())
	}
	select {
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-t.done:
	}
	res, msg := t.exit()
	return &driverpb.WaitTaskResponse{Result: res, Err: msg}, nil
}

// StopTask sends the signal (the driver's stop_signal when Nomad sends
// none), waits up to timeout, then kills the instance and its environments.
// An unknown or finished task is already stopped.
func (d *Driver) StopTask(ctx context.Context, req *driverpb.StopTaskRequest) (*driverpb.StopTaskResponse, error) {
	t, ok := d.lookup(req.GetTaskId())
	if !ok || t.exited() {
		return &driverpb.StopTaskResponse{}, nil
	}
	set := d.settings()
	sig := set.stopSignal
	if req.GetSignal() != "" {
		s, err := parseSignal(req.GetSignal())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		sig = s
	}
	timeout := req.GetTimeout().AsDuration()
	t.logger.Info("stopping instance", "signal", unix.SignalName(sig), "timeout", timeout.String())
	t.noteSignal(sig)
	if err := t.proc.signal(d.opts.ProcRoot, sig); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	grace := time.NewTimer(timeout)
	defer grace.Stop()
	select {
	case <-t.done:
		return &driverpb.StopTaskResponse{}, nil
	case <-grace.C:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err := d.kill(ctx, t); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &driverpb.StopTaskResponse{}, nil
}

// kill SIGKILLs the instance tree and waits for the exit to be recorded.
func (d *Driver) kill(ctx context.Context, t *task) error {
	t.logger.Warn("killing instance")
	t.noteSignal(syscall.SIGKILL)
	if err := t.proc.killTree(d.opts.ProcRoot); err != nil {
		return err
	}
	wait := time.NewTimer(killWait)
	defer wait.Stop()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-wait.C:
		return fmt.Errorf("instance pid %d still alive after SIGKILL", t.state.Pid)
	}
}

// DestroyTask forgets the task (killing it first when force is set) and
// removes its private files. Unknown ids succeed: it is idempotent.
func (d *Driver) DestroyTask(ctx context.Context, req *driverpb.DestroyTaskRequest) (*driverpb.DestroyTaskResponse, error) {
	t, ok := d.lookup(req.GetTaskId())
	if !ok {
		return &driverpb.DestroyTaskResponse{}, nil
	}
	if !t.exited() {
		if !req.GetForce() {
			return nil, status.Errorf(codes.FailedPrecondition, "task %s is still running; stop it or destroy with force", t.id)
		}
		if err := d.kill(ctx, t); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	d.mu.Lock()
	delete(d.tasks, t.id)
	d.mu.Unlock()
	for _, dir := range []string{t.state.Dir, t.state.StateDir} {
		if dir == "" {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			t.logger.Warn("removing instance dir", "dir", dir, "error", err)
		}
	}
	t.logger.Debug("task destroyed")
	return &driverpb.DestroyTaskResponse{}, nil
}

// RecoverTask re-attaches to an instance from its handle after a plugin or
// agent restart. The pid must still name the same process (start time);
// an instance that exited meanwhile is tracked as exited so WaitTask
// reports it. Only an unusable handle is an error.
func (d *Driver) RecoverTask(_ context.Context, req *driverpb.RecoverTaskRequest) (*driverpb.RecoverTaskResponse, error) {
	h := req.GetHandle()
	id := h.GetConfig().GetId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "recover task: handle has no task config id")
	}
	if _, ok := d.lookup(id); ok {
		return &driverpb.RecoverTaskResponse{}, nil
	}
	if h.GetVersion() != handleVersion {
		return nil, status.Errorf(codes.InvalidArgument, "recover task %s: handle version %d, this driver reads %d", id, h.GetVersion(), handleVersion)
	}
	var st taskState
	if err := json.Unmarshal(h.GetDriverState(), &st); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "recover task %s: decoding driver state: %v", id, err)
	}
	if st.Pid <= 0 || st.StartTicks == 0 {
		return nil, status.Errorf(codes.InvalidArgument, "recover task %s: driver state names no process", id)
	}
	t := newTask(h.GetConfig(), st, d.logger.With("function", st.Function, "version", st.Version, "instance", id))
	d.mu.Lock()
	if _, ok := d.tasks[id]; ok { // a concurrent RecoverTask won
		d.mu.Unlock()
		return &driverpb.RecoverTaskResponse{}, nil
	}
	d.tasks[id] = t
	d.mu.Unlock()
	// No task event here: Nomad registers the task's event handler only
	// after RecoverTask returns, so it would drop (and warn about) one.
	if t.proc.alive(d.opts.ProcRoot) {
		t.logger.Info("instance recovered", "pid", st.Pid, "invoke_addr", st.InvokeAddr)
	} else {
		t.logger.Info("instance exited while the driver was away", "pid", st.Pid)
	}
	go t.watch(d.opts.ProcRoot, watchEvery)
	return &driverpb.RecoverTaskResponse{}, nil
}

// InspectTask reports a task's status (Nomad does not call it today).
func (d *Driver) InspectTask(_ context.Context, req *driverpb.InspectTaskRequest) (*driverpb.InspectTaskResponse, error) {
	t, ok := d.lookup(req.GetTaskId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%v: %s", errTaskNotFound, req.GetTaskId())
	}
	ts := &driverpb.TaskStatus{
		Id:        t.id,
		Name:      t.cfg.GetName(),
		State:     driverpb.TaskState_RUNNING,
		StartedAt: timestamppb.New(t.state.StartedAt),
		Result:    &driverpb.ExitResult{},
	}
	if t.exited() {
		res, _ := t.exit()
		t.mu.Lock()
		ts.State, ts.Result, ts.CompletedAt = driverpb.TaskState_EXITED, res, timestamppb.New(t.completedAt)
		t.mu.Unlock()
	}
	return &driverpb.InspectTaskResponse{
		Task: ts,
		Driver: &driverpb.TaskDriverStatus{Attributes: map[string]string{
			"pid":         strconv.Itoa(t.state.Pid),
			"invoke_addr": t.state.InvokeAddr,
			"function":    t.state.Function,
			"version":     t.state.Version,
		}},
	}, nil
}

// SignalTask forwards a signal to the instance process.
func (d *Driver) SignalTask(_ context.Context, req *driverpb.SignalTaskRequest) (*driverpb.SignalTaskResponse, error) {
	t, ok := d.lookup(req.GetTaskId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%v: %s", errTaskNotFound, req.GetTaskId())
	}
	sig, err := parseSignal(req.GetSignal())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if t.exited() {
		return nil, status.Errorf(codes.FailedPrecondition, "task %s has exited", t.id)
	}
	if err := t.proc.signal(d.opts.ProcRoot, sig); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &driverpb.SignalTaskResponse{}, nil
}
