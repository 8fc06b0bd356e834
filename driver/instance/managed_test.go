package instance

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

func managedConfig(t *testing.T, runtime, handler, file, code string) *Config {
	t.Helper()
	cfg := testConfig(t, "echo")
	cfg.Runtime, cfg.Handler = runtime, handler
	cfg.CodeDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg.CodeDir, file), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPythonRuntime(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not on PATH")
	}
	cfg := managedConfig(t, "python3.12", "app.handler", "app.py", `
import os
def handler(event, context):
    print("python sees", context.aws_request_id)
    return {"event": event, "fn": context.function_name, "root": os.environ["LAMBDA_TASK_ROOT"], "exec": os.environ.get("AWS_EXECUTION_ENV")}
`)
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{RequestID: "py-1", Payload: []byte(`{"x":1}`)})
	var got struct {
		Event map[string]int `json:"event"`
		Fn    string         `json:"fn"`
		Root  string         `json:"root"`
		Exec  string         `json:"exec"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || got.Event["x"] != 1 || got.Fn != "fn-echo" || got.Root != taskRoot(in) || got.Exec != "AWS_Lambda_python3.12" {
		t.Fatalf("answer %s (%v)", r.body, err)
	}
	eventually(t, 5*time.Second, "python output in the sink", func() bool {
		return fileContains(cfg.StdoutPath, []byte("python sees py-1"))
	})
}

func TestPythonImportErrorIsAnInitError(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not on PATH")
	}
	cfg := managedConfig(t, "python3.12", "app.handler", "app.py", "import nimbus_no_such_module\n")
	in := start(t, cfg)
	for i := 0; i < 2; i++ {
		r := invoke(t, in, &invokeapi.Request{})
		if typ, _ := errorBody(t, r.body); typ != "Runtime.ImportModuleError" || r.resp.FunctionError != "Unhandled" {
			t.Fatalf("attempt %d: %s", i, r.body)
		}
	}
}

func TestNodeRuntime(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not on PATH")
	}
	cfg := managedConfig(t, "nodejs20.x", "index.handler", "index.js", `
exports.handler = async (event, context) => ({ got: event, id: context.awsRequestId });
`)
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{RequestID: "js-1", Payload: []byte(`"hi"`)})
	if string(r.body) != `{"got":"hi","id":"js-1"}` {
		t.Fatalf("answer %s", r.body)
	}
}
