package runtimes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file holds the test side of the Lambda Runtime API (a small strict
// server) and a harness that starts a real interpreter on our bootstrap.

const (
	apiPrefix = "/2018-06-01/runtime"
	// waitTimeout bounds every wait on the bootstrap (generous for -race on
	// a shared 2-core machine; a healthy run takes milliseconds).
	waitTimeout = 20 * time.Second
	testARN     = "arn:aws:lambda:us-east-1:000000000000:function:fn-under-test:live"
)

var requestSeq atomic.Int64

// invocation is one event the test server hands out on /next.
type invocation struct {
	ID            string
	Payload       string
	Deadline      time.Time // zero: a minute from now
	TraceID       string
	ClientContext string // raw JSON for Lambda-Runtime-Client-Context; empty omits it
	Identity      string // raw JSON for Lambda-Runtime-Cognito-Identity; empty omits it
	ContentType   string // the event's Content-Type; empty means application/json
	// Status, when not 0, answers /next with this status instead of the event.
	Status int
	// DropConnection closes the connection right after answering the POST
	// for this invocation, without "Connection: close" (a server dropping
	// an idle keep-alive connection).
	DropConnection bool
}

// post is one POST the bootstrap made.
type post struct {
	Kind   string // "response", "error" or "init-error"
	ID     string
	Header http.Header
	Body   []byte
	// Trailer holds a streamed response's trailers.
	Trailer http.Header
}

func (p post) errorJSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(p.Body, &m); err != nil {
		t.Fatalf("%s body is not JSON: %v: %s", p.Kind, err, p.Body)
	}
	return m
}

// runtimeAPI implements the Runtime API endpoints the bootstraps call, as
// lambda-semantics.md §1 describes them: /next answers 200 with every
// Lambda-Runtime-* header, POSTs answer 202. Anything else a bootstrap does
// (wrong path, method, request id or header) is recorded as a violation and
// fails the test at cleanup.
type runtimeAPI struct {
	srv    *httptest.Server
	events chan invocation
	posts  chan post
	// chunks receives each piece of a streamed response body as it arrives.
	chunks chan []byte

	mu          sync.Mutex
	outstanding string // request id handed out and not yet answered
	dropConn    bool   // the outstanding invocation's DropConnection
	violations  []string
}

func newRuntimeAPI(t testing.TB) *runtimeAPI {
	api := &runtimeAPI{events: make(chan invocation, 16), posts: make(chan post, 16), chunks: make(chan []byte, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", api.next)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", api.result("response"))
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", api.result("error"))
	mux.HandleFunc("POST "+apiPrefix+"/init/error", api.initError)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.violate("unexpected request %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	api.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		api.srv.CloseClientConnections()
		api.srv.Close()
		api.mu.Lock()
		defer api.mu.Unlock()
		for _, v := range api.violations {
			t.Errorf("runtime API violation: %s", v)
		}
	})
	return api
}

// addr is AWS_LAMBDA_RUNTIME_API: host:port without a scheme.
func (a *runtimeAPI) addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

func (a *runtimeAPI) violate(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.violations = append(a.violations, fmt.Sprintf(format, args...))
}

func (a *runtimeAPI) next(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.outstanding != "" {
		a.violations = append(a.violations, fmt.Sprintf("/next while %s is unanswered", a.outstanding))
	}
	a.mu.Unlock()

	var inv invocation
	select {
	case inv = <-a.events:
	case <-r.Context().Done():
		return
	}
	if inv.Status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(inv.Status)
		_, _ = io.WriteString(w, `{"errorMessage":"environment is shutting down","errorType":"Test.Shutdown"}`)
		return
	}
	if inv.Deadline.IsZero() {
		inv.Deadline = time.Now().Add(time.Minute)
	}
	a.mu.Lock()
	a.outstanding = inv.ID
	a.dropConn = inv.DropConnection
	a.mu.Unlock()

	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.ID)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.Deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", testARN)
	if inv.TraceID != "" {
		h.Set("Lambda-Runtime-Trace-Id", inv.TraceID)
	}
	if inv.ClientContext != "" {
		h.Set("Lambda-Runtime-Client-Context", inv.ClientContext)
	}
	if inv.Identity != "" {
		h.Set("Lambda-Runtime-Cognito-Identity", inv.Identity)
	}
	if inv.ContentType == "" {
		inv.ContentType = "application/json"
	}
	h.Set("Content-Type", inv.ContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, inv.Payload)
}

func (a *runtimeAPI) result(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		body, err := a.readBody(r)
		if err != nil {
			a.violate("reading %s body: %v", kind, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		ok := id != "" && id == a.outstanding
		drop := ok && a.dropConn
		if ok {
			a.outstanding = ""
		} else {
			a.violations = append(a.violations, fmt.Sprintf("%s for %q while %q is outstanding", kind, id, a.outstanding))
		}
		a.mu.Unlock()
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}`)
			return
		}
		a.checkPost(kind, r, body)
		a.posts <- post{Kind: kind, ID: id, Header: r.Header.Clone(), Body: body, Trailer: r.Trailer.Clone()}
		if drop {
			a.acceptAndDrop(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"OK"}`)
	}
}

// readBody reads a POST's body; a streamed one (response mode streaming)
// piece by piece, each piece also sent to a.chunks as it arrives.
func (a *runtimeAPI) readBody(r *http.Request) ([]byte, error) {
	if r.Header.Get("Lambda-Runtime-Function-Response-Mode") != "streaming" {
		return io.ReadAll(r.Body)
	}
	var body []byte
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			body = append(body, buf[:n]...)
			select {
			case a.chunks <- bytes.Clone(buf[:n]):
			default:
				a.violate("streamed chunks not consumed")
			}
		}
		if err == io.EOF {
			return body, nil
		}
		if err != nil {
			return body, err
		}
	}
}

// acceptAndDrop answers 202 as a keep-alive response would, then closes the
// connection under the client.
func (a *runtimeAPI) acceptAndDrop(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		a.violate("hijacking: %v", err)
		return
	}
	defer conn.Close()
	const body = `{"status":"OK"}`
	_, _ = fmt.Fprintf(buf, "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_ = buf.Flush()
}

func (a *runtimeAPI) initError(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		a.violate("reading init error body: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	a.checkPost("init-error", r, body)
	a.posts <- post{Kind: "init-error", Header: r.Header.Clone(), Body: body}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// checkPost enforces the headers every POST must carry.
func (a *runtimeAPI) checkPost(kind string, r *http.Request, body []byte) {
	if kind == "response" {
		return // content type depends on the result; checked per test
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		a.violate("%s Content-Type %q, want application/json", kind, ct)
	}
	var e struct {
		ErrorType string `json:"errorType"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		a.violate("%s body is not JSON: %v", kind, err)
		return
	}
	if got := r.Header.Get("Lambda-Runtime-Function-Error-Type"); got == "" || got != e.ErrorType {
		a.violate("%s Lambda-Runtime-Function-Error-Type %q, body errorType %q", kind, got, e.ErrorType)
	}
}

// bootstrap is one running bootstrap process.
type bootstrap struct {
	api    *runtimeAPI
	cmd    *exec.Cmd
	stdout *syncBuffer
	exited chan struct{}
	err    error // Wait's result, valid after exited is closed
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// launch installs the bootstraps into a temp dir and starts runtime's
// bootstrap for handler with the Lambda environment, the task root
// testdata/<taskRoot> as working directory and layerDir on the language's
// search path. It skips the test when the interpreter is not installed.
func launch(t testing.TB, runtime, taskRoot, layerDir, handler string) *bootstrap {
	t.Helper()
	interp := "node"
	if strings.HasPrefix(runtime, "python") {
		interp = "python3"
	}
	if _, err := exec.LookPath(interp); err != nil {
		t.Skipf("%s is not installed: skipping %s bootstrap tests", interp, runtime)
	}
	dir := t.TempDir()
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	argv, err := Command(dir, runtime)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, argv, taskRoot, layerDir, handler)
}

// start runs argv as a bootstrap; see launch.
func start(t testing.TB, argv []string, taskRoot, layerDir, handler string) *bootstrap {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("testdata", taskRoot))
	if err != nil {
		t.Fatal(err)
	}
	api := newRuntimeAPI(t)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"AWS_LAMBDA_RUNTIME_API="+api.addr(),
		"_HANDLER="+handler,
		"LAMBDA_TASK_ROOT="+root,
		"AWS_LAMBDA_FUNCTION_NAME=fn-under-test",
		"AWS_LAMBDA_FUNCTION_VERSION=7",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/fn-under-test",
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/11/25/[7]0123456789abcdef",
		"PYTHONDONTWRITEBYTECODE=1", // keep testdata free of __pycache__
		"PYTHONUNBUFFERED=",         // the bootstrap must not depend on it
		"PYTHONPATH=", "NODE_PATH=", "_X_AMZN_TRACE_ID=",
	)
	if layerDir != "" {
		layer, err := filepath.Abs(filepath.Join("testdata", layerDir))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "PYTHONPATH="+layer, "NODE_PATH="+layer)
	}
	b := &bootstrap{api: api, cmd: cmd, stdout: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = b.stdout
	cmd.Stderr = b.stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.err = cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("bootstrap output:\n%s", b.stdout.String())
		}
	})
	return b
}

// stop kills the process and waits for it; it may be called again.
func (b *bootstrap) stop() {
	_ = b.cmd.Process.Kill()
	<-b.exited
}

// invoke queues inv and returns what the bootstrap posted for it.
func (b *bootstrap) invoke(t testing.TB, inv invocation) post {
	t.Helper()
	if inv.ID == "" {
		inv.ID = fmt.Sprintf("req-%d", requestSeq.Add(1))
	}
	if inv.TraceID == "" {
		inv.TraceID = "Root=1-6744c7a1-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"
	}
	if inv.Payload == "" {
		inv.Payload = "{}"
	}
	b.api.events <- inv
	p := b.nextPost(t)
	if p.ID != inv.ID {
		t.Fatalf("bootstrap posted %s for %q, want %q", p.Kind, p.ID, inv.ID)
	}
	return p
}

func (b *bootstrap) nextPost(t testing.TB) post {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case p := <-b.api.posts:
		return p
	case <-b.exited:
		// A post may have raced the exit.
		select {
		case p := <-b.api.posts:
			return p
		default:
		}
		t.Fatalf("bootstrap exited (%v) without posting", b.err)
	case <-timer.C:
		t.Fatalf("no post from the bootstrap within %s", waitTimeout)
	}
	return post{}
}

// waitExit waits for the process to end and returns its exit code.
func (b *bootstrap) waitExit(t *testing.T) int {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case <-b.exited:
		return b.cmd.ProcessState.ExitCode()
	case <-timer.C:
		t.Fatalf("bootstrap still running after %s", waitTimeout)
		return 0
	}
}

// waitOutput polls the process output until it contains want.
func (b *bootstrap) waitOutput(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(b.stdout.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never contained %q; got:\n%s", want, b.stdout.String())
		}
		select {
		case <-b.exited:
			if !strings.Contains(b.stdout.String(), want) {
				t.Fatalf("bootstrap exited; output does not contain %q:\n%s", want, b.stdout.String())
			}
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// invokeKeepsState sends three events to one bootstrap and checks every
// answer is a JSON response counting the calls in one process (the
// handlers under test answer {"calls": n, "pid": p, "event": e}). each,
// when set, checks the runtime-specific parts of invocation i's post.
func (b *bootstrap) invokeKeepsState(t *testing.T, each func(i int, p post)) {
	t.Helper()
	var pid any
	for i, payload := range []string{`{"n":1}`, `{"name":"Zoë"}`, `[1,2,3]`} {
		p := b.invoke(t, invocation{Payload: payload})
		if p.Kind != "response" {
			t.Fatalf("invocation %d: got %s %s", i, p.Kind, p.Body)
		}
		if ct := p.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("response Content-Type %q, want application/json", ct)
		}
		got := decodeJSON(t, p.Body)
		if got["calls"] != float64(i+1) {
			t.Errorf("invocation %d: calls = %v, want %d (state kept between invocations)", i, got["calls"], i+1)
		}
		if i == 0 {
			pid = got["pid"]
		} else if got["pid"] != pid {
			t.Errorf("invocation %d ran in pid %v, first in %v", i, got["pid"], pid)
		}
		if each != nil {
			each(i, p)
		}
	}
}

// survivesTransport checks what every bootstrap's loop must survive after
// earlier errors — a dropped kept-alive connection, a 5 MiB event and
// response, a non-JSON content type — and then that a non-200 from /next
// (the environment is gone) makes it exit non-zero.
func (b *bootstrap) survivesTransport(t *testing.T) {
	t.Helper()
	// The server drops the kept-alive connection after a response: the
	// next request goes on a fresh one.
	for i := range 2 {
		if p := b.invoke(t, invocation{DropConnection: i == 0}); p.Kind != "response" {
			t.Fatalf("around a dropped connection: got %s %s", p.Kind, p.Body)
		}
	}

	big := strings.Repeat("x", 5<<20)
	p := b.invoke(t, invocation{Payload: `{"big":"` + big + `"}`})
	if ev, _ := decodeJSON(t, p.Body)["event"].(map[string]any); p.Kind != "response" || ev["big"] != big {
		t.Fatalf("big event: got %s of %d bytes", p.Kind, len(p.Body))
	}

	// Events are JSON whatever content type the invoker declared.
	p = b.invoke(t, invocation{Payload: `{"again":true}`, ContentType: "application/octet-stream"})
	if ev, _ := decodeJSON(t, p.Body)["event"].(map[string]any); p.Kind != "response" || ev["again"] != true {
		t.Fatalf("after errors: got %s %s", p.Kind, p.Body)
	}

	b.api.events <- invocation{Status: 500}
	if code := b.waitExit(t); code == 0 {
		t.Errorf("exit code 0 after /next answered 500")
	}
}

func wantResponse(t *testing.T, p post, wantBody string) {
	t.Helper()
	if p.Kind != "response" {
		t.Fatalf("got %s %s, want response %s", p.Kind, p.Body, wantBody)
	}
	if string(p.Body) != wantBody {
		t.Fatalf("response body %s, want %s", p.Body, wantBody)
	}
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return m
}

// Without AWS_LAMBDA_RUNTIME_API a bootstrap says so and exits 1.
func TestBootstrapsWithoutRuntimeAPI(t *testing.T) {
	dir := t.TempDir()
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	for _, runtime := range []string{"python3.11", "nodejs20.x"} {
		argv, err := Command(dir, runtime)
		if errors.Is(err, ErrNoInterpreter) {
			t.Logf("skipping %s: %v", runtime, err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "AWS_LAMBDA_RUNTIME_API=")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "AWS_LAMBDA_RUNTIME_API is not set") {
			t.Errorf("%s: err %v, output %q", runtime, err, out)
		}
	}
}
