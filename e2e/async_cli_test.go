package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// TestNimbusInvokeAsyncAndInvocations drives the CLI: `nimbus invoke
// --async` against `nimbus dev`, then `nimbus invocations -id` and
// `nimbus invocations FN` until the call shows as succeeded.
func TestNimbusInvokeAsyncAndInvocations(t *testing.T) {
	bin := buildNimbus(t)
	dir := t.TempDir()
	spec := `function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "echo") + `" }
}
`
	if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := startNimbusProc(t, exec.Command(bin, "dev", "--listen", "127.0.0.1:0", dir))
	defer func() { _ = dev.stop(syscall.SIGTERM) }()
	endpoint := dev.endpoint
	run := func(args ...string) string {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("nimbus %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("invoke", "--async", "--endpoint", endpoint, "--payload", `{"via":"cli"}`, "echo")
	m := regexp.MustCompile(`queued (\S+) \(status 202\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("invoke --async printed %q", out)
	}
	rid := m[1]
	eventually(t, 30*time.Second, func() bool {
		return strings.Contains(run("invocations", "--endpoint", endpoint, "-id", rid), `"state": "succeeded"`)
	}, "nimbus invocations -id shows succeeded")
	list := run("invocations", "--endpoint", endpoint, "echo")
	if !strings.Contains(list, rid) || !strings.Contains(list, "succeeded") || !strings.HasPrefix(list, "REQUEST ID") {
		t.Errorf("nimbus invocations echo printed\n%s", list)
	}
	if out, err := exec.Command(bin, "invoke", "--async", "--endpoint", endpoint, "missing").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "ResourceNotFoundException") {
		t.Errorf("async invoke of a missing function: %v %s", err, out)
	}
}
