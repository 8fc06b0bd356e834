package plugintest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	basepb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/base"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// agentConfig is the `plugin "nimbus-driver" { config { ... } }` block.
var agentConfig = map[string]any{"stats_interval": "1s", "start_timeout": "30s"}

// TestNomadLifecycle replays a Nomad client's calls against the real
// binary: agent start-up (probe, validation, long-lived instance), one task
// of a real aws-lambda-go function invoked on its allocated port, stats,
// a graceful plugin shutdown and a plugin crash each followed by recovery,
// an agent reattach, stop, wait, destroy, and recovery of a task that is
// already gone.
func TestNomadLifecycle(t *testing.T) {
	bin := plugintest.BuildDriver(t)
	logger := plugintest.Logger(t)
	c := testCtx(t)

	// Agent start-up: probe instance, validation instance (both killed).
	probe := plugintest.Launch(t, bin, logger.Named("probe"))
	info, err := probe.Base.PluginInfo(c, &basepb.PluginInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetName() != "nimbus" || info.GetType() != basepb.PluginType_DRIVER {
		t.Fatalf("PluginInfo = %v", info)
	}
	if _, err := probe.Base.ConfigSchema(c, &basepb.ConfigSchemaRequest{}); err != nil {
		t.Fatal(err)
	}
	probe.Client.Kill()
	validate := plugintest.Launch(t, bin, logger.Named("validate"))
	if _, err := validate.Configure(c, agentConfig, false); err != nil {
		t.Fatal(err)
	}
	validate.Client.Kill()

	h := start(t, bin, logger.Named("plugin1"))
	fp, err := h.Driver.Fingerprint(c, &driverpb.FingerprintRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := fp.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetHealth() != driverpb.FingerprintResponse_HEALTHY || first.GetAttributes()["driver.nimbus.version"] == nil {
		t.Fatalf("fingerprint = %v", first)
	}
	events, err := h.Driver.TaskEvents(c, &driverpb.TaskEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}

	// One task of the echo function.
	a := plugintest.NewAlloc(t, t.TempDir(), "fn")
	installFunction(t, testfn.Dir(t, "echo"), filepath.Join(a.TaskDir, "local", "code"))
	port := plugintest.FreePort(t)
	secret := "harness-secret"
	cfg := taskConfig(t, h, a, port, secret)
	started, err := h.Driver.StartTask(c, &driverpb.StartTaskRequest{Task: cfg})
	if err != nil {
		t.Fatalf("StartTask: %v", err)
	}
	handle := started.GetHandle()
	if handle.GetVersion() < 1 || handle.GetConfig().GetId() != cfg.GetId() || len(handle.GetDriverState()) == 0 {
		t.Fatalf("handle = %v", handle)
	}
	ev, err := events.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetTaskId() != cfg.GetId() || ev.GetMessage() != "Instance ready" {
		t.Errorf("task event = %v", ev)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	invoke(t, addr, secret, `{"n":1}`)

	// Nomad waits and collects stats while the task runs.
	waits := make(chan waitResult, 4)
	go wait(c, h, cfg.GetId(), waits)
	stats, err := h.Driver.TaskStats(c, &driverpb.TaskStatsRequest{TaskId: cfg.GetId(), CollectionInterval: durationpb.New(100 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		s, err := stats.Recv()
		if err != nil {
			t.Fatal(err)
		}
		u := s.GetStats().GetAggResourceUsage()
		if s.GetStats().GetTimestamp() == nil || u.GetMemory().GetRss() == 0 || u.GetCpu() == nil {
			t.Fatalf("stats = %v", s)
		}
	}

	// Graceful agent shutdown kills the plugin; the instance must survive.
	h.Client.Kill()
	if r := <-waits; r.err == nil {
		t.Fatalf("WaitTask returned %v while the task still runs", r.resp)
	}
	invoke(t, addr, secret, `{"n":2}`)

	// A fresh plugin (no msgpack_driver_config after an agent restart).
	h2 := start(t, bin, logger.Named("plugin2"))
	agentHandle := withoutDriverConfig(handle)
	recoverTask(t, h2, agentHandle)
	invoke(t, addr, secret, `{"n":3}`)
	go wait(c, h2, cfg.GetId(), waits)

	// The plugin crashes; the instance must survive that too.
	if err := syscall.Kill(h2.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if r := <-waits; status.Code(r.err) != codes.Unavailable && status.Code(r.err) != codes.Canceled {
		t.Fatalf("WaitTask on a dead plugin: %v %v", r.resp, r.err)
	}
	h3 := start(t, bin, logger.Named("plugin3"))
	recoverTask(t, h3, handle)
	invoke(t, addr, secret, `{"n":4}`)

	// The agent itself restarts and reattaches to the live plugin process.
	h4 := plugintest.Reattach(t, h3.Client.ReattachConfig(), logger.Named("reattached"))
	if _, err := h4.Base.PluginInfo(c, &basepb.PluginInfoRequest{}); err != nil {
		t.Fatal(err)
	}
	recoverTask(t, h4, agentHandle) // already tracked: idempotent
	go wait(c, h4, cfg.GetId(), waits)

	// Stop with the driver's default signal; the instance shuts down cleanly.
	if _, err := h4.Driver.StopTask(c, &driverpb.StopTaskRequest{TaskId: cfg.GetId(), Timeout: durationpb.New(10 * time.Second)}); err != nil {
		t.Fatalf("StopTask: %v", err)
	}
	r := <-waits
	if r.err != nil || r.resp.GetResult() == nil {
		t.Fatalf("WaitTask: %v %v", r.resp, r.err)
	}
	if res := r.resp.GetResult(); res.GetExitCode() != 0 || res.GetSignal() != 0 || r.resp.GetErr() != "" {
		t.Errorf("exit after a graceful stop = %v %q, want success", res, r.resp.GetErr())
	}
	var st struct {
		Pid      int    `json:"pid"`
		Dir      string `json:"dir"`
		StateDir string `json:"state_dir"`
	}
	if err := json.Unmarshal(handle.GetDriverState(), &st); err != nil {
		t.Fatal(err)
	}
	if !plugintest.Gone(st.Pid) {
		t.Errorf("instance pid %d still runs after WaitTask returned", st.Pid)
	}
	plugintest.Eventually(t, 10*time.Second, "REPORT lines in the task's stdout", func() bool {
		return strings.Count(a.Stdout.String(), "REPORT RequestId:") >= 4
	})
	for i := 0; i < 2; i++ {
		if _, err := h4.Driver.DestroyTask(c, &driverpb.DestroyTaskRequest{TaskId: cfg.GetId(), Force: true}); err != nil {
			t.Fatalf("DestroyTask: %v", err)
		}
	}
	for _, dir := range []string{st.Dir, st.StateDir} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("instance dir %q left after destroy: %v", dir, err)
		}
	}

	// Another restart: recovering the gone task succeeds, WaitTask reports
	// the exit the instance recorded, and destroy cleans up.
	h4.Client.Kill()
	h5 := start(t, bin, logger.Named("plugin5"))
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	recoverTask(t, h5, agentHandle)
	resp, err := h5.Driver.WaitTask(c, &driverpb.WaitTaskRequest{TaskId: cfg.GetId()})
	if err != nil || resp.GetResult() == nil {
		t.Fatalf("WaitTask of a gone task: %v %v", resp, err)
	}
	if _, err := h5.Driver.DestroyTask(c, &driverpb.DestroyTaskRequest{TaskId: cfg.GetId(), Force: true}); err != nil {
		t.Fatal(err)
	}
}

// TestStopEscalatesAndKillsEnvironments stops a task whose instance has a
// running environment with a zero timeout: every process of the task must
// be gone once WaitTask returns.
func TestStopEscalatesAndKillsEnvironments(t *testing.T) {
	bin := plugintest.BuildDriver(t)
	c := testCtx(t)
	h := start(t, bin, plugintest.Logger(t))
	a := plugintest.NewAlloc(t, t.TempDir(), "fn")
	installFunction(t, testfn.Dir(t, "echo"), filepath.Join(a.TaskDir, "local", "code"))
	port := plugintest.FreePort(t)
	cfg := taskConfig(t, h, a, port, "s")
	started, err := h.Driver.StartTask(c, &driverpb.StartTaskRequest{Task: cfg})
	if err != nil {
		t.Fatal(err)
	}
	invoke(t, "127.0.0.1:"+strconv.Itoa(port), "s", `{}`) // starts an environment
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(started.GetHandle().GetDriverState(), &st); err != nil {
		t.Fatal(err)
	}
	procs := session(st.Pid)
	if len(procs) < 2 {
		t.Fatalf("session of %d has %v, want the instance and its environment", st.Pid, procs)
	}
	waits := make(chan waitResult, 1)
	go wait(c, h, cfg.GetId(), waits)
	if _, err := h.Driver.StopTask(c, &driverpb.StopTaskRequest{TaskId: cfg.GetId(), Timeout: durationpb.New(0), Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	r := <-waits
	if r.err != nil || r.resp.GetResult().GetSignal() != int32(syscall.SIGKILL) {
		t.Fatalf("WaitTask = %v %v, want signal 9", r.resp, r.err)
	}
	for _, p := range procs {
		plugintest.Eventually(t, 5*time.Second, "process "+strconv.Itoa(p)+" gone", func() bool { return plugintest.Gone(p) })
	}
	if _, err := h.Driver.DestroyTask(c, &driverpb.DestroyTaskRequest{TaskId: cfg.GetId(), Force: true}); err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, bin string, logger hclog.Logger) *plugintest.Host {
	t.Helper()
	h := plugintest.Launch(t, bin, logger)
	if _, err := h.Configure(testCtx(t), agentConfig, true); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Driver.Init(testCtx(t), &driverpb.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	return h
}

func taskConfig(t *testing.T, h *plugintest.Host, a *plugintest.Alloc, port int, secret string) *driverpb.TaskConfig {
	t.Helper()
	c := testCtx(t)
	if _, err := h.Driver.Capabilities(c, &driverpb.CapabilitiesRequest{}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NOMAD_ALLOC_ID": a.ID}
	b, err := h.EncodeTask(c, map[string]any{
		"function":      "echo",
		"runtime":       "provided.al2023",
		"memory_mb":     128,
		"timeout":       "5s",
		"invoke_secret": secret,
		"handler":       "${NOMAD_ALLOC_ID}",
	}, env)
	if err != nil {
		t.Fatal(err)
	}
	return a.TaskConfig(a.TaskID(t), b, env, map[string]int{"invoke": port})
}

func recoverTask(t *testing.T, h *plugintest.Host, handle *driverpb.TaskHandle) {
	t.Helper()
	c := testCtx(t)
	if _, err := h.Driver.TaskConfigSchema(c, &driverpb.TaskConfigSchemaRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Driver.Capabilities(c, &driverpb.CapabilitiesRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Driver.RecoverTask(c, &driverpb.RecoverTaskRequest{Handle: handle}); err != nil {
		t.Fatalf("RecoverTask: %v", err)
	}
}

// withoutDriverConfig is the handle as Nomad persists it: the raw driver
// config does not survive an agent restart.
func withoutDriverConfig(h *driverpb.TaskHandle) *driverpb.TaskHandle {
	cfg := *h.GetConfig()
	cfg.MsgpackDriverConfig = nil
	return &driverpb.TaskHandle{Version: h.GetVersion(), Config: &cfg, State: h.GetState(), DriverState: h.GetDriverState()}
}

type waitResult struct {
	resp *driverpb.WaitTaskResponse
	err  error
}

func wait(c context.Context, h *plugintest.Host, id string, out chan<- waitResult) {
	resp, err := h.Driver.WaitTask(c, &driverpb.WaitTaskRequest{TaskId: id})
	out <- waitResult{resp, err}
}

func invoke(t *testing.T, addr, secret, payload string) {
	t.Helper()
	if err := invokeErr(testCtx(t), addr, secret, payload); err != nil {
		t.Fatal(err)
	}
}

// invokeErr invokes the echo function and checks it answered payload; it
// is safe to call from any goroutine.
func invokeErr(c context.Context, addr, secret, payload string) error {
	cl := invokeapi.Client{Secret: secret}
	resp, err := cl.Invoke(c, addr, &invokeapi.Request{Payload: []byte(payload)})
	if err != nil {
		return fmt.Errorf("invoking %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.FunctionError != "" || string(b) != payload {
		return fmt.Errorf("invoke answered %q (function error %q), want the echo %q", b, resp.FunctionError, payload)
	}
	return nil
}

func installFunction(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(from, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, "bootstrap"), b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// session lists live processes whose session id is sid.
func session(sid int) []int {
	return plugintest.LiveProcesses(func(f []string) bool { return f[6-3] == strconv.Itoa(sid) })
}

// TestInvokeSecretFromSecretsDir starts a task whose config names its
// invoke secret by file, as compiled jobs do: Nomad's template hook renders
// the file into the task's secrets dir before StartTask, so the harness
// writes it there first. The instance must require exactly that secret.
// A config with neither a file nor a secret, and a file the template never
// rendered, fail StartTask with errors that say so.
func TestInvokeSecretFromSecretsDir(t *testing.T) {
	bin := plugintest.BuildDriver(t)
	h := start(t, bin, plugintest.Logger(t))
	c := testCtx(t)

	encode := func(a *plugintest.Alloc, port int, extra map[string]any) *driverpb.TaskConfig {
		t.Helper()
		block := map[string]any{"function": "echo", "runtime": "provided.al2023", "memory_mb": 128, "timeout": "5s"}
		for k, v := range extra {
			block[k] = v
		}
		b, err := h.EncodeTask(c, block, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a.TaskConfig(a.TaskID(t), b, nil, map[string]int{"invoke": port})
	}

	a := plugintest.NewAlloc(t, t.TempDir(), "fn")
	installFunction(t, testfn.Dir(t, "echo"), filepath.Join(a.TaskDir, "local", "code"))
	const secret = "rendered-from-nomad-variable"
	if err := os.WriteFile(filepath.Join(a.TaskDir, "secrets", "nimbus-invoke-secret"), []byte(secret+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	port := plugintest.FreePort(t)
	cfg := encode(a, port, map[string]any{"invoke_secret_file": "secrets/nimbus-invoke-secret"})
	started, err := h.Driver.StartTask(c, &driverpb.StartTaskRequest{Task: cfg})
	if err != nil {
		t.Fatalf("StartTask: %v", err)
	}
	if strings.Contains(string(started.GetHandle().GetDriverState()), secret) {
		t.Error("the task handle's driver state holds the invoke secret")
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	invoke(t, addr, secret, `{"from":"file"}`)
	if err := invokeErr(c, addr, "not-the-secret", `{"from":"file"}`); err == nil {
		t.Fatal("the instance answered an invoke with the wrong secret")
	}
	if _, err := h.Driver.StopTask(c, &driverpb.StopTaskRequest{TaskId: cfg.GetId(), Timeout: durationpb.New(0), Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Driver.DestroyTask(c, &driverpb.DestroyTaskRequest{TaskId: cfg.GetId(), Force: true}); err != nil {
		t.Fatal(err)
	}

	// Neither source: Nomad's decode accepts the block (both attributes are
	// optional), the driver refuses it.
	b := plugintest.NewAlloc(t, t.TempDir(), "fn")
	_, err = h.Driver.StartTask(c, &driverpb.StartTaskRequest{Task: encode(b, plugintest.FreePort(t), nil)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "invoke_secret_file is required") {
		t.Errorf("StartTask without a secret: %v, want InvalidArgument naming invoke_secret_file", err)
	}
	// A file the template did not render.
	_, err = h.Driver.StartTask(c, &driverpb.StartTaskRequest{Task: encode(b, plugintest.FreePort(t), map[string]any{"invoke_secret_file": "secrets/nimbus-invoke-secret"})})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "reading invoke_secret_file") {
		t.Errorf("StartTask with no rendered file: %v, want InvalidArgument about the file", err)
	}
	// An empty render (the variable lacks the item).
	if err := os.WriteFile(filepath.Join(b.TaskDir, "secrets", "nimbus-invoke-secret"), nil, 0o400); err != nil {
		t.Fatal(err)
	}
	_, err = h.Driver.StartTask(c, &driverpb.StartTaskRequest{Task: encode(b, plugintest.FreePort(t), map[string]any{"invoke_secret_file": "secrets/nimbus-invoke-secret"})})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("StartTask with an empty file: %v, want InvalidArgument saying it is empty", err)
	}
}
