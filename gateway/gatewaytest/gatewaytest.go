package gatewaytest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// Handler answers one invocation inside the double. The default echoes the
// payload as application/json.
type Handler func(w http.ResponseWriter, r *http.Request, payload []byte)

// Echo is the default handler.
func Echo(w http.ResponseWriter, _ *http.Request, payload []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

// Instance is an in-process double of an instance's invoke endpoint.
type Instance struct {
	Function, Version string
	Envs              int
	Secret            string
	handler           Handler
	srv               *httptest.Server

	mu          sync.Mutex
	busy        int
	used        int // environments that served at least once (for cold starts)
	invocations int
	maxBusy     int
	requests    []*http.Request
}

// StartInstance serves a double with envs environments; handler nil echoes.
func StartInstance(tb testing.TB, function, version string, envs int, secret string, handler Handler) *Instance {
	tb.Helper()
	if handler == nil {
		handler = Echo
	}
	in := &Instance{Function: function, Version: version, Envs: envs, Secret: secret, handler: handler}
	mux := http.NewServeMux()
	mux.HandleFunc(invokeapi.PathInvoke, in.invoke)
	mux.HandleFunc(invokeapi.PathStatus, in.status)
	in.srv = httptest.NewServer(mux)
	tb.Cleanup(in.srv.Close)
	return in
}

// Addr is the endpoint's host:port.
func (in *Instance) Addr() string { return strings.TrimPrefix(in.srv.URL, "http://") }

// Close stops serving (later calls fail at the transport).
func (in *Instance) Close() { in.srv.CloseClientConnections(); in.srv.Close() }

// Invocations counts invocations that ran.
func (in *Instance) Invocations() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.invocations
}

// Busy counts running invocations.
func (in *Instance) Busy() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.busy
}

// MaxBusy is the most invocations that ran at once.
func (in *Instance) MaxBusy() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.maxBusy
}

// LastRequest returns the headers of the last invocation request.
func (in *Instance) LastRequest() *http.Request {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.requests) == 0 {
		return nil
	}
	return in.requests[len(in.requests)-1]
}

func (in *Instance) authorized(r *http.Request) bool {
	return in.Secret == "" || r.Header.Get(invokeapi.HeaderAuthorization) == "Bearer "+in.Secret
}

func (in *Instance) invoke(w http.ResponseWriter, r *http.Request) {
	if !in.authorized(r) {
		invokeapi.WriteError(w, invokeapi.CodeUnauthorized, "bad secret")
		return
	}
	payload, _ := io.ReadAll(r.Body)
	in.mu.Lock()
	if in.busy >= in.Envs {
		in.mu.Unlock()
		invokeapi.WriteError(w, invokeapi.CodeNoIdleEnvironment, "every environment is busy")
		return
	}
	in.busy++
	in.maxBusy = max(in.maxBusy, in.busy)
	cold := in.used < in.Envs && in.used < in.busy
	if cold {
		in.used++
	}
	in.requests = append(in.requests, r.Clone(context.Background()))
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.busy--
		in.invocations++
		in.mu.Unlock()
	}()
	h := w.Header()
	h.Set(invokeapi.HeaderExecutedVersion, in.Version)
	h.Set(invokeapi.HeaderRequestID, r.Header.Get(invokeapi.HeaderRequestID))
	h.Set(invokeapi.HeaderDurationMs, "1.5")
	h.Set(invokeapi.HeaderBilledMs, "2")
	if cold {
		h.Set(invokeapi.HeaderColdStart, "true")
		h.Set(invokeapi.HeaderInitMs, "12.5")
	}
	if r.Header.Get(invokeapi.HeaderLogType) == invokeapi.LogTypeTail {
		h.Set(invokeapi.HeaderLogResult, base64.StdEncoding.EncodeToString([]byte("START RequestId: "+r.Header.Get(invokeapi.HeaderRequestID)+"\nlog line\n")))
	}
	in.handler(w, r, payload)
}

func (in *Instance) status(w http.ResponseWriter, r *http.Request) {
	if !in.authorized(r) {
		invokeapi.WriteError(w, invokeapi.CodeUnauthorized, "bad secret")
		return
	}
	in.mu.Lock()
	st := invokeapi.Status{Function: in.Function, Version: in.Version, Max: in.Envs, Started: in.used,
		Busy: in.busy, Idle: in.used - in.busy, Invocations: uint64(in.invocations)}
	in.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&st)
}

// Discovery returns the double as a discovery instance.
func (in *Instance) Discovery(id, group string) discovery.Instance {
	return discovery.Instance{ID: id, Address: in.Addr(), Function: in.Function, Version: in.Version, Group: group}
}

// Source is a settable discovery.Source.
type Source struct {
	mu    sync.Mutex
	sets  map[string][]discovery.Instance
	calls int
}

// NewSource returns an empty source.
func NewSource() *Source { return &Source{sets: map[string][]discovery.Instance{}} }

// Set replaces a version's instances.
func (s *Source) Set(function, version string, list ...discovery.Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sets[function+"\x00"+version] = append([]discovery.Instance(nil), list...)
}

// Add appends one instance.
func (s *Source) Add(in discovery.Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := in.Function + "\x00" + in.Version
	s.sets[k] = append(s.sets[k], in)
}

// Instances implements discovery.Source.
func (s *Source) Instances(_ context.Context, function, version string) ([]discovery.Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return append([]discovery.Instance(nil), s.sets[function+"\x00"+version]...), nil
}

// Scaler records OnDemand calls and runs an optional reaction.
type Scaler struct {
	mu    sync.Mutex
	calls []ScaleCall
	// React, when set, runs on each call (e.g. start an instance double).
	React func(function, version string, want int) error
}

// ScaleCall is one recorded OnDemand call.
type ScaleCall struct {
	Function, Version string
	Want              int
}

// OnDemand implements router.Scaler.
func (s *Scaler) OnDemand(_ context.Context, function, version string, want int) error {
	s.mu.Lock()
	s.calls = append(s.calls, ScaleCall{function, version, want})
	react := s.React
	s.mu.Unlock()
	if react != nil {
		return react(function, version, want)
	}
	return nil
}

// Calls returns the recorded calls.
func (s *Scaler) Calls() []ScaleCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ScaleCall(nil), s.calls...)
}

// Last returns the last wanted count (-1 when never called).
func (s *Scaler) Last() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return -1
	}
	return s.calls[len(s.calls)-1].Want
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(tb testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %s: %s", within, fmt.Sprintf(format, args...))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SortedIDs lists instance ids (for stable assertions).
func SortedIDs(list []discovery.Instance) []string {
	out := make([]string, len(list))
	for i, in := range list {
		out[i] = in.ID
	}
	sort.Strings(out)
	return out
}

// Logger returns a debug-level logger, named after the test, that writes
// into tb's log until the test ends. Background loops (watches, resyncs)
// may still log while they stop; testing panics on a Log after the test
// has completed, so those lines are dropped.
func Logger(tb testing.TB) hclog.Logger {
	w := &testWriter{tb: tb}
	tb.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return hclog.New(&hclog.LoggerOptions{Name: tb.Name(), Level: hclog.Debug, Output: w})
}

type testWriter struct {
	tb   testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// LogBuffer is a log sink tests read while other goroutines write to it
// (a logger's Output).
type LogBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
