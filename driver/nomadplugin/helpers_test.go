package nomadplugin_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// newHost serves a Driver in-process over real go-plugin gRPC, configured
// through the agent's sequence with block as its `config {}`.
func newHost(t *testing.T, exe string, block map[string]any) (*plugintest.Host, *nomadplugin.Driver) {
	t.Helper()
	d, err := nomadplugin.New(nomadplugin.Options{Executable: exe, Version: "1.2.3", Logger: plugintest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := plugintest.InProcess(t, d, plugintest.Logger(t))
	if _, err := h.Configure(ctx(t), block, true); err != nil {
		t.Fatal(err)
	}
	return h, d
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func code(err error) codes.Code { return status.Code(err) }

// startTicks reads a process's start time from /proc (field 22).
func startTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	f := plugintest.StatFields(pid)
	if len(f) < 22-2 {
		t.Fatalf("no stat for pid %d", pid)
	}
	v, err := strconv.ParseUint(f[22-3], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// detached starts a real process in its own session, as the driver starts
// instances, and reaps it when it ends (the plugin is not its parent).
func detached(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return cmd
}

// handleFor builds the handle Nomad would hold for a process the driver
// started: the echoed task config plus driver_state naming the process.
func handleFor(t *testing.T, a *plugintest.Alloc, id string, pid int, ticks uint64, codeDir string) *driverpb.TaskHandle {
	t.Helper()
	st := map[string]any{
		"pid":         pid,
		"start_ticks": ticks,
		"started_at":  time.Now(),
		"dir":         filepath.Join(a.TaskDir, "private", "nimbus-test"),
		"status_path": filepath.Join(a.TaskDir, "private", "nimbus-test", "exit.json"),
		"function":    "fn",
		"version":     "$LATEST",
		"code_dir":    codeDir,
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	cfg := a.TaskConfig(id, nil, map[string]string{"GREETING": "hello from env"}, nil)
	return &driverpb.TaskHandle{Version: 1, Config: cfg, State: driverpb.TaskState_RUNNING, DriverState: b}
}

func itoa(n int) string { return strconv.Itoa(n) }

// childrenOf lists the live children of pid.
func childrenOf(pid int) []int {
	return plugintest.LiveProcesses(func(f []string) bool { return f[4-3] == strconv.Itoa(pid) })
}
