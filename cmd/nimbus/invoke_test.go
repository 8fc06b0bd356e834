package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Item 21 of issue 11: `nimbus invoke --async` prints only the request id
// on stdout (rid=$(nimbus invoke --async fn) works); the hint goes to
// stderr. A synchronous invoke still prints the function's output.
func TestInvokeAsyncPrintsOnlyTheRequestID(t *testing.T) {
	const rid = "5f0c8a4e-2a43-4d5e-9a5e-1f2b3c4d5e6f"
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Amz-Invocation-Type")+" "+string(b))
		mu.Unlock()
		w.Header().Set("X-Amzn-Requestid", rid)
		if r.Header.Get("X-Amz-Invocation-Type") == "Event" {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		_, _ = w.Write([]byte(`{"echo":1}`))
	}))
	defer srv.Close()

	r := runCLI(t, nil, "invoke", "--async", "--endpoint", srv.URL, "--payload", `{"a":1}`, "hello")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if r.stdout != rid+"\n" {
		t.Fatalf("stdout %q, want only the request id", r.stdout)
	}
	if !strings.Contains(r.stderr, "queued "+rid+" (status 202)") || !strings.Contains(r.stderr, "nimbus invocations -id "+rid) {
		t.Fatalf("stderr %q lacks the hint", r.stderr)
	}

	r = runCLI(t, nil, "invoke", "--endpoint", srv.URL, "--payload", `{"b":2}`, "hello")
	if r.code != 0 || r.stdout != "{\"echo\":1}\n" {
		t.Fatalf("sync invoke: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		`POST /2015-03-31/functions/hello/invocations Event {"a":1}`,
		`POST /2015-03-31/functions/hello/invocations  {"b":2}`, // the SDK omits the default type,
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("gateway saw\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}
