package instance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// testConfig is a config for the test function name with a private state dir.
func testConfig(t *testing.T, name string) *Config {
	t.Helper()
	return &Config{
		Function:     "fn-" + name,
		Runtime:      "provided.al2023",
		CodeDir:      testfn.Dir(t, name),
		StateDir:     t.TempDir(),
		MemoryMB:     128,
		Timeout:      10 * time.Second,
		Environments: 1,
		InvokeAddr:   "127.0.0.1:0",
		StdoutPath:   filepath.Join(t.TempDir(), "stdout.log"),
		StderrPath:   filepath.Join(t.TempDir(), "stderr.log"),
		StopGrace:    500 * time.Millisecond,
	}
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: os.Stderr})
}

// start runs an instance for cfg and stops it when the test ends.
func start(t *testing.T, cfg *Config) *Instance {
	t.Helper()
	return startWith(t, cfg, nil)
}

// startWith is start with prep applied to the instance before it starts.
func startWith(t *testing.T, cfg *Config, prep func(*Instance)) *Instance {
	t.Helper()
	in, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if prep != nil {
		prep(in)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := in.Stop(ctx); err != nil {
			t.Errorf("stopping instance: %v", err)
		}
	})
	return in
}

// result is a finished invocation.
type result struct {
	body   []byte
	resp   *invokeapi.Response
	report invokeapi.Report
}

func invoke(t *testing.T, in *Instance, req *invokeapi.Request) *result {
	t.Helper()
	r, err := tryInvoke(in, req)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return r
}

func tryInvoke(in *Instance, req *invokeapi.Request) (*result, error) {
	c := &invokeapi.Client{Secret: in.cfg.InvokeSecret}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, in.Addr(), req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &result{body: b, resp: resp, report: resp.Report()}, nil
}

func event(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// errorBody decodes a Lambda error JSON.
func errorBody(t *testing.T, b []byte) (typ, msg string) {
	t.Helper()
	var e struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return e.Type, e.Message
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileContains(path string, sub []byte) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, sub)
}

func isCode(err error, target *invokeapi.Error) bool { return errors.Is(err, target) }

var (
	io_ReadFull = io.ReadFull
	io_ReadAll  = io.ReadAll
)

func defaultClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }

func mustBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

// taskRoot is LAMBDA_TASK_ROOT as in's environments see it.
func taskRoot(in *Instance) string {
	if in.isolated {
		return "/var/task"
	}
	return in.cfg.CodeDir
}

// httpGate is a gate for internal/testfn/stream that an isolated function
// can reach: its URL answers 404 until open is called.
func httpGate(t *testing.T) (url string, open func()) {
	var opened atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !opened.Load() {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() { opened.Store(true) }
}

// bootstrapPID is the host pid of e's bootstrap: its process, or the child
// of its sandbox init.
func bootstrapPID(t *testing.T, e *env) int {
	t.Helper()
	e.mu.Lock()
	pid, viaInit := e.pgid, e.viaInit
	e.mu.Unlock()
	if !viaInit {
		return pid
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(strings.Fields(string(b) + " 0")[0]))
	if err != nil || child == 0 {
		t.Fatalf("no bootstrap under init %d: %q", pid, b)
	}
	return child
}
