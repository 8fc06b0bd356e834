package instance

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/runtimeapi"
)

// rawRuntime is the test acting as a runtime against one environment's
// Runtime API; the environment's real process is a shell that only sleeps.
type rawRuntime struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (rt *rawRuntime) do(method, path string, hdr map[string]string, body io.Reader) (int, string, http.Header) {
	rt.t.Helper()
	req, err := http.NewRequest(method, rt.base+path, body)
	if err != nil {
		rt.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := rt.c.Do(req)
	if err != nil {
		rt.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}

func (rt *rawRuntime) expect(method, path string, hdr map[string]string, body string, status int, want string) http.Header {
	rt.t.Helper()
	code, got, h := rt.do(method, path, hdr, strings.NewReader(body))
	if code != status || (want != "" && got != want) {
		rt.t.Fatalf("%s %s = %d %s, want %d %s", method, path, code, got, status, want)
	}
	return h
}

// sleeperDir is a code dir whose bootstrap never talks to the Runtime API.
func sleeperDir(t *testing.T) string {
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "bootstrap"), []byte("#!/bin/sh\nexec sleep 3600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// invokeAsync starts an invocation and returns where its result arrives.
func invokeAsync(in *Instance, req *invokeapi.Request) <-chan *result {
	ch := make(chan *result, 1)
	go func() {
		r, err := tryInvoke(in, req)
		if err != nil {
			r = &result{body: []byte("invoke error: " + err.Error())}
		}
		ch <- r
	}()
	return ch
}

const (
	pathNext     = "/2018-06-01/runtime/invocation/next"
	pathInitErr  = "/2018-06-01/runtime/init/error"
	invalidID    = `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}`
	accepted     = `{"status":"OK"}`
	tooLargeBody = `{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}`
)

func respPath(id string) string { return "/2018-06-01/runtime/invocation/" + id + "/response" }
func errPath(id string) string  { return "/2018-06-01/runtime/invocation/" + id + "/error" }

func TestRuntimeAPIMisuse(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.CodeDir = sleeperDir(t)
	cfg.Timeout = 3 * time.Second
	in := start(t, cfg)
	rt := &rawRuntime{t: t, base: "http://" + in.envs[0].addr, c: &http.Client{}}

	// Init: an extension registers; the first /next receives the event.
	m1 := invokeAsync(in, &invokeapi.Request{RequestID: "m1", Payload: []byte(`{"n":1}`), ClientContext: ""})
	eventually(t, 5*time.Second, "environment initialising", func() bool { return envState(in, 0) == stateInitializing })
	h := rt.expect("POST", "/2020-01-01/extension/register", map[string]string{"Lambda-Extension-Name": "GoLangEnableSIGTERM"}, `{"events":null}`, 200, "")
	if h.Get("Lambda-Extension-Identifier") == "" {
		t.Fatal("no extension identifier")
	}
	code, body, h := rt.do("GET", pathNext, nil, nil)
	if code != 200 || body != `{"n":1}` || h.Get(runtimeapi.HeaderRequestID) != "m1" || h.Get(runtimeapi.HeaderDeadlineMs) == "" ||
		h.Get(runtimeapi.HeaderInvokedARN) != "arn:aws:lambda:us-east-1:000000000000:function:fn-echo" {
		t.Fatalf("next = %d %s %v", code, body, h)
	}
	if _, ok := h[runtimeapi.HeaderClientContext]; ok {
		t.Fatal("empty client context sent")
	}
	// Misuse while invoking.
	rt.expect("GET", pathNext, nil, "", 403, "")
	rt.expect("POST", respPath("wrong"), nil, "x", 400, invalidID)
	rt.expect("POST", pathInitErr, nil, `{}`, 403, `{"errorMessage":"State transition from Invoking to InitError failed for runtime. Error: State transition is not allowed","errorType":"InvalidStateTransition"}`)
	rt.expect("POST", "/2020-01-01/extension/register", map[string]string{"Lambda-Extension-Name": "late"}, `{}`, 403, "")
	rt.expect("POST", respPath("m1"), map[string]string{runtimeapi.HeaderResponseMode: "bogus"}, "x", 400,
		`{"errorMessage":"Invalid function response mode","errorType":"InvalidFunctionResponseMode"}`)
	if r := <-m1; r.resp == nil || r.resp.FunctionError != "Unhandled" || !bytes.Contains(r.body, []byte("Runtime.InvalidResponseModeHeader")) {
		t.Fatalf("m1 answer %s", r.body)
	}
	rt.expect("POST", respPath("m1"), nil, "late", 403, "")

	// A normal response, then double response and error after it.
	m2 := invokeAsync(in, &invokeapi.Request{RequestID: "m2"})
	_, _, h = rt.do("GET", pathNext, nil, nil)
	if h.Get(runtimeapi.HeaderRequestID) != "m2" {
		t.Fatalf("next gave %v", h)
	}
	rt.expect("POST", respPath("m2"), map[string]string{"Content-Type": "text/plain"}, "hello", 202, accepted)
	rt.expect("POST", respPath("m2"), nil, "again", 403, "")
	rt.expect("POST", errPath("m2"), nil, "{}", 403, "")
	if r := <-m2; string(r.body) != "hello" || r.resp.ContentType != "text/plain" || r.resp.FunctionError != "" {
		t.Fatalf("m2 answer %q %+v", r.body, r.resp)
	}

	// An error with only the type header.
	m3 := invokeAsync(in, &invokeapi.Request{RequestID: "m3"})
	rt.do("GET", pathNext, nil, nil)
	rt.expect("POST", errPath("m3"), map[string]string{runtimeapi.HeaderErrorType: "Function.Custom"}, "", 202, accepted)
	if r := <-m3; string(r.body) != `{"errorMessage":"Function.Custom","errorType":"Function.Custom"}` {
		t.Fatalf("m3 answer %s", r.body)
	}

	// An oversized response: 413 with RIE's body; the caller gets
	// Function.ResponseSizeTooLarge.
	m4 := invokeAsync(in, &invokeapi.Request{RequestID: "m4"})
	rt.do("GET", pathNext, nil, nil)
	rt.expect("POST", respPath("m4"), nil, strings.Repeat("z", runtimeapi.MaxPayload+1), 413, tooLargeBody)
	if r := <-m4; !bytes.Contains(r.body, []byte("Function.ResponseSizeTooLarge")) {
		t.Fatalf("m4 answer %.200s", r.body)
	}

	// A truncated body: the connection drops mid-body; the invocation then
	// times out, the environment is reset and serves again.
	m5 := invokeAsync(in, &invokeapi.Request{RequestID: "m5"})
	rt.do("GET", pathNext, nil, nil)
	conn, err := net.Dial("tcp", in.envs[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b", respPath("m5"))
	conn.(*net.TCPConn).CloseWrite()
	status, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.Contains(status, "400") {
		t.Fatalf("truncated body answered %q", status)
	}
	if r := <-m5; !bytes.Contains(r.body, []byte("Sandbox.Timedout")) {
		t.Fatalf("m5 answer %s", r.body)
	}

	// Init error: posted during init, it answers the pending invocation;
	// the next invocation retries init.
	m6 := invokeAsync(in, &invokeapi.Request{RequestID: "m6"})
	eventually(t, 5*time.Second, "environment initialising again", func() bool { return envState(in, 0) == stateInitializing })
	rt.expect("POST", pathInitErr, map[string]string{runtimeapi.HeaderErrorType: "Runtime.ImportModuleError"},
		`{"errorMessage":"no module","errorType":"Runtime.ImportModuleError"}`, 202, accepted)
	if r := <-m6; string(r.body) != `{"errorMessage":"no module","errorType":"Runtime.ImportModuleError"}` || r.resp.FunctionError != "Unhandled" {
		t.Fatalf("m6 answer %s", r.body)
	}
	m7 := invokeAsync(in, &invokeapi.Request{RequestID: "m7", Payload: []byte(`7`)})
	eventually(t, 5*time.Second, "environment initialising after the init error", func() bool { return envState(in, 0) == stateInitializing })
	code, body, _ = rt.do("GET", pathNext, nil, nil)
	if code != 200 || body != "7" {
		t.Fatalf("next after init error = %d %s", code, body)
	}
	rt.expect("POST", respPath("m7"), nil, "seven", 202, accepted)
	if r := <-m7; string(r.body) != "seven" || !r.report.ColdStart {
		t.Fatalf("m7 answer %s %+v", r.body, r.report)
	}
}

func TestInitErrorWithoutInvocationAnswersTheNextOne(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.CodeDir = sleeperDir(t)
	cfg.InitializationType = InitProvisioned
	in := start(t, cfg)
	rt := &rawRuntime{t: t, base: "http://" + in.envs[0].addr, c: &http.Client{}}
	eventually(t, 5*time.Second, "provisioned environment initialising", func() bool { return envState(in, 0) == stateInitializing })
	rt.expect("POST", pathInitErr, nil, `{"errorMessage":"bad config","errorType":"InitFail"}`, 202, accepted)
	eventually(t, 5*time.Second, "environment stopped", func() bool { return in.Status().Started == 0 })
	r := invoke(t, in, &invokeapi.Request{RequestID: "after"})
	if string(r.body) != `{"errorMessage":"bad config","errorType":"InitFail"}` {
		t.Fatalf("answer %s", r.body)
	}
}

func envState(in *Instance, i int) state {
	e := in.envs[i]
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

func TestInitTimeout(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.CodeDir = sleeperDir(t)
	cfg.InitTimeout = 300 * time.Millisecond
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{RequestID: "it"})
	want := `{"errorType":"Runtime.InitError","errorMessage":"RequestId: it Error: Init timed out after 0.30 seconds"}`
	if string(r.body) != want || r.resp.FunctionError != "Unhandled" {
		t.Fatalf("answer %s", r.body)
	}
	if st := in.Status(); st.Started != 0 || st.Busy != 0 {
		t.Fatalf("status after init timeout %+v", st)
	}
}

func TestRuntimeThatNeverPollsAgain(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.CodeDir = sleeperDir(t)
	cfg.Timeout = time.Second
	cfg.InitTimeout = 200 * time.Millisecond
	in := start(t, cfg)
	rt := &rawRuntime{t: t, base: "http://" + in.envs[0].addr, c: &http.Client{}}
	p1 := invokeAsync(in, &invokeapi.Request{RequestID: "p1"})
	eventually(t, 5*time.Second, "environment initialising", func() bool { return envState(in, 0) == stateInitializing })
	rt.do("GET", pathNext, nil, nil)
	rt.expect("POST", respPath("p1"), nil, "one", 202, accepted)
	if r := <-p1; string(r.body) != "one" {
		t.Fatalf("p1 answer %s", r.body)
	}
	// The runtime never polls again: the next invocation is not held forever.
	r := invoke(t, in, &invokeapi.Request{RequestID: "p2"})
	if typ, _ := errorBody(t, r.body); typ != "Sandbox.Timedout" {
		t.Fatalf("p2 answer %s", r.body)
	}
	eventually(t, 5*time.Second, "environment reset", func() bool { return envState(in, 0) == stateStopped })
}
