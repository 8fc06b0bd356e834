package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
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

// writeLocalSpec writes src as nimbus.hcl in a fresh directory and returns it.
func writeLocalSpec(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLocalInvokeSpecHelloGo(t *testing.T) {
	// examples/hello-go holds Go sources and a spec, no bootstrap: it is built.
	dir := filepath.Join("..", "..", "examples", "hello-go")
	code, out, errOut := runLocalCLI(t, `{"name":"spec"}`, "local", "invoke", "--event", "-", dir)
	if code != 0 || out != "{\"message\":\"hello, spec\"}\n" || !strings.Contains(errOut, "\tMemory Size: 128 MB\t") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	// The spec file itself works too, and flags win over the spec.
	code, out, errOut = runLocalCLI(t, "", "local", "invoke", "--memory", "256", filepath.Join(dir, "nimbus.hcl"))
	if code != 0 || out != "{\"message\":\"hello, world\"}\n" || !reportRE.MatchString(errOut) {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}

// ctxReport is the part of testfn ctxcheck's answer these tests read.
type ctxReport struct {
	DeadlineMs   int64             `json:"deadline_ms"`
	FunctionName string            `json:"function_name"`
	MemoryMB     int               `json:"memory_mb"`
	Env          map[string]string `json:"env"`
}

func TestLocalInvokeSpecPicksFunctionAndAppliesIt(t *testing.T) {
	dir := writeLocalSpec(t, `
variable "greeting" {
  type    = string
  default = "hello"
}

function "ctx" {
  runtime   = "provided.al2023"
  memory_mb = 512
  timeout   = "2m"
  environment = {
    GREETING = var.greeting
    KEEP     = "spec"
  }
  code {
    dir = "`+testfn.Dir(t, "ctxcheck")+`"
  }
}

function "echo" {
  runtime = "provided.al2023"
  code {
    dir = "`+testfn.Dir(t, "echo")+`"
  }
}
`)
	code, out, errOut := runLocalCLI(t, "", "local", "invoke", dir)
	if code != 1 || out != "" || !strings.Contains(errOut, "declares 2 functions (ctx, echo): choose one with --function") {
		t.Fatalf("two functions, no --function: exit %d stdout %q stderr %q", code, out, errOut)
	}
	code, _, errOut = runLocalCLI(t, "", "local", "invoke", "--function", "nope", dir)
	if code != 1 || !strings.Contains(errOut, `no function "nope"`) {
		t.Fatalf("unknown --function: exit %d stderr %q", code, errOut)
	}

	before := time.Now()
	code, out, errOut = runLocalCLI(t, "", "local", "invoke", "--function", "ctx", "--var", "greeting=hi", "--env", "EXTRA=flag", dir)
	if code != 0 {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	var r ctxReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	if r.FunctionName != "ctx" || r.MemoryMB != 512 || r.Env["GREETING"] != "hi" || r.Env["KEEP"] != "spec" || r.Env["EXTRA"] != "flag" {
		t.Fatalf("spec not applied: %+v", r)
	}
	// The spec's 2m timeout, not the 3s default, set the deadline.
	if left := time.UnixMilli(r.DeadlineMs).Sub(before); left < time.Minute {
		t.Fatalf("deadline only %s after the call began; the spec's timeout was not applied", left)
	}

	code, out, errOut = runLocalCLI(t, "", "local", "invoke", "--function", "ctx", "--memory", "1024", "--name", "renamed", "--env", "KEEP=flag", dir)
	if code != 0 {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	if r.FunctionName != "renamed" || r.MemoryMB != 1024 || r.Env["KEEP"] != "flag" || r.Env["GREETING"] != "hello" {
		t.Fatalf("flags did not override the spec: %+v", r)
	}
}

func TestLocalInvokeSpecZipCode(t *testing.T) {
	dir := writeLocalSpec(t, `
function "zipped" {
  runtime = "provided.al2023"
  code {
    zip = "fn.zip"
  }
}
`)
	f, err := os.Create(filepath.Join(dir, "fn.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Zip(testfn.Dir(t, "echo"), f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runLocalCLI(t, `[1,2,3]`, "local", "invoke", "--event", "-", dir)
	if code != 0 || out != "[1,2,3]\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestLocalInvokeSpecURLCodeIsRefused(t *testing.T) {
	dir := writeLocalSpec(t, `
function "remote" {
  runtime = "provided.al2023"
  code {
    url      = "https://artifacts.example.com/remote.zip"
    checksum = "sha256:`+strings.Repeat("ab", 32)+`"
  }
}
`)
	code, out, errOut := runLocalCLI(t, "", "local", "invoke", dir)
	if code != 1 || out != "" || !strings.Contains(errOut, "function remote takes its code from https://artifacts.example.com/remote.zip; local invoke runs code { dir } or code { zip } only") {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestLocalInvokeInvalidSpec(t *testing.T) {
	dir := writeLocalSpec(t, `function "bad" {
  runtime   = "provided.al2023"
  memory_mb = 64
  code {
    dir = "."
  }
}
`)
	code, out, errOut := runLocalCLI(t, "", "local", "invoke", dir)
	want := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(filepath.Join(dir, "nimbus.hcl")) + `:3:\d+: error: .*memory_mb`)
	if code != 1 || out != "" || !want.MatchString(errOut) {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestLocalInvokeSpecFlagsNeedASpec(t *testing.T) {
	code, _, errOut := runLocalCLI(t, "", "local", "invoke", "--function", "x", testfn.Dir(t, "echo"))
	if code != 1 || !strings.Contains(errOut, "--function and --var need a spec") {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
}

// TestLocalInvokeSpecNetworkNone: local invoke honours a spec's network
// "none" — the function sees only lo — or, where environments cannot be
// sandboxed, refuses to run it rather than give it the host's network.
func TestLocalInvokeSpecNetworkNone(t *testing.T) {
	dir := writeLocalSpec(t, `
function "probe" {
  runtime = "provided.al2023"
  network = "none"
  code {
    dir = "`+testfn.Dir(t, "netprobe")+`"
  }
}
`)
	code, out, errOut := runLocalCLI(t, `{}`, "local", "invoke", "--event", "-", dir)
	if len(sandbox.Missing()) > 0 {
		if code == 0 || !strings.Contains(errOut, `network "none"`) {
			t.Fatalf("without a sandbox: exit %d stdout %q stderr %q, want a refusal", code, out, errOut)
		}
		return
	}
	if code != 0 {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	var r struct {
		Interfaces []string `json:"interfaces"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	if len(r.Interfaces) != 1 || r.Interfaces[0] != "lo" {
		t.Fatalf("interfaces %v, want only lo", r.Interfaces)
	}
}
