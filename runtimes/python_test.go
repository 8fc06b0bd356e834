package runtimes

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pythonRuntime3 = "python3.11"

// One process serves many invocations, survives bad input and exits when
// /next fails.
func TestPythonInvocationsInOneProcess(t *testing.T) {
	t.Parallel()
	b := launch(t, pythonRuntime3, "python", "", "app.echo")

	b.invokeKeepsState(t, func(i int, p post) {
		if i == 1 && !strings.Contains(string(p.Body), `"Zoë"`) {
			t.Errorf("non-ASCII text escaped: %s", p.Body)
		}
	})
	b.waitOutput(t, "echo call 3\n")

	// An event that is not JSON is the function's error, not the end.
	p := b.invoke(t, invocation{Payload: "not json"})
	e := p.errorJSON(t)
	if p.Kind != "error" || e["errorType"] != "Runtime.UnmarshalError" ||
		!strings.HasPrefix(e["errorMessage"].(string), "Unable to unmarshal input: ") {
		t.Fatalf("bad event: got %s %s", p.Kind, p.Body)
	}
	p = b.invoke(t, invocation{ClientContext: "{broken"})
	e = p.errorJSON(t)
	if p.Kind != "error" || e["errorType"] != "Runtime.LambdaContextUnmarshalError" ||
		!strings.HasPrefix(e["errorMessage"].(string), "Unable to parse Client Context JSON: ") {
		t.Fatalf("bad client context: got %s %s", p.Kind, p.Body)
	}
	b.survivesTransport(t)
}

func TestPythonNoneIsNull(t *testing.T) {
	t.Parallel()
	b := launch(t, pythonRuntime3, "python", "", "app.none")
	wantResponse(t, b.invoke(t, invocation{}), "null")
}

func TestPythonHandlerError(t *testing.T) {
	t.Parallel()
	b := launch(t, pythonRuntime3, "python", "", "app.fail")
	p := b.invoke(t, invocation{ID: "req-fail-1"})
	if p.Kind != "error" {
		t.Fatalf("got %s %s, want error", p.Kind, p.Body)
	}
	e := p.errorJSON(t)
	if len(e) != 4 || e["errorType"] != "CustomError" || e["errorMessage"] != "custom failure" || e["requestId"] != "req-fail-1" {
		t.Errorf("error JSON %s", p.Body)
	}
	if got := p.Header.Get("Lambda-Runtime-Function-Error-Type"); got != "CustomError" {
		t.Errorf("error type header %q", got)
	}
	// Lambda's python format: one string per frame, the runtime's own frames
	// dropped, no column carets.
	trace, _ := e["stackTrace"].([]any)
	app, _ := filepath.Abs("testdata/python/app.py")
	if len(trace) != 2 {
		t.Fatalf("stackTrace has %d frames, want 2 (fail, helper): %s", len(trace), p.Body)
	}
	for i, want := range []string{", in fail\n    helper()\n", ", in helper\n    raise CustomError(\"custom failure\")\n"} {
		frame, _ := trace[i].(string)
		if !strings.HasPrefix(frame, `  File "`+app+`", line `) || !strings.HasSuffix(frame, want) {
			t.Errorf("frame %d = %q, want %q…%q", i, frame, `  File "`+app+`", line `, want)
		}
	}
	b.waitOutput(t, "[ERROR] CustomError: custom failure\rTraceback (most recent call last):\r\u00a0\u00a0File \""+app)

	// The process keeps serving after a function error.
	if p := b.invoke(t, invocation{ID: "req-fail-2"}); p.Kind != "error" || p.errorJSON(t)["requestId"] != "req-fail-2" {
		t.Errorf("second invocation: %s %s", p.Kind, p.Body)
	}
}

func TestPythonContext(t *testing.T) {
	t.Parallel()
	b := launch(t, pythonRuntime3, "python", "", "app.context_info")
	trace := "Root=1-6744c7a1-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=bbbbbbbbbbbbbbbb;Sampled=0"
	p := b.invoke(t, invocation{
		ID:            "req-ctx",
		Deadline:      time.Now().Add(90 * time.Second),
		TraceID:       trace,
		ClientContext: `{"client":{"installation_id":"inst-1","app_title":"Nimbus"},"custom":{"k":"v"},"env":{"platform":"linux"}}`,
		Identity:      `{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}`,
	})
	if p.Kind != "response" {
		t.Fatalf("got %s %s", p.Kind, p.Body)
	}
	got := decodeJSON(t, p.Body)
	want := map[string]any{
		"aws_request_id":           "req-ctx",
		"invoked_function_arn":     testARN,
		"function_name":            "fn-under-test",
		"function_version":         "7",
		"memory_limit_in_mb":       "256",
		"log_group_name":           "/aws/lambda/fn-under-test",
		"log_stream_name":          "2026/11/25/[7]0123456789abcdef",
		"client_installation_id":   "inst-1",
		"client_app_title":         "Nimbus",
		"cognito_identity_id":      "id-1",
		"cognito_identity_pool_id": "pool-1",
		"trace_id":                 trace,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if c, _ := got["client_custom"].(map[string]any); c["k"] != "v" {
		t.Errorf("client_context.custom = %v", got["client_custom"])
	}
	if e, _ := got["client_env"].(map[string]any); e["platform"] != "linux" {
		t.Errorf("client_context.env = %v", got["client_env"])
	}
	if ms, _ := got["remaining_ms"].(float64); ms <= 0 || ms > 90000 {
		t.Errorf("remaining time %v ms, want within (0, 90000]", got["remaining_ms"])
	}

	// Without client context or identity; a deadline already past.
	p = b.invoke(t, invocation{Deadline: time.Now().Add(-time.Second)})
	got = decodeJSON(t, p.Body)
	if got["remaining_ms"] != float64(0) || got["client_installation_id"] != nil || got["cognito_identity_id"] != nil {
		t.Errorf("second context: %s", p.Body)
	}
}

func TestPythonInitErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		handler, errorType, message string
	}{
		{"app.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'app'"},
		{"nosuch.handler", "Runtime.ImportModuleError", "Unable to import module 'nosuch': No module named 'nosuch'"},
		{"import_error.handler", "Runtime.ImportModuleError", "Unable to import module 'import_error': No module named 'nimbus_no_such_module'"},
		{"syntax_error.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'syntax_error': "},
		{"init_raises.handler", "ValueError", "init boom"},
		{"nodot", "Runtime.MalformedHandlerName", "Bad handler 'nodot': "},
		{"sys.handler", "Runtime.BuiltInModuleConflict", "Cannot use built-in module sys as a handler module"},
	}
	for _, tc := range cases {
		t.Run(tc.handler, func(t *testing.T) {
			t.Parallel()
			b := launch(t, pythonRuntime3, "python", "", tc.handler)
			p := b.nextPost(t)
			if p.Kind != "init-error" {
				t.Fatalf("got %s %s, want init-error", p.Kind, p.Body)
			}
			e := p.errorJSON(t)
			msg, _ := e["errorMessage"].(string)
			if e["errorType"] != tc.errorType || !strings.HasPrefix(msg, tc.message) || e["requestId"] != "" {
				t.Errorf("init error %s, want %s %q…", p.Body, tc.errorType, tc.message)
			}
			if _, ok := e["stackTrace"].([]any); !ok {
				t.Errorf("stackTrace missing or not a list: %s", p.Body)
			}
			if tc.errorType == "Runtime.UserCodeSyntaxError" {
				frame, _ := e["stackTrace"].([]any)[0].(string)
				if !strings.Contains(frame, `syntax_error.py" Line `) { // line 2 or 3, by parser
					t.Errorf("syntax error frame %q", frame)
				}
			}
			if code := b.waitExit(t); code == 0 {
				t.Errorf("exit code 0 after an init error")
			}
		})
	}
}

func TestPythonModulePaths(t *testing.T) {
	t.Parallel()
	for _, handler := range []string{"pkg/sub/mod.handler", "pkg.sub.mod.handler"} {
		t.Run(strings.ReplaceAll(handler, "/", "_"), func(t *testing.T) {
			t.Parallel()
			b := launch(t, pythonRuntime3, "python", "", handler)
			wantResponse(t, b.invoke(t, invocation{}), `"pkg.sub.mod"`)
		})
	}
}

// The task root comes before PYTHONPATH (layers), which still resolves.
func TestPythonTaskRootThenPythonPath(t *testing.T) {
	t.Parallel()
	b := launch(t, pythonRuntime3, "python", "python_layer", "shadow.which")
	wantResponse(t, b.invoke(t, invocation{}), `"task root"`)
	b = launch(t, pythonRuntime3, "python", "python_layer", "app.layered")
	wantResponse(t, b.invoke(t, invocation{}), `"from layer"`)
}

func TestPythonLoggingAndResults(t *testing.T) {
	t.Parallel()
	b := launch(t, pythonRuntime3, "python", "", "app.log")
	wantResponse(t, b.invoke(t, invocation{ID: "req-log"}), `"logged"`)
	b.waitOutput(t, "printed line\n")
	b.waitOutput(t, "Z\treq-log\twarned here\n")
	out := b.stdout.String()
	if !strings.Contains(out, "[WARNING]\t") {
		t.Errorf("logging record without Lambda's level prefix:\n%s", out)
	}
	if strings.Contains(out, "info is below") {
		t.Errorf("root logger level is not WARNING:\n%s", out)
	}

	b = launch(t, pythonRuntime3, "python", "", "app.unserializable")
	p := b.invoke(t, invocation{})
	e := p.errorJSON(t)
	if p.Kind != "error" || e["errorType"] != "Runtime.MarshalError" ||
		!strings.HasPrefix(e["errorMessage"].(string), "Unable to marshal response: ") {
		t.Errorf("unserializable result: %s %s", p.Kind, p.Body)
	}

	b = launch(t, pythonRuntime3, "python", "", "app.raw_bytes")
	p = b.invoke(t, invocation{})
	wantResponse(t, p, "\x00raw")
	if ct := p.Header.Get("Content-Type"); ct != "application/unknown" {
		t.Errorf("bytes result Content-Type %q", ct)
	}
}

// TestPythonVersions runs the bootstrap under every versioned python3.N on
// PATH that starts, to keep it working from 3.8 on. With pyenv, select
// several versions at once: PYENV_VERSION=3.11.7:3.8.18:3.13.0 go test ./runtimes
func TestPythonVersions(t *testing.T) {
	ran := 0
	for minor := 8; minor <= 14; minor++ {
		exe := fmt.Sprintf("python3.%d", minor)
		path, err := exec.LookPath(exe)
		if err != nil || exec.Command(path, "-c", "").Run() != nil {
			continue // absent, or a shim for a version not selected
		}
		ran++
		t.Run(exe, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := Install(dir); err != nil {
				t.Fatal(err)
			}
			argv := []string{path, "-u", filepath.Join(dir, "python", "bootstrap.py")}

			b := start(t, argv, "python", "", "app.echo")
			if p := b.invoke(t, invocation{Payload: `{"n":1}`}); p.Kind != "response" || decodeJSON(t, p.Body)["calls"] != float64(1) {
				t.Errorf("echo: %s %s", p.Kind, p.Body)
			}
			b = start(t, argv, "python", "", "app.fail")
			p := b.invoke(t, invocation{})
			if e := p.errorJSON(t); p.Kind != "error" || e["errorType"] != "CustomError" || len(e["stackTrace"].([]any)) != 2 {
				t.Errorf("fail: %s %s", p.Kind, p.Body)
			}
			b = start(t, argv, "python", "", "syntax_error.handler")
			if p := b.nextPost(t); p.Kind != "init-error" || p.errorJSON(t)["errorType"] != "Runtime.UserCodeSyntaxError" {
				t.Errorf("syntax error: %s %s", p.Kind, p.Body)
			}
		})
	}
	if ran == 0 {
		t.Skip("no working versioned python3.N interpreter on PATH")
	}
}

// Started without -u (not through Command), the bootstrap still flushes
// print() output as it happens.
func TestPythonUnbufferedWithoutFlag(t *testing.T) {
	t.Parallel()
	exe, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	dir := t.TempDir()
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	b := start(t, []string{exe, filepath.Join(dir, "python", "bootstrap.py")}, "python", "", "app.echo")
	wantResponse(t, b.invoke(t, invocation{Payload: `1`}), `{"event": 1, "calls": 1, "pid": `+fmt.Sprint(b.cmd.Process.Pid)+`}`)
	b.waitOutput(t, "echo call 1\n") // while the process lives on
}
