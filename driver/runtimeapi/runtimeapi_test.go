package runtimeapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingBroker is a test double of the instance: it hands out one fixed
// invocation and records what the handlers passed it.
type recordingBroker struct {
	mu        sync.Mutex
	inv       *Invocation
	body      string
	trailType string
	trailBody string
	respErr   error
	errRep    *ErrorReport
	ext       string
}

func (b *recordingBroker) Next(ctx context.Context) (*Invocation, error) { return b.inv, nil }

func (b *recordingBroker) Respond(id string, r *Response) error {
	if id != b.inv.RequestID {
		return ErrInvalidRequestID
	}
	data, err := io.ReadAll(r.Body)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.respErr = err
	if err != nil {
		return err
	}
	b.body = string(data)
	b.trailType, b.trailBody = r.Trailer()
	return nil
}

func (b *recordingBroker) Error(id string, e *ErrorReport) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errRep = e
	return &TransitionError{From: "Done", To: "Done"}
}

func (b *recordingBroker) InitError(e *ErrorReport) error { return ErrShuttingDown }

func (b *recordingBroker) RegisterExtension(name string) error {
	b.ext = name
	return nil
}

func newTestServer(t *testing.T, b *recordingBroker) *httptest.Server {
	done := make(chan struct{})
	s := httptest.NewServer(NewServer(b, FunctionInfo{FunctionName: "f", FunctionVersion: "$LATEST", Handler: "h"}, func() string { return "ext-1" }, done))
	t.Cleanup(func() { close(done); s.Close() })
	return s
}

func TestNextHeaders(t *testing.T) {
	deadline := time.UnixMilli(1700000000123)
	b := &recordingBroker{inv: &Invocation{RequestID: "r1", Deadline: deadline, InvokedARN: "arn:x", TraceID: "Root=1", CognitoIdentity: `{"cognitoIdentityId":"c"}`, Payload: []byte(`{"a":1}`)}}
	s := newTestServer(t, b)
	resp, err := http.Get(s.URL + PathNext)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := map[string]string{
		HeaderRequestID: "r1", HeaderDeadlineMs: "1700000000123", HeaderInvokedARN: "arn:x", HeaderTraceID: "Root=1",
		HeaderCognitoIdentity: `{"cognitoIdentityId":"c"}`, "Content-Type": "application/json",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{HeaderClientContext, HeaderTenantID} {
		if _, ok := resp.Header[k]; ok {
			t.Errorf("empty %s sent", k)
		}
	}
	if resp.StatusCode != 200 || string(body) != `{"a":1}` {
		t.Fatalf("next = %d %s", resp.StatusCode, body)
	}
}

func TestChunkedResponseWithTrailers(t *testing.T) {
	b := &recordingBroker{inv: &Invocation{RequestID: "r1"}}
	s := newTestServer(t, b)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", s.URL+"/2018-06-01/runtime/invocation/r1/response", pr)
	req.Trailer = http.Header{HeaderErrorType: nil, HeaderErrorBody: nil}
	go func() {
		_, _ = io.WriteString(pw, "part1-")
		_, _ = io.WriteString(pw, "part2")
		req.Trailer.Set(HeaderErrorType, "errorString")
		req.Trailer.Set(HeaderErrorBody, "e30=")
		pw.Close()
	}()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 || string(got) != `{"status":"OK"}` {
		t.Fatalf("response = %d %s", resp.StatusCode, got)
	}
	if b.body != "part1-part2" || b.trailType != "errorString" || b.trailBody != "e30=" {
		t.Fatalf("broker saw %q %q %q", b.body, b.trailType, b.trailBody)
	}
}

func TestStatusMapping(t *testing.T) {
	b := &recordingBroker{inv: &Invocation{RequestID: "r1"}}
	s := newTestServer(t, b)
	post := func(path string, hdr map[string]string, body string) (int, string) {
		req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(got))
	}
	cases := []struct {
		path   string
		hdr    map[string]string
		body   string
		status int
		want   string
	}{
		{"/2018-06-01/runtime/invocation/other/response", nil, "x", 400, `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}`},
		{"/2018-06-01/runtime/invocation/r1/error", map[string]string{HeaderErrorType: "Function.X"}, `{"k":1}`, 403,
			`{"errorMessage":"State transition from Done to Done failed for runtime. Error: State transition is not allowed","errorType":"InvalidStateTransition"}`},
		{"/2018-06-01/runtime/invocation/r1/error", nil, strings.Repeat("e", MaxPayload+1), 413,
			`{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}`},
		{"/2018-06-01/runtime/init/error", nil, "{}", 500, ""},
		{"/2020-01-01/extension/register", nil, "{}", 400, ""},
	}
	for _, c := range cases {
		status, got := post(c.path, c.hdr, c.body)
		if status != c.status || (c.want != "" && got != c.want) {
			t.Errorf("POST %s = %d %s, want %d %s", c.path, status, got, c.status, c.want)
		}
	}
	if b.errRep == nil || string(b.errRep.Body) != `{"k":1}` || b.errRep.Type != "Function.X" {
		t.Fatalf("error report %+v", b.errRep)
	}
	req, _ := http.NewRequest("POST", s.URL+PathExtensionRegister, strings.NewReader(`{"events":null}`))
	req.Header.Set(HeaderExtensionName, "GoLangEnableSIGTERM")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(HeaderExtensionID) != "ext-1" || b.ext != "GoLangEnableSIGTERM" ||
		!strings.Contains(string(body), `"functionName":"f"`) {
		t.Fatalf("register = %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

func TestTruncationIsReported(t *testing.T) {
	r := truncationReader{io.MultiReader(strings.NewReader("abc"), errReader{io.ErrUnexpectedEOF})}
	_, err := io.ReadAll(r)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
