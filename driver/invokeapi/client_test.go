package invokeapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The default client goes straight to its transport: an instance answer is
// read as it is (a redirect is an error answer, never followed), and the
// headers and body reach the instance.
func TestInvokeCallsTheTransportDirectly(t *testing.T) {
	var followed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case PathInvoke:
			if r.Header.Get(HeaderRequestID) == "redirect" {
				http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
				return
			}
			b, _ := io.ReadAll(r.Body)
			w.Header().Set(HeaderRequestID, r.Header.Get(HeaderRequestID))
			_, _ = w.Write(b)
		default:
			followed.Add(1)
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c := &Client{}

	resp, err := c.Invoke(context.Background(), addr, &Request{Payload: []byte(`{"a":1}`), RequestID: "r-1"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `{"a":1}` || resp.RequestID != "r-1" {
		t.Fatalf("answer %q, request id %q", b, resp.RequestID)
	}

	_, err = c.Invoke(context.Background(), addr, &Request{Payload: []byte(`{}`), RequestID: "redirect"})
	var ie *Error
	if !errors.As(err, &ie) || !strings.Contains(ie.Message, "HTTP 307") || followed.Load() != 0 {
		t.Fatalf("a redirect answered %v and was followed %d times; want an HTTP 307 error, not followed", err, followed.Load())
	}
}

// A caller's http.Client with its own policy (here a timeout) is used as
// the caller set it up, through Do.
func TestInvokeKeepsACallersClientPolicy(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := &Client{HTTP: &http.Client{Transport: NewTransport(), Timeout: 50 * time.Millisecond}}
	_, err := c.Invoke(context.Background(), strings.TrimPrefix(srv.URL, "http://"), &Request{Payload: []byte(`{}`)})
	if err == nil || !strings.Contains(err.Error(), "Client.Timeout") {
		t.Fatalf("invoke through a client with a 50 ms timeout against a stalled instance: %v", err)
	}
}

// BenchmarkInvokeClient is one invoke against a loopback server that
// answers at once, through the default client (its transport's RoundTrip)
// and, as the baseline in the same run, through http.Client.Do on the same
// kind of transport (a redirect policy makes the client take Do).
func BenchmarkInvokeClient(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	req := &Request{Payload: []byte(`{"message":"hello from the benchmark","n":42}`), RequestID: "r", InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:echo"}
	run := func(b *testing.B, c *Client) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Invoke(context.Background(), addr, req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("roundtrip", func(b *testing.B) { run(b, &Client{}) })
	b.Run("client-do", func(b *testing.B) {
		run(b, &Client{HTTP: &http.Client{Transport: NewTransport(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}})
	})
}
