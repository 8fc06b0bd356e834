package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

func runLocalCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

var reportRE = regexp.MustCompile(`REPORT RequestId: \S+\tDuration: [0-9.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB\tMax Memory Used: \d+ MB\tInit Duration: [0-9.]+ ms\t`)

func TestLocalInvokeEcho(t *testing.T) {
	ev := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(ev, []byte(`{"k":"v"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runLocalCLI(t, "", "local", "invoke", "--memory", "256", "--event", ev, testfn.Dir(t, "echo"))
	if code != 0 || out != "{\"k\":\"v\"}\n" || !reportRE.MatchString(errOut) {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}

func TestLocalInvokeStdinEnvAndFunctionError(t *testing.T) {
	code, out, errOut := runLocalCLI(t, `{"ms":1}`, "local", "invoke", "--event", "-", "--env", "A=B", testfn.Dir(t, "sleep"))
	if code != 0 || strings.TrimSpace(out) != `"slept"` || !strings.Contains(errOut, "sleeping 1 ms") {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	code, out, _ = runLocalCLI(t, "", "local", "invoke", testfn.Dir(t, "error"))
	if code != 1 || !strings.Contains(out, `"errorType":"MyErr"`) {
		t.Fatalf("function error: exit %d stdout %q", code, out)
	}
	if code, _, _ := runLocalCLI(t, "", "local", "invoke", "--env", "novalue", testfn.Dir(t, "echo")); code != 1 {
		t.Fatalf("bad --env accepted: exit %d", code)
	}
}
