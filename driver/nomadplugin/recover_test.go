package nomadplugin_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// processWait bounds a wait for processes to start, react or end. It only
// has to tell "happens" from "never happens", so it is generous: on two
// cores busy with builds and race-detector tests a fork and exec can take
// seconds.
const processWait = 2 * time.Minute

// recovered hands the driver a running `sh` process group through
// RecoverTask, as after a plugin restart, and returns the task id, the
// process and the code dir.
func recovered(t *testing.T, h *plugintest.Host, script string) (string, int, string) {
	t.Helper()
	a := plugintest.NewAlloc(t, t.TempDir(), "fn")
	codeDir := filepath.Join(a.TaskDir, "local", "code")
	if err := os.MkdirAll(codeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := detached(t, codeDir, "/bin/sh", "-c", script)
	id := a.TaskID(t)
	handle := handleFor(t, a, id, cmd.Process.Pid, startTicks(t, cmd.Process.Pid), codeDir)
	if _, err := h.Driver.RecoverTask(ctx(t), &driverpb.RecoverTaskRequest{Handle: handle}); err != nil {
		t.Fatalf("RecoverTask: %v", err)
	}
	// Idempotent: a second recovery of a tracked task succeeds.
	if _, err := h.Driver.RecoverTask(ctx(t), &driverpb.RecoverTaskRequest{Handle: handle}); err != nil {
		t.Fatalf("RecoverTask again: %v", err)
	}
	return id, cmd.Process.Pid, codeDir
}

func TestRecoverWaitStopDestroy(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	// The shell ignores SIGTERM, so StopTask must escalate to SIGKILL; its
	// child sleeps in the same session and must die with it.
	id, pid, _ := recovered(t, h, "trap '' TERM; sleep 300 & wait")
	waited := make(chan *driverpb.WaitTaskResponse, 2)
	for i := 0; i < 2; i++ { // concurrent waits all complete
		go func() {
			resp, err := h.Driver.WaitTask(ctx(t), &driverpb.WaitTaskRequest{TaskId: id})
			if err != nil {
				t.Errorf("WaitTask: %v", err)
			}
			waited <- resp
		}()
	}
	insp, err := h.Driver.InspectTask(ctx(t), &driverpb.InspectTaskRequest{TaskId: id})
	if err != nil {
		t.Fatal(err)
	}
	if insp.GetTask().GetState() != driverpb.TaskState_RUNNING {
		t.Errorf("inspect state = %v", insp.GetTask().GetState())
	}
	var children []int
	plugintest.Eventually(t, 5*time.Second, "the sleep child", func() bool {
		children = childrenOf(pid)
		return len(children) > 0
	})
	if _, err := h.Driver.StopTask(ctx(t), &driverpb.StopTaskRequest{TaskId: id, Timeout: durationpb.New(200 * time.Millisecond), Signal: "SIGTERM"}); err != nil {
		t.Fatalf("StopTask: %v", err)
	}
	for i := 0; i < 2; i++ {
		resp := <-waited
		if resp.GetResult() == nil {
			t.Fatal("WaitTask result unset")
		}
		if resp.GetResult().GetSignal() != int32(syscall.SIGKILL) {
			t.Errorf("result = %v, want signal 9 (escalated)", resp.GetResult())
		}
	}
	for _, c := range append(children, pid) {
		plugintest.Eventually(t, 5*time.Second, "process exit", func() bool { return plugintest.Gone(c) })
	}
	// After exit, WaitTask answers at once with the stored result.
	if resp, err := h.Driver.WaitTask(ctx(t), &driverpb.WaitTaskRequest{TaskId: id}); err != nil || resp.GetResult() == nil {
		t.Errorf("WaitTask after exit: %v %v", resp, err)
	}
	if _, err := h.Driver.StopTask(ctx(t), &driverpb.StopTaskRequest{TaskId: id}); err != nil {
		t.Errorf("StopTask after exit: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := h.Driver.DestroyTask(ctx(t), &driverpb.DestroyTaskRequest{TaskId: id, Force: true}); err != nil {
			t.Errorf("DestroyTask: %v", err)
		}
	}
	if _, err := h.Driver.WaitTask(ctx(t), &driverpb.WaitTaskRequest{TaskId: id}); code(err) != codes.NotFound {
		t.Errorf("WaitTask after destroy: %v", err)
	}
}

func TestRecoverRefusesReusedPid(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	a := plugintest.NewAlloc(t, t.TempDir(), "fn")
	// A live process whose start time does not match the handle is someone
	// else's: the task is recovered as exited and the process is untouched.
	cmd := detached(t, a.TaskDir, "sleep", "300")
	id := a.TaskID(t)
	handle := handleFor(t, a, id, cmd.Process.Pid, startTicks(t, cmd.Process.Pid)-1, a.TaskDir)
	if _, err := h.Driver.RecoverTask(ctx(t), &driverpb.RecoverTaskRequest{Handle: handle}); err != nil {
		t.Fatal(err)
	}
	resp, err := h.Driver.WaitTask(ctx(t), &driverpb.WaitTaskRequest{TaskId: id})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetResult().GetExitCode() == 0 || resp.GetErr() == "" {
		t.Errorf("unknown exit reported as %v %q, want a failure", resp.GetResult(), resp.GetErr())
	}
	if _, err := h.Driver.DestroyTask(ctx(t), &driverpb.DestroyTaskRequest{TaskId: id, Force: true}); err != nil {
		t.Fatal(err)
	}
	if plugintest.Gone(cmd.Process.Pid) {
		t.Error("the driver killed a process that was not its instance")
	}
}

func TestSignalExecAndStats(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	tmp := t.TempDir()
	marker, ready := filepath.Join(tmp, "hup"), filepath.Join(tmp, "trapped")
	// The shell waits with the wait builtin, which a trapped signal ends at
	// once (POSIX), so the trap runs as soon as the signal arrives instead
	// of after a foreground command, and the loop forks once a second, not
	// twenty times (it shares two busy cores with everything else).
	id, pid, codeDir := recovered(t, h, "trap 'echo got > "+marker+"' HUP; touch "+ready+"; while :; do sleep 1 & wait $!; done")
	// Signal only once the trap is installed (the shell says so by creating
	// the ready file); before, SIGHUP would kill the shell.
	plugintest.Eventually(t, processWait, "the shell's trap", func() bool { _, err := os.Stat(ready); return err == nil })

	if _, err := h.Driver.SignalTask(ctx(t), &driverpb.SignalTaskRequest{TaskId: id, Signal: "SIGHUP"}); err != nil {
		t.Fatal(err)
	}
	plugintest.Eventually(t, processWait, "the trapped SIGHUP", func() bool { _, err := os.Stat(marker); return err == nil })
	if _, err := h.Driver.SignalTask(ctx(t), &driverpb.SignalTaskRequest{TaskId: id, Signal: "SIGBOGUS"}); code(err) != codes.InvalidArgument {
		t.Errorf("bad signal: %v", err)
	}

	ex, err := h.Driver.ExecTask(ctx(t), &driverpb.ExecTaskRequest{TaskId: id, Command: []string{"/bin/sh", "-c", `pwd; echo "$GREETING"; echo oops >&2; exit 7`}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(ex.GetStdout()); got != codeDir+"\nhello from env\n" {
		t.Errorf("exec stdout = %q", got)
	}
	if string(ex.GetStderr()) != "oops\n" || ex.GetResult().GetExitCode() != 7 {
		t.Errorf("exec stderr %q result %v", ex.GetStderr(), ex.GetResult())
	}
	if _, err := h.Driver.ExecTask(ctx(t), &driverpb.ExecTaskRequest{TaskId: id, Command: nil}); code(err) != codes.InvalidArgument {
		t.Errorf("empty command: %v", err)
	}

	stream, err := h.Driver.TaskStats(ctx(t), &driverpb.TaskStatsRequest{TaskId: id, CollectionInterval: durationpb.New(50 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	var last *driverpb.TaskStatsResponse
	for i := 0; i < 3; i++ {
		last, err = stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		s := last.GetStats()
		if s == nil || s.GetTimestamp() == nil || s.GetAggResourceUsage().GetCpu() == nil || s.GetAggResourceUsage().GetMemory() == nil || s.GetId() != id {
			t.Fatalf("stats message misses required fields: %v", last)
		}
	}
	agg := last.GetStats().GetAggResourceUsage()
	if agg.GetMemory().GetRss() == 0 || len(agg.GetMemory().GetMeasuredFields()) == 0 || len(agg.GetCpu().GetMeasuredFields()) != 4 {
		t.Errorf("aggregate usage = %v", agg)
	}
	if _, ok := last.GetStats().GetResourceUsageByPid()[itoa(pid)]; !ok {
		t.Errorf("no usage for the instance pid %d in %v", pid, last.GetStats().GetResourceUsageByPid())
	}
}

func TestExecTaskStreaming(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	id, _, codeDir := recovered(t, h, "sleep 300")
	for _, tty := range []bool{false, true} {
		stream, err := h.Driver.ExecTaskStreaming(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		setup := &driverpb.ExecTaskStreamingRequest{
			Setup:   &driverpb.ExecTaskStreamingRequest_Setup{TaskId: id, Command: []string{"/bin/sh"}, Tty: tty},
			TtySize: &driverpb.ExecTaskStreamingRequest_TerminalSize{Height: 40, Width: 100},
		}
		if err := stream.Send(setup); err != nil {
			t.Fatal(err)
		}
		script := "pwd; echo err >&2; exit 5\n"
		if tty {
			script = "stty size; pwd; exit 5\n"
		}
		in := &driverpb.ExecTaskStreamingRequest{Stdin: &driverpb.ExecTaskStreamingIOOperation{Data: []byte(script)}}
		if err := stream.Send(in); err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&driverpb.ExecTaskStreamingRequest{Stdin: &driverpb.ExecTaskStreamingIOOperation{Close: true}}); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, result, err := readSession(stream)
		if err != nil {
			t.Fatal(err)
		}
		if result.GetExitCode() != 5 {
			t.Errorf("tty=%v: result = %v", tty, result)
		}
		if !strings.Contains(stdout, codeDir) {
			t.Errorf("tty=%v: stdout %q lacks the code dir", tty, stdout)
		}
		if tty && !strings.Contains(stdout, "40 100") {
			t.Errorf("tty: stdout %q lacks the terminal size", stdout)
		}
		if !tty && stderr != "err\n" {
			t.Errorf("stderr = %q", stderr)
		}
	}
}

// A script check that runs past its timeout is killed with everything it
// started: its children must not outlive it as orphans.
func TestExecTaskTimeoutKillsTheCommandsChildren(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	id, _, _ := recovered(t, h, "sleep 300")
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ex, err := h.Driver.ExecTask(ctx(t), &driverpb.ExecTaskRequest{
		TaskId:  id,
		Command: []string{"/bin/sh", "-c", "sleep 300 & echo $! > " + pidFile + "; wait"},
		Timeout: durationpb.New(300 * time.Millisecond),
	})
	if err != nil {
		t.Fatal(err)
	}
	if ex.GetResult().GetSignal() != int32(syscall.SIGKILL) {
		t.Errorf("timed-out command result = %v, want killed", ex.GetResult())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	plugintest.Eventually(t, 5*time.Second, "the command's child to be killed with it", func() bool { return plugintest.Gone(child) })
}

// A session whose command exits while something it started in the
// background still holds its output ends anyway (`exit` in `nomad alloc
// exec` after `cmd &` must return to the user), with the output written
// before the exit and the command's own result.
func TestExecTaskStreamingEndsWhenTheCommandExits(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	id, _, _ := recovered(t, h, "sleep 300")
	for _, tty := range []bool{false, true} {
		pidFile := filepath.Join(t.TempDir(), "bg.pid")
		// The deadline only tells "the session ended" from "it waits for the
		// background sleep 300": well below 300 s, far above what a busy
		// machine needs to start and end two processes.
		c, cancel := context.WithTimeout(context.Background(), processWait)
		stream, err := h.Driver.ExecTaskStreaming(c)
		if err != nil {
			t.Fatal(err)
		}
		script := "sleep 300 & echo $! > " + pidFile + "; echo started; exit 5\n"
		if err := stream.Send(&driverpb.ExecTaskStreamingRequest{
			Setup: &driverpb.ExecTaskStreamingRequest_Setup{TaskId: id, Command: []string{"/bin/sh", "-c", script}, Tty: tty},
		}); err != nil {
			t.Fatal(err)
		}
		stdout, _, result, err := readSession(stream)
		if err != nil {
			t.Fatalf("tty=%v: the session did not end after the command exited: %v", tty, err)
		}
		cancel()
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if result.GetExitCode() != 5 || !strings.Contains(stdout, "started") {
			t.Errorf("tty=%v: result %v, stdout %q", tty, result, stdout)
		}
	}
}

// readSession reads an exec stream to its end: the output of each stream
// and the result the exited message carries.
func readSession(stream driverpb.Driver_ExecTaskStreamingClient) (stdout, stderr string, result *driverpb.ExitResult, err error) {
	var out, errOut strings.Builder
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), errOut.String(), result, nil
		}
		if err != nil {
			return out.String(), errOut.String(), result, err
		}
		out.Write(msg.GetStdout().GetData())
		errOut.Write(msg.GetStderr().GetData())
		if msg.GetExited() {
			result = msg.GetResult()
		}
	}
}
