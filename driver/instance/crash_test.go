package instance

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

func TestCrashMidInvoke(t *testing.T) {
	in := start(t, testConfig(t, "crash"))
	r := invoke(t, in, &invokeapi.Request{RequestID: "c1", Payload: event(map[string]int{"code": 5})})
	want := `{"errorType":"Runtime.ExitError","errorMessage":"RequestId: c1 Error: Runtime exited with error: exit status 5"}`
	if string(r.body) != want || r.resp.FunctionError != "Unhandled" {
		t.Fatalf("answer %s", r.body)
	}
	r = invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"code": 0})})
	if string(r.body) != `"alive"` || !r.report.ColdStart {
		t.Fatalf("after crash: %s %+v", r.body, r.report)
	}
}

func TestKilledMidInvoke(t *testing.T) {
	in := start(t, testConfig(t, "sleep"))
	done := invokeAsync(in, &invokeapi.Request{RequestID: "k1", Payload: event(map[string]int{"ms": 60000})})
	eventually(t, 10*time.Second, "invocation running", func() bool { return envState(in, 0) == stateInvoking })
	e := in.envs[0]
	e.mu.Lock()
	pid := e.pgid
	e.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := <-done
	want := `{"errorType":"Runtime.ExitError","errorMessage":"RequestId: k1 Error: Runtime exited with error: signal: killed"}`
	if string(r.body) != want {
		t.Fatalf("answer %s", r.body)
	}
	if r := invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"ms": 1})}); string(r.body) != `"slept"` {
		t.Fatalf("after kill: %s", r.body)
	}
}

func TestStopDrainsInFlight(t *testing.T) {
	cfg := testConfig(t, "sleep")
	in, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	done := invokeAsync(in, &invokeapi.Request{Payload: event(map[string]int{"ms": 2000})})
	eventually(t, 10*time.Second, "invocation running", func() bool { return envState(in, 0) == stateInvoking })
	stopped := make(chan error, 1)
	go func() { stopped <- in.Stop(t.Context()) }()
	eventually(t, 5*time.Second, "instance shutting down", func() bool { return in.Status().ShuttingDown })
	if _, err := tryInvoke(in, &invokeapi.Request{}); err == nil {
		t.Fatal("a stopping instance took new work")
	}
	// Stop kills the runtimes only after the in-flight invocation answered:
	// without the drain it would be a Runtime.ExitError.
	if r := <-done; string(r.body) != `"slept"` {
		t.Fatalf("in-flight invocation: %s", r.body)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if st := in.Status(); !st.ShuttingDown || st.Started != 0 {
		t.Fatalf("status after stop %+v", st)
	}
}

func TestRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	cfg := testConfig(t, "ctxcheck")
	// The code must be reachable by the unprivileged user.
	code := filepath.Join(os.TempDir(), "nimbus-runas-"+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(code, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(code) })
	b, err := os.ReadFile(filepath.Join(cfg.CodeDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.CodeDir = code
	cfg.RunAs = "nobody"
	if err := os.Chmod(cfg.StateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{})
	if r.resp.FunctionError != "" {
		t.Fatalf("function error %s", r.body)
	}
	pid := bootstrapPID(t, in.envs[0])
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if !containsLine(string(st), "Uid:\t"+u.Uid+"\t") || !containsLine(string(st), "NoNewPrivs:\t1") {
		t.Fatalf("runtime process status:\n%s", st)
	}
}

func containsLine(s, prefix string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func TestStreamedResponseLimit(t *testing.T) {
	in := start(t, testConfig(t, "large"))
	in.maxStream = 1 << 20
	c := &invokeapi.Client{}
	resp, err := c.Invoke(t.Context(), in.Addr(), &invokeapi.Request{Streaming: true, Payload: event(map[string]int{"bytes": 3 << 20})})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io_ReadAll(resp.Body)
	if len(body) > 1<<20 {
		t.Fatalf("streamed %d bytes past the limit", len(body))
	}
	if rep := resp.Report(); rep.StreamErrType != "Function.ResponseSizeTooLarge" {
		t.Fatalf("report %+v", rep)
	}
	// aws-lambda-go exits on the 413; the next invocation gets a new process.
	r := invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"bytes": 2})})
	if string(r.body) != "xx" {
		t.Fatalf("after the limit: %q", r.body)
	}
}
