package instance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/runtimeapi"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

var reportLine = regexp.MustCompile(`REPORT RequestId: (\S+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\t(Init Duration: \d+\.\d\d ms\t)?\n`)

func TestEchoColdThenWarm(t *testing.T) {
	cfg := testConfig(t, "echo")
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{"hello":"world"}`), RequestID: "req-1", LogTail: true})
	if string(r.body) != `{"hello":"world"}` {
		t.Fatalf("body %q", r.body)
	}
	if !r.report.ColdStart || r.report.InitDuration <= 0 || r.report.BilledMs < 1 {
		t.Fatalf("first invoke report %+v, want a cold start", r.report)
	}
	if r.resp.ExecutedVersion != "$LATEST" || r.resp.RequestID != "req-1" || r.resp.FunctionError != "" {
		t.Fatalf("headers: %+v", r.resp)
	}
	tail, err := base64.StdEncoding.DecodeString(r.resp.LogResult)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(tail, []byte("START RequestId: req-1 Version: $LATEST\n")) ||
		!bytes.Contains(tail, []byte("END RequestId: req-1\n")) || !reportLine.Match(tail) ||
		!bytes.Contains(tail, []byte("Init Duration: ")) {
		t.Fatalf("log tail %q", tail)
	}
	r2 := invoke(t, in, &invokeapi.Request{Payload: []byte(`[1,2]`)})
	if string(r2.body) != `[1,2]` || r2.report.ColdStart || r2.report.MaxMemoryMB <= 0 {
		t.Fatalf("second invoke %q %+v", r2.body, r2.report)
	}
	if r2.resp.LogResult != "" {
		t.Fatalf("log result without Tail: %q", r2.resp.LogResult)
	}
	eventually(t, 5*time.Second, "REPORT lines in the stdout sink", func() bool {
		b, _ := os.ReadFile(cfg.StdoutPath)
		return len(reportLine.FindAll(b, -1)) == 2
	})
	if st := in.Status(); st.Invocations != 2 || st.Started != 1 || st.Max != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestContextAndEnvironment(t *testing.T) {
	cfg := testConfig(t, "ctxcheck")
	cfg.MemoryMB = 256
	cfg.Version = "7"
	cfg.Env = map[string]string{"MY_VAR": "mine", "AWS_LAMBDA_FUNCTION_NAME": "user-cannot-override", "_LAMBDA_SERVER_PORT": "9999"}
	in := start(t, cfg)
	cc := `{"Client":{"installation_id":"inst-1","app_title":"t"},"custom":{"k":"v"},"env":{"e":"f"}}`
	before := time.Now()
	r := invoke(t, in, &invokeapi.Request{
		RequestID:       "ctx-req",
		InvokedARN:      "arn:aws:lambda:us-east-1:000000000000:function:fn-ctxcheck:live",
		ClientContext:   base64.StdEncoding.EncodeToString([]byte(cc)),
		CognitoIdentity: `{"cognitoIdentityId":"cid","cognitoIdentityPoolId":"pool"}`,
		TraceID:         "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
		TenantID:        "tenant-a",
	})
	if r.resp.FunctionError != "" {
		t.Fatalf("function error: %s", r.body)
	}
	var got struct {
		DeadlineMs    int64  `json:"deadline_ms"`
		RequestID     string `json:"request_id"`
		InvokedARN    string `json:"invoked_arn"`
		ClientContext struct {
			Client struct {
				InstallationID string `json:"installation_id"`
			}
			Custom map[string]string `json:"custom"`
		} `json:"client_context"`
		CognitoID       string            `json:"cognito_identity_id"`
		TenantID        string            `json:"tenant_id"`
		TraceID         string            `json:"trace_id"`
		FunctionName    string            `json:"function_name"`
		FunctionVersion string            `json:"function_version"`
		MemoryMB        int               `json:"memory_mb"`
		LogGroup        string            `json:"log_group"`
		LogStream       string            `json:"log_stream"`
		Cwd             string            `json:"cwd"`
		Env             map[string]string `json:"env"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	deadline := time.UnixMilli(got.DeadlineMs)
	if deadline.Before(before.Add(cfg.Timeout-time.Second)) || deadline.After(time.Now().Add(cfg.Timeout+time.Second)) {
		t.Errorf("deadline %v not about timeout %v after the invoke", deadline, cfg.Timeout)
	}
	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("request id", got.RequestID, "ctx-req")
	check("invoked arn", got.InvokedARN, "arn:aws:lambda:us-east-1:000000000000:function:fn-ctxcheck:live")
	check("client installation id", got.ClientContext.Client.InstallationID, "inst-1")
	check("client custom", got.ClientContext.Custom["k"], "v")
	check("cognito", got.CognitoID, "cid")
	check("tenant", got.TenantID, "tenant-a")
	check("trace", got.TraceID, "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
	check("function name", got.FunctionName, "fn-ctxcheck")
	check("function version", got.FunctionVersion, "7")
	check("log group", got.LogGroup, "/aws/lambda/fn-ctxcheck")
	// An isolated environment sees its code at /var/task, its layers at
	// /opt and a private /tmp, as on Lambda.
	root, opt, tmp := cfg.CodeDir, filepath.Join(cfg.StateDir, "opt"), cfg.StateDir
	if in.isolated {
		root, opt, tmp = "/var/task", "/opt", "/tmp"
	}
	check("cwd", got.Cwd, root)
	if got.MemoryMB != 256 {
		t.Errorf("memory %d", got.MemoryMB)
	}
	if !strings.Contains(got.LogStream, "/[7]") {
		t.Errorf("log stream %q", got.LogStream)
	}
	env := got.Env
	check("LAMBDA_TASK_ROOT", env["LAMBDA_TASK_ROOT"], root)
	check("AWS_LAMBDA_INITIALIZATION_TYPE", env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand")
	check("AWS_REGION", env["AWS_REGION"], "us-east-1")
	check("MY_VAR", env["MY_VAR"], "mine")
	check("_HANDLER", env["_HANDLER"], "")
	if _, ok := env["_LAMBDA_SERVER_PORT"]; ok {
		t.Error("_LAMBDA_SERVER_PORT is set")
	}
	if _, ok := env["AWS_EXECUTION_ENV"]; ok {
		t.Error("AWS_EXECUTION_ENV is set for a provided runtime")
	}
	if !strings.HasPrefix(env["TMPDIR"], tmp) {
		t.Errorf("TMPDIR %q not under %s", env["TMPDIR"], tmp)
	}
	if !strings.Contains(env["PATH"], filepath.Join(opt, "bin")) {
		t.Errorf("PATH %q lacks the layer bin dir", env["PATH"])
	}
	for k, want := range map[string]string{
		"LD_LIBRARY_PATH": filepath.Join(opt, "lib"),
		"PYTHONPATH":      filepath.Join(opt, "python"),
		"NODE_PATH":       filepath.Join(opt, "nodejs", "node_modules"),
	} {
		if !strings.Contains(env[k], want) {
			t.Errorf("%s = %q, want it to include %s", k, env[k], want)
		}
	}
	if !strings.HasPrefix(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("runtime api %q", env["AWS_LAMBDA_RUNTIME_API"])
	}
}

func TestInvokeRefusals(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.InvokeSecret = "s3cret"
	in := start(t, cfg)
	c := &invokeapi.Client{Secret: "wrong"}
	ctx := context.Background()
	if _, err := c.Invoke(ctx, in.Addr(), &invokeapi.Request{Payload: []byte(`1`)}); !isCode(err, invokeapi.ErrUnauthorized) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := c.Status(ctx, in.Addr()); !isCode(err, invokeapi.ErrUnauthorized) {
		t.Fatalf("status with wrong secret: %v", err)
	}
	if _, err := tryInvoke(in, &invokeapi.Request{Payload: []byte(`1`), ClientContext: "%%%not base64"}); !isCode(err, invokeapi.ErrBadRequest) {
		t.Fatalf("bad client context: %v", err)
	}
	big := bytes.Repeat([]byte("a"), invokeapi.MaxPayload+1)
	if _, err := tryInvoke(in, &invokeapi.Request{Payload: big}); !isCode(err, invokeapi.ErrRequestTooLarge) {
		t.Fatalf("big event: %v", err)
	}
	// Health needs no secret.
	resp, err := (&invokeapi.Client{}).HTTP, error(nil)
	_ = resp
	hr, err := defaultClient().Get("http://" + in.Addr() + invokeapi.PathHealth)
	if err != nil || hr.StatusCode != 200 {
		t.Fatalf("health: %v %v", hr, err)
	}
	hr.Body.Close()
	if r := invoke(t, in, &invokeapi.Request{Payload: []byte(`"ok"`)}); string(r.body) != `"ok"` {
		t.Fatalf("right secret: %q", r.body)
	}
}

// An event sent without a length (chunked) reaches the function whole, as
// one with a Content-Length does, and one over the limit is refused either
// way.
func TestInvokeBodyWithAndWithoutLength(t *testing.T) {
	in := start(t, testConfig(t, "echo"))
	event := []byte(`{"pad":"` + strings.Repeat("x", 100_000) + `"}`)
	post := func(body io.Reader) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+in.Addr()+invokeapi.PathInvoke, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := defaultClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	for name, body := range map[string]func([]byte) io.Reader{
		"with length": func(b []byte) io.Reader { return bytes.NewReader(b) },
		"chunked":     func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) },
	} {
		if resp, got := post(body(event)); resp.StatusCode != http.StatusOK || !bytes.Equal(got, event) {
			t.Fatalf("%s: status %d, echoed %d bytes, want the %d sent", name, resp.StatusCode, len(got), len(event))
		}
		big := bytes.Repeat([]byte("a"), invokeapi.MaxPayload+1)
		if resp, got := post(body(big)); resp.StatusCode == http.StatusOK || !bytes.Contains(got, []byte("smaller than")) {
			t.Fatalf("%s, over the limit: status %d, body %.200s", name, resp.StatusCode, got)
		}
	}
}

func TestFunctionErrorKeepsEnvironment(t *testing.T) {
	in := start(t, testConfig(t, "error"))
	r := invoke(t, in, &invokeapi.Request{RequestID: "e1"})
	if r.resp.FunctionError != invokeapi.FunctionErrorUnhandled {
		t.Fatalf("function error header %q", r.resp.FunctionError)
	}
	if typ, msg := errorBody(t, r.body); typ != "MyErr" || msg != "custom failure" {
		t.Fatalf("error %s: %s", typ, msg)
	}
	r2 := invoke(t, in, &invokeapi.Request{RequestID: "e2"})
	if r2.report.ColdStart {
		t.Fatal("a handled error reset the environment")
	}
}

func TestPanicResetsEnvironment(t *testing.T) {
	in := start(t, testConfig(t, "panic"))
	r := invoke(t, in, &invokeapi.Request{LogTail: true})
	if typ, msg := errorBody(t, r.body); typ != "string" || msg != "boom" || r.resp.FunctionError != "Unhandled" {
		t.Fatalf("panic answer %s", r.body)
	}
	if !bytes.Contains(r.body, []byte(`"stackTrace"`)) {
		t.Fatalf("posted body not passed through: %s", r.body)
	}
	tail, _ := base64.StdEncoding.DecodeString(r.resp.LogResult)
	if !bytes.Contains(tail, []byte("about to panic")) {
		t.Errorf("function output missing from tail %q", tail)
	}
	// The process exits after posting; the next invocation gets a fresh one.
	r2 := invoke(t, in, &invokeapi.Request{})
	if typ, _ := errorBody(t, r2.body); typ != "string" || !r2.report.ColdStart {
		t.Fatalf("second invoke %s %+v", r2.body, r2.report)
	}
}

func TestTimeoutResetsEnvironment(t *testing.T) {
	cfg := testConfig(t, "sleep")
	cfg.Timeout = time.Second
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{RequestID: "slow", Payload: event(map[string]int{"ms": 60000})})
	want := `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: slow Error: Task timed out after 1.00 seconds"}`
	if string(r.body) != want || r.resp.FunctionError != "Unhandled" {
		t.Fatalf("timeout answer %s", r.body)
	}
	r2 := invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"ms": 1})})
	if string(r2.body) != `"slept"` || !r2.report.ColdStart {
		t.Fatalf("after timeout: %s %+v", r2.body, r2.report)
	}
}

func TestCallerDeadlineShortensTimeout(t *testing.T) {
	in := start(t, testConfig(t, "sleep"))
	r := invoke(t, in, &invokeapi.Request{RequestID: "d", Payload: event(map[string]int{"ms": 60000}), Deadline: time.Now().Add(500 * time.Millisecond)})
	if typ, _ := errorBody(t, r.body); typ != "Sandbox.Timedout" {
		t.Fatalf("answer %s", r.body)
	}
}

func TestInitExitIsRetried(t *testing.T) {
	cfg := testConfig(t, "initexit")
	in := start(t, cfg)
	for i := 0; i < 2; i++ {
		r := invoke(t, in, &invokeapi.Request{RequestID: fmt.Sprint("init-", i)})
		typ, msg := errorBody(t, r.body)
		if typ != "Runtime.InitError" || msg != fmt.Sprintf("RequestId: init-%d Error: Runtime exited during init with error: exit status 3", i) {
			t.Fatalf("attempt %d: %s", i, r.body)
		}
	}
	eventually(t, 5*time.Second, "init output in the stderr sink", func() bool {
		return fileContains(cfg.StderrPath, []byte("init: missing configuration"))
	})
}

func TestMissingBootstrap(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.CodeDir = t.TempDir()
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{RequestID: "x"})
	if typ, _ := errorBody(t, r.body); typ != "Runtime.InvalidEntrypoint" || r.resp.FunctionError != "Unhandled" {
		t.Fatalf("answer %s", r.body)
	}
}

func TestBootstrapFromLayer(t *testing.T) {
	cfg := testConfig(t, "echo")
	layer := t.TempDir()
	if err := os.MkdirAll(filepath.Join(layer, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.CodeDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layer, "bootstrap"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.LayerDirs = []string{layer}
	cfg.CodeDir = t.TempDir()
	in := start(t, cfg)
	if r := invoke(t, in, &invokeapi.Request{Payload: []byte(`"layer"`)}); string(r.body) != `"layer"` {
		t.Fatalf("answer %s", r.body)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "opt", "bin")); err != nil {
		t.Fatalf("layer dir not merged: %v", err)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	in := start(t, testConfig(t, "large"))
	r := invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"bytes": runtimeapi.MaxPayload})})
	if len(r.body) != runtimeapi.MaxPayload || r.resp.FunctionError != "" {
		t.Fatalf("at the limit: %d bytes, error %q", len(r.body), r.resp.FunctionError)
	}
	r = invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"bytes": runtimeapi.MaxPayload + 1})})
	want := `{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`
	if string(r.body) != want || r.resp.FunctionError != "Unhandled" {
		t.Fatalf("over the limit: %.300s", r.body)
	}
	// aws-lambda-go exits on the 413; the instance recovers with a new process.
	r = invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"bytes": 3})})
	if string(r.body) != "xxx" {
		t.Fatalf("after the limit: %q", r.body)
	}
}

func TestOutOfMemory(t *testing.T) {
	in := start(t, testConfig(t, "memhog"))
	r := invoke(t, in, &invokeapi.Request{RequestID: "hog", Payload: event(map[string]int{"mb": 400, "hold_ms": 30000})})
	want := `{"errorType":"Runtime.OutOfMemory","errorMessage":"RequestId: hog Error: Runtime exited with error: signal: killed"}`
	if string(r.body) != want {
		t.Fatalf("answer %s", r.body)
	}
	r = invoke(t, in, &invokeapi.Request{Payload: event(map[string]int{"mb": 20})})
	if string(r.body) != `"held 20 MB"` || r.report.MaxMemoryMB < 20 {
		t.Fatalf("after oom: %s %+v", r.body, r.report)
	}
}

func TestConcurrentEnvironmentsAndNoQueueing(t *testing.T) {
	cfg := testConfig(t, "sleep")
	cfg.Environments = 3
	in := start(t, cfg)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]*result, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			results[i], errs[i] = tryInvoke(in, &invokeapi.Request{Payload: event(map[string]int{"ms": 3000})})
		}()
	}
	close(gate)
	eventually(t, 10*time.Second, "three busy environments", func() bool { return in.Status().Busy == 3 })
	if _, err := tryInvoke(in, &invokeapi.Request{Payload: event(map[string]int{"ms": 1})}); !isCode(err, invokeapi.ErrNoIdleEnvironment) {
		t.Fatalf("fourth invoke: %v", err)
	}
	wg.Wait()
	for i := range 3 {
		if errs[i] != nil || string(results[i].body) != `"slept"` {
			t.Fatalf("invoke %d: %v %+v", i, errs[i], results[i])
		}
	}
	if st := in.Status(); st.Started != 3 || st.Idle != 3 || st.Busy != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestStreaming(t *testing.T) {
	in := start(t, testConfig(t, "stream"))
	gate, openGate := httpGate(t)
	c := &invokeapi.Client{}
	resp, err := c.Invoke(context.Background(), in.Addr(), &invokeapi.Request{Streaming: true, Payload: event(map[string]string{"gate": gate})})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("chunk-1\n"))
	if _, err := io_ReadFull(resp.Body, first); err != nil || string(first) != "chunk-1\n" {
		t.Fatalf("first chunk %q %v", first, err)
	}
	// The function writes its second chunk only after the gate opens, so the
	// first one was forwarded as it arrived.
	openGate()
	rest, err := io_ReadAll(resp.Body)
	if err != nil || string(rest) != "chunk-2\n" {
		t.Fatalf("rest %q %v", rest, err)
	}
	rep := resp.Report()
	if !rep.ColdStart || rep.StreamErrType != "" || rep.BilledMs < 1 {
		t.Fatalf("report %+v", rep)
	}
	if resp.ContentType != "application/octet-stream" {
		t.Fatalf("content type %q", resp.ContentType)
	}
}

func TestStreamingMidStreamError(t *testing.T) {
	in := start(t, testConfig(t, "stream"))
	c := &invokeapi.Client{}
	resp, err := c.Invoke(context.Background(), in.Addr(), &invokeapi.Request{Streaming: true, Payload: event(map[string]any{"fail": true})})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io_ReadAll(resp.Body)
	if err != nil || string(body) != "chunk-1\nchunk-2\n" {
		t.Fatalf("body %q %v", body, err)
	}
	rep := resp.Report()
	if rep.StreamErrType != "errorString" {
		t.Fatalf("report %+v", rep)
	}
	eb, _ := base64.StdEncoding.DecodeString(rep.StreamErrBody)
	if typ, msg := errorBody(t, eb); typ != "errorString" || msg != "boom mid-stream" {
		t.Fatalf("error body %s", eb)
	}
	// The same failure for a buffered caller is a function error.
	r := invoke(t, in, &invokeapi.Request{Payload: event(map[string]any{"fail": true})})
	if typ, _ := errorBody(t, r.body); typ != "errorString" || r.resp.FunctionError != "Unhandled" {
		t.Fatalf("buffered: %s", r.body)
	}
}

func TestStreamingTimeout(t *testing.T) {
	cfg := testConfig(t, "stream")
	cfg.Timeout = time.Second
	in := start(t, cfg)
	never := filepath.Join(t.TempDir(), "never")
	c := &invokeapi.Client{}
	resp, err := c.Invoke(context.Background(), in.Addr(), &invokeapi.Request{Streaming: true, Payload: event(map[string]string{"gate": never})})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io_ReadAll(resp.Body)
	if string(body) != "chunk-1\n" {
		t.Fatalf("body %q", body)
	}
	if rep := resp.Report(); rep.StreamErrType != "Sandbox.Timedout" {
		t.Fatalf("report %+v", rep)
	}
}

func TestProvisionedStartsAllEnvironments(t *testing.T) {
	cfg := testConfig(t, "ctxcheck")
	cfg.Environments = 2
	cfg.InitializationType = InitProvisioned
	in := start(t, cfg)
	eventually(t, 10*time.Second, "two idle environments", func() bool { return in.Status().Idle == 2 })
	r := invoke(t, in, &invokeapi.Request{})
	var got struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if v := got.Env["AWS_LAMBDA_INITIALIZATION_TYPE"]; v != "provisioned-concurrency" {
		t.Fatalf("initialization type %q", v)
	}
	if r.report.ColdStart || r.report.InitDuration != 0 {
		t.Fatalf("an invocation on a pre-initialised environment is not a cold start: %+v", r.report)
	}
}

func TestWarmEndpoint(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.Environments = 3
	in := start(t, cfg)
	c := &invokeapi.Client{}
	st, err := c.Warm(context.Background(), in.Addr(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Started != 2 {
		t.Fatalf("after warm: %+v", st)
	}
	eventually(t, 10*time.Second, "two idle environments", func() bool { return in.Status().Idle == 2 })
	st, err = c.Status(context.Background(), in.Addr())
	if err != nil || st.Max != 3 || st.Started != 2 || st.Function != "fn-echo" {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestStopSendsSIGTERMThenKills(t *testing.T) {
	cfg := testConfig(t, "sigterm")
	in, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := invoke(t, in, &invokeapi.Request{}); string(r.body) != `"ok"` {
		t.Fatalf("answer %s", r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// The handler registered through the Extensions API ran on SIGTERM, and
	// the process (which ignores SIGTERM then) was killed: Stop returned.
	if !fileContains(cfg.StdoutPath, []byte("sigterm received")) {
		b, _ := os.ReadFile(cfg.StdoutPath)
		t.Fatalf("stdout %q", b)
	}
	// aws-lambda-go logs a warning when registration fails or when the
	// extension poll returns; neither may happen.
	if errLog, _ := os.ReadFile(cfg.StderrPath); bytes.Contains(errLog, []byte("WARNING")) {
		t.Fatalf("extension api warnings: %s", errLog)
	}
	if _, err := tryInvoke(in, &invokeapi.Request{}); err == nil {
		t.Fatal("invoke after stop succeeded")
	}
}

func TestRunWritesReadyFile(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.ReadyFile = filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testLogger(t)) }()
	var addr string
	eventually(t, 10*time.Second, "ready file", func() bool {
		b, err := os.ReadFile(cfg.ReadyFile)
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	})
	c := &invokeapi.Client{}
	resp, err := c.Invoke(context.Background(), addr, &invokeapi.Request{Payload: []byte(`"run"`)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io_ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `"run"` {
		t.Fatalf("answer %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	base := func() *Config {
		return &Config{Function: "f", Runtime: "provided.al2023", CodeDir: "/code", StateDir: "/state"}
	}
	if err := base().withDefaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"no function":   func(c *Config) { c.Function = "" },
		"relative code": func(c *Config) { c.CodeDir = "code" },
		"small memory":  func(c *Config) { c.MemoryMB = 64 },
		"long timeout":  func(c *Config) { c.Timeout = time.Hour },
		"init type":     func(c *Config) { c.InitializationType = "snap-start" },
		"layer":         func(c *Config) { c.LayerDirs = []string{"rel"} },
	} {
		c := base()
		mut(c)
		if err := c.withDefaults().Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(&Config{Function: "f"}, nil); err == nil {
		t.Error("New accepted an invalid config")
	}
	_ = testfn.Dir
}
