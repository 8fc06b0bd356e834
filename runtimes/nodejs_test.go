package runtimes

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const nodeRuntime20 = "nodejs20.x"

// One process serves many invocations, survives bad input and exits when
// /next fails.
func TestNodeInvocationsInOneProcess(t *testing.T) {
	t.Parallel()
	b := launch(t, nodeRuntime20, "nodejs", "", "index.sync")

	b.invokeKeepsState(t, nil)

	p := b.invoke(t, invocation{Payload: "not json"})
	if e := p.errorJSON(t); p.Kind != "error" || e["errorType"] != "SyntaxError" {
		t.Fatalf("bad event: got %s %s", p.Kind, p.Body)
	}
	p = b.invoke(t, invocation{ClientContext: "{broken"})
	if e := p.errorJSON(t); p.Kind != "error" || !strings.HasPrefix(e["errorMessage"].(string), "Cannot parse ClientContext as json: ") {
		t.Fatalf("bad client context: got %s %s", p.Kind, p.Body)
	}
	b.survivesTransport(t)
}

func TestNodeHandlerStyles(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, handler, want string
	}{
		{"async", "index.asyncHandler", `{"async":true,"event":{"k":1}}`},
		{"callback", "index.callback", `{"callback":true}`},
		{"sync-undefined", "index.undef", `null`},
		{"nested-property", "index.nested.deeper.handler", `"nested"`},
		{"esm-mjs", "esm.handler", `{"kind":"esm","requestId":"req-style"}`},
		{"cjs", "plain.handler", `"cjs"`},
		{"esm-package-type-module", "esmpkg/app.handler", `"esm package"`},
		{"callback-no-wait", "index.noWait", `"early"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := launch(t, nodeRuntime20, "nodejs", "", tc.handler)
			wantResponse(t, b.invoke(t, invocation{ID: "req-style", Payload: `{"k":1}`}), tc.want)
			// And again: the loop continues after each style.
			wantResponse(t, b.invoke(t, invocation{ID: "req-style", Payload: `{"k":1}`}), tc.want)
		})
	}
}

// With callbackWaitsForEmptyEventLoop (the default) the response waits until
// the handler's pending timer has run.
func TestNodeCallbackWaitsForEmptyEventLoop(t *testing.T) {
	t.Parallel()
	b := launch(t, nodeRuntime20, "nodejs", "", "index.waits")
	marker := filepath.Join(t.TempDir(), "marker")
	wantResponse(t, b.invoke(t, invocation{Payload: `{"marker":"` + marker + `"}`}), `"waited"`)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("response posted before the event loop was empty: %v", err)
	}
}

func TestNodeAsyncHandlerThatNeverSettles(t *testing.T) {
	t.Parallel()
	b := launch(t, nodeRuntime20, "nodejs", "", "index.neverSettles")
	p := b.invoke(t, invocation{})
	if e := p.errorJSON(t); p.Kind != "error" || e["errorType"] != "Runtime.NodeJsExit" {
		t.Fatalf("got %s %s, want Runtime.NodeJsExit", p.Kind, p.Body)
	}
}

func TestNodeErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		handler, errorType, message string
	}{
		{"index.throws", "TypeError", "bad type"},
		{"index.rejects", "Error", "async boom"},
		{"index.callbackError", "Error", "callback boom"},
		{"index.contextFail", "RangeError", "context fail"},
		{"index.stringError", "string", "plain failure"},
		{"index.circular", "Error", "Unable to stringify response body: "},
	}
	index, _ := filepath.Abs("testdata/nodejs/index.js")
	for _, tc := range cases {
		t.Run(tc.handler, func(t *testing.T) {
			t.Parallel()
			b := launch(t, nodeRuntime20, "nodejs", "", tc.handler)
			for i := range 2 { // the process keeps serving after an error
				p := b.invoke(t, invocation{})
				if p.Kind != "error" {
					t.Fatalf("invocation %d: got %s %s, want error", i, p.Kind, p.Body)
				}
				e := p.errorJSON(t)
				msg, _ := e["errorMessage"].(string)
				if len(e) != 3 || e["errorType"] != tc.errorType || !strings.HasPrefix(msg, tc.message) {
					t.Fatalf("error JSON %s, want {errorType %s, errorMessage %q…, trace}", p.Body, tc.errorType, tc.message)
				}
				trace, ok := e["trace"].([]any)
				if !ok {
					t.Fatalf("trace is not a list: %s", p.Body)
				}
				if tc.errorType == "string" {
					if len(trace) != 0 {
						t.Errorf("trace for a non-error value: %s", p.Body)
					}
					continue
				}
				// The stack's first line is "<name>: <first line of message>".
				head := tc.errorType + ": " + strings.SplitN(msg, "\n", 2)[0]
				if first, _ := trace[0].(string); first != head {
					t.Errorf("trace[0] = %q, want %q", first, head)
				}
				if tc.handler != "index.circular" && !strings.Contains(string(p.Body), index) {
					t.Errorf("trace does not point into the handler file %s: %s", index, p.Body)
				}
			}
			b.waitOutput(t, "\tERROR\tInvoke Error \t{")
		})
	}
}

func TestNodeUnhandledRejection(t *testing.T) {
	t.Parallel()
	b := launch(t, nodeRuntime20, "nodejs", "", "index.unhandled")
	p := b.invoke(t, invocation{})
	e := p.errorJSON(t)
	if p.Kind != "error" || e["errorType"] != "Runtime.UnhandledPromiseRejection" || e["errorMessage"] != "Error: floating" {
		t.Fatalf("got %s %s", p.Kind, p.Body)
	}
	if code := b.waitExit(t); code != 128 {
		t.Errorf("exit code %d, want 128 as Lambda's runtime", code)
	}
}

func TestNodeInitErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		handler, errorType, message string
	}{
		{"index.missing", "Runtime.HandlerNotFound", "index.missing is undefined or not exported"},
		{"index.notFn", "Runtime.HandlerNotFound", "index.notFn is not a function"},
		{"nosuch.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'nosuch'"},
		{"badimport.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'nimbus-no-such-module'"},
		{"syntax.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: "},
		{"initthrows.handler", "RangeError", "init boom"},
		{"nodot", "Runtime.MalformedHandlerName", "Bad handler"},
		{"../nodejs/index.sync", "Runtime.MalformedHandlerName", "'../nodejs/index.sync' is not a valid handler name."},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.handler, "/", "_"), func(t *testing.T) {
			t.Parallel()
			b := launch(t, nodeRuntime20, "nodejs", "", tc.handler)
			p := b.nextPost(t)
			if p.Kind != "init-error" {
				t.Fatalf("got %s %s, want init-error", p.Kind, p.Body)
			}
			e := p.errorJSON(t)
			msg, _ := e["errorMessage"].(string)
			if e["errorType"] != tc.errorType || !strings.HasPrefix(msg, tc.message) {
				t.Errorf("init error %s, want %s %q…", p.Body, tc.errorType, tc.message)
			}
			if _, ok := e["trace"].([]any); !ok {
				t.Errorf("trace missing or not a list: %s", p.Body)
			}
			if code := b.waitExit(t); code == 0 {
				t.Errorf("exit code 0 after an init error")
			}
		})
	}
}

func TestNodeContext(t *testing.T) {
	t.Parallel()
	b := launch(t, nodeRuntime20, "nodejs", "", "index.context")
	trace := "Root=1-6744c7a1-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=bbbbbbbbbbbbbbbb;Sampled=0"
	p := b.invoke(t, invocation{
		ID:            "req-ctx",
		Deadline:      time.Now().Add(90 * time.Second),
		TraceID:       trace,
		ClientContext: `{"client":{"installation_id":"inst-1"},"custom":{"k":"v"},"env":{"platform":"linux"}}`,
		Identity:      `{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}`,
	})
	if p.Kind != "response" {
		t.Fatalf("got %s %s", p.Kind, p.Body)
	}
	got := decodeJSON(t, p.Body)
	want := map[string]any{
		"awsRequestId":                   "req-ctx",
		"invokedFunctionArn":             testARN,
		"functionName":                   "fn-under-test",
		"functionVersion":                "7",
		"memoryLimitInMB":                "256",
		"logGroupName":                   "/aws/lambda/fn-under-test",
		"logStreamName":                  "2026/11/25/[7]0123456789abcdef",
		"callbackWaitsForEmptyEventLoop": true,
		"traceId":                        trace,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	cc, _ := got["clientContext"].(map[string]any)
	client, _ := cc["client"].(map[string]any)
	custom, _ := cc["custom"].(map[string]any)
	if client["installation_id"] != "inst-1" || custom["k"] != "v" {
		t.Errorf("clientContext = %v", got["clientContext"])
	}
	if id, _ := got["identity"].(map[string]any); id["cognitoIdentityId"] != "id-1" || id["cognitoIdentityPoolId"] != "pool-1" {
		t.Errorf("identity = %v", got["identity"])
	}
	if ms, _ := got["remainingMs"].(float64); ms <= 0 || ms > 90000 {
		t.Errorf("remaining time %v ms, want within (0, 90000]", got["remainingMs"])
	}

	p = b.invoke(t, invocation{Deadline: time.Now().Add(-time.Second)})
	got = decodeJSON(t, p.Body)
	if got["remainingMs"] != float64(0) || got["clientContext"] != nil || got["identity"] != nil {
		t.Errorf("second context: %s", p.Body)
	}
}

func TestNodeLayerAndLogging(t *testing.T) {
	t.Parallel()
	b := launch(t, nodeRuntime20, "nodejs", "nodejs_layer/node_modules", "index.layered")
	wantResponse(t, b.invoke(t, invocation{}), `"from layer"`)

	b = launch(t, nodeRuntime20, "nodejs", "", "index.log")
	wantResponse(t, b.invoke(t, invocation{ID: "req-log"}), `"logged"`)
	b.waitOutput(t, "Z\treq-log\tINFO\thello world\n")
	b.waitOutput(t, "Z\treq-log\tERROR\tmulti\rline\n")
}

// Handlers wrapped in awslambda.streamifyResponse send their response as a
// chunked POST in streaming mode, each write as it happens.
func TestNodeResponseStreaming(t *testing.T) {
	t.Parallel()
	b := launch(t, nodeRuntime20, "nodejs", "", "stream.prelude")
	for i := range 2 { // the loop goes on after a streamed response
		gate := filepath.Join(t.TempDir(), "gate")
		id := fmt.Sprintf("req-stream-%d", i)
		b.api.events <- invocation{ID: id, Payload: `{"gate":"` + gate + `"}`}
		// The prelude and the first line arrive while the handler waits.
		var got []byte
		for !bytes.Contains(got, []byte("first\n")) {
			select {
			case c := <-b.api.chunks:
				got = append(got, c...)
			case <-time.After(waitTimeout):
				t.Fatalf("no first line before the handler finished; got %q", got)
			}
		}
		if bytes.Contains(got, []byte("second")) {
			t.Fatalf("second line before the gate opened: %q", got)
		}
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		p := b.nextPost(t)
		if p.Kind != "response" || p.ID != id {
			t.Fatalf("got %s for %s", p.Kind, p.ID)
		}
		if m := p.Header.Get("Lambda-Runtime-Function-Response-Mode"); m != "streaming" {
			t.Errorf("response mode %q", m)
		}
		if ct := p.Header.Get("Content-Type"); ct != "application/vnd.awslambda.http-integration-response" {
			t.Errorf("content type %q", ct)
		}
		want := `{"statusCode":201,"headers":{"content-type":"text/plain","x-request-id":"` + id + `"},"cookies":["a=1"]}` +
			"\x00\x00\x00\x00\x00\x00\x00\x00first\nsecond\n"
		if string(p.Body) != want {
			t.Errorf("body %q, want %q", p.Body, want)
		}
		if et := p.Trailer.Get("Lambda-Runtime-Function-Error-Type"); et != "" {
			t.Errorf("error trailer %q on a good stream", et)
		}
		for len(b.api.chunks) > 0 {
			<-b.api.chunks
		}
	}
}

func TestNodeResponseStreamingEndsAndFails(t *testing.T) {
	t.Parallel()
	t.Run("returns without end", func(t *testing.T) {
		t.Parallel()
		b := launch(t, nodeRuntime20, "nodejs", "", "stream.plain")
		p := b.invoke(t, invocation{})
		if p.Kind != "response" || string(p.Body) != "ab" || p.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("got %s %q (%s)", p.Kind, p.Body, p.Header.Get("Content-Type"))
		}
	})
	t.Run("fails before writing", func(t *testing.T) {
		t.Parallel()
		b := launch(t, nodeRuntime20, "nodejs", "", "stream.failsEarly")
		p := b.invoke(t, invocation{})
		if e := p.errorJSON(t); p.Kind != "error" || e["errorType"] != "TypeError" || e["errorMessage"] != "before any byte" {
			t.Fatalf("got %s %s, want an ordinary TypeError post", p.Kind, p.Body)
		}
		if p := b.invoke(t, invocation{}); p.Kind != "error" { // and the loop goes on
			t.Fatalf("second invocation: got %s %s", p.Kind, p.Body)
		}
	})
	t.Run("fails midway", func(t *testing.T) {
		t.Parallel()
		b := launch(t, nodeRuntime20, "nodejs", "", "stream.failsMidway")
		p := b.invoke(t, invocation{})
		if p.Kind != "response" || string(p.Body) != "partial" {
			t.Fatalf("got %s %q", p.Kind, p.Body)
		}
		if et := p.Trailer.Get("Lambda-Runtime-Function-Error-Type"); et != "RangeError" {
			t.Fatalf("error type trailer %q, want RangeError", et)
		}
		raw, err := base64.StdEncoding.DecodeString(p.Trailer.Get("Lambda-Runtime-Function-Error-Body"))
		if err != nil {
			t.Fatal(err)
		}
		if e := decodeJSON(t, raw); e["errorType"] != "RangeError" || e["errorMessage"] != "midway" {
			t.Fatalf("error body trailer %s", raw)
		}
	})
}
