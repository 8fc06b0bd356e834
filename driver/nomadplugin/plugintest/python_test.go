package plugintest_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// TestPythonFunction runs a managed-runtime task (a real python3 handler
// through the embedded bootstrap) under the driver, with a job env var.
func TestPythonFunction(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed: skipping the managed-runtime task")
	}
	bin := plugintest.BuildDriver(t)
	c := testCtx(t)
	h := start(t, bin, plugintest.Logger(t))
	a := plugintest.NewAlloc(t, t.TempDir(), "fn")
	code := filepath.Join(a.TaskDir, "local", "code")
	if err := os.MkdirAll(code, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "import os\n\ndef handler(event, context):\n    return {'got': event, 'greeting': os.environ.get('GREETING'), 'fn': context.function_name}\n"
	if err := os.WriteFile(filepath.Join(code, "app.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GREETING": "hi"}
	b, err := h.EncodeTask(c, map[string]any{
		"function": "pyfn", "runtime": "python3.12", "handler": "app.handler", "invoke_secret": "s",
	}, env)
	if err != nil {
		t.Fatal(err)
	}
	port := plugintest.FreePort(t)
	cfg := a.TaskConfig(a.TaskID(t), b, env, map[string]int{"invoke": port})
	if _, err := h.Driver.StartTask(c, &driverpb.StartTaskRequest{Task: cfg}); err != nil {
		t.Fatalf("StartTask: %v", err)
	}
	resp, err := (&invokeapi.Client{Secret: "s"}).Invoke(c, "127.0.0.1:"+strconv.Itoa(port), &invokeapi.Request{Payload: []byte(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Got      map[string]int `json:"got"`
		Greeting string         `json:"greeting"`
		Fn       string         `json:"fn"`
	}
	if err := json.Unmarshal(body, &got); err != nil || got.Got["x"] != 1 || got.Greeting != "hi" || got.Fn != "pyfn" {
		t.Fatalf("python answered %s (function error %q): %v", body, resp.FunctionError, err)
	}
	waits := make(chan waitResult, 1)
	go wait(c, h, cfg.GetId(), waits)
	if _, err := h.Driver.StopTask(c, &driverpb.StopTaskRequest{TaskId: cfg.GetId(), Timeout: durationpb.New(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if r := <-waits; r.err != nil || r.resp.GetResult().GetExitCode() != 0 {
		t.Errorf("WaitTask = %v %v", r.resp, r.err)
	}
	if _, err := h.Driver.DestroyTask(c, &driverpb.DestroyTaskRequest{TaskId: cfg.GetId(), Force: true}); err != nil {
		t.Fatal(err)
	}
}
