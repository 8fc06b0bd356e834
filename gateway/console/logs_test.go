package console_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// A live tail ends when the gateway stops the console, so shutdown does
// not wait for browsers to leave.
func TestLiveTailEndsOnStop(t *testing.T) {
	listed := make(chan struct{}, 10)
	tail := console.NewLogTail(console.LogTailConfig{
		Instances: func(context.Context, string) ([]discovery.Instance, error) {
			listed <- struct{}{}
			return nil, nil
		},
		Client: func(string, string) *invokeapi.Client { return &invokeapi.Client{} },
	})
	c := console.New(console.Options{Logs: tail})
	mux := http.NewServeMux()
	for _, rt := range c.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/nimbus/v1/functions/fn/logs?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ": tailing fn") {
		t.Fatalf("first line %q", sc.Text())
	}
	select {
	case <-listed:
	case <-time.After(10 * time.Second):
		t.Fatal("the tail never listed the function's instances")
	}
	c.Stop()
	ended := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the live tail outlived Stop")
	}
}

// startInstance runs a real instance of the testfn "logs" function.
func startInstance(t *testing.T, version, secret string) *instance.Instance {
	t.Helper()
	in, err := instance.New(&instance.Config{
		Function: "talker", Version: version, Runtime: "provided.al2023", CodeDir: testfn.Dir(t, "logs"),
		StateDir: t.TempDir(), MemoryMB: 128, Timeout: 10 * time.Second, Environments: 1,
		InvokeAddr: "127.0.0.1:0", InvokeSecret: secret,
		StdoutPath: filepath.Join(t.TempDir(), "stdout.log"), StderrPath: filepath.Join(t.TempDir(), "stderr.log"),
		StopGrace: 500 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = in.Stop(ctx)
	})
	return in
}

// The tail fans in every instance of the function (each version's with
// its own secret), recent and live.
func TestTailFansInEveryInstance(t *testing.T) {
	secrets := map[string]string{"$LATEST": "secret-latest", "1": "secret-one"}
	a := startInstance(t, "$LATEST", secrets["$LATEST"])
	b := startInstance(t, "1", secrets["1"])
	insts := []discovery.Instance{
		{ID: "a", Address: a.Addr(), Function: "talker", Version: "$LATEST"},
		{ID: "b", Address: b.Addr(), Function: "talker", Version: "1"},
	}
	tail := console.NewLogTail(console.LogTailConfig{
		Instances: func(context.Context, string) ([]discovery.Instance, error) { return insts, nil },
		Client:    func(_, v string) *invokeapi.Client { return &invokeapi.Client{Secret: secrets[v]} },
	})
	invoke := func(in *instance.Instance, version, id, say string) {
		t.Helper()
		c := &invokeapi.Client{Secret: secrets[version]}
		resp, err := c.Invoke(context.Background(), in.Addr(), &invokeapi.Request{RequestID: id, Payload: []byte(`{"say":"` + say + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	invoke(a, "$LATEST", "id-a", "from-a")
	invoke(b, "1", "id-b", "from-b")
	find := func(evs []console.LogEvent, inst, version, msg string) bool {
		for _, e := range evs {
			if e.Instance == inst && e.Version == version && e.Message == msg {
				return true
			}
		}
		return false
	}
	var evs []console.LogEvent
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		var err error
		evs, err = tail.Recent(context.Background(), "talker", time.Time{}, "")
		return err == nil && find(evs, "a", "$LATEST", "from-a id-a") && find(evs, "b", "1", "from-b id-b")
	}, "recent lines of both instances: %+v", &evs)
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.Before(evs[i-1].Time) {
			t.Errorf("events out of order at %d: %v after %v", i, evs[i].Time, evs[i-1].Time)
		}
	}
	only, _ := tail.Recent(context.Background(), "talker", time.Time{}, "id-b")
	for _, e := range only {
		if e.RequestID != "id-b" || e.Instance != "b" {
			t.Errorf("filtered by id-b: %+v", e)
		}
	}
	if len(only) < 4 {
		t.Errorf("filtered by id-b: %d events, want START, the line, END and REPORT", len(only))
	}

	// Live: new lines of both instances arrive.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan console.LogEvent, 100)
	done := make(chan struct{})
	go func() { tail.Follow(ctx, "talker", evs[len(evs)-1].Time, "", ch); close(done) }()
	invoke(a, "$LATEST", "id-a2", "live-a")
	invoke(b, "1", "id-b2", "live-b")
	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for !seen["live-a id-a2"] || !seen["live-b id-b2"] {
		select {
		case e := <-ch:
			if e.RequestID != "id-a2" && e.RequestID != "id-b2" {
				t.Errorf("live tail repeated an old line: %+v", e)
			}
			seen[e.Message] = true
		case <-timeout:
			t.Fatalf("live lines: %v", seen)
		}
	}
	cancel()
	<-done
}

// The gateway keeps the recent lines of a function it saw invoked: once
// its instance is stopped and gone from discovery, the lines still read
// back (recent and at the start of a live tail), and only once.
func TestKeptLinesOutliveTheirInstance(t *testing.T) {
	const secret = "secret-kept"
	a := startInstance(t, "$LATEST", secret)
	var mu sync.Mutex
	insts := []discovery.Instance{{ID: "gone", Address: a.Addr(), Function: "talker", Version: "$LATEST"}}
	tail := console.NewLogTail(console.LogTailConfig{
		Instances: func(context.Context, string) ([]discovery.Instance, error) {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(insts), nil
		},
		Client: func(string, string) *invokeapi.Client { return &invokeapi.Client{Secret: secret} },
		Rescan: 100 * time.Millisecond,
	})
	t.Cleanup(tail.Close)
	c := &invokeapi.Client{Secret: secret}
	resp, err := c.Invoke(context.Background(), a.Addr(), &invokeapi.Request{RequestID: "id-gone", Payload: []byte(`{"say":"before-stop"}`)})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The gateway observes the invocation (as metrics.Observer) once it
	// has ended; the keeper reads the lines back from the instance's ring.
	tail.Invocation("talker", "$LATEST", false, time.Millisecond, 0, true)
	has := func(evs []console.LogEvent, msg string) int {
		n := 0
		for _, e := range evs {
			if e.Message == msg && e.RequestID == "id-gone" && e.Instance == "gone" {
				n++
			}
		}
		return n
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		kept := tail.Kept("talker")
		report := false
		for _, e := range kept {
			report = report || strings.HasPrefix(e.Message, "REPORT RequestId: id-gone")
		}
		return has(kept, "before-stop id-gone") == 1 && report
	}, "the invocation's line and REPORT kept")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	insts = nil
	mu.Unlock()
	evs, err := tail.Recent(context.Background(), "talker", time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if has(evs, "before-stop id-gone") != 1 {
		t.Fatalf("recent lines after the instance stopped: %+v", evs)
	}
	var report bool
	for _, e := range evs {
		report = report || strings.HasPrefix(e.Message, "REPORT RequestId: id-gone")
	}
	if !report {
		t.Errorf("the REPORT line of the gone instance's invocation is not kept: %+v", evs)
	}
	if only, _ := tail.Recent(context.Background(), "talker", time.Time{}, "other-id"); len(only) != 0 {
		t.Errorf("the request id filter let through kept lines: %+v", only)
	}

	// A live tail starts with the kept lines.
	fctx, fcancel := context.WithCancel(context.Background())
	defer fcancel()
	ch := make(chan console.LogEvent, 100)
	done := make(chan struct{})
	go func() { tail.Follow(fctx, "talker", time.Time{}, "id-gone", ch); close(done) }()
	select {
	case e := <-ch:
		if e.RequestID != "id-gone" || e.Instance != "gone" {
			t.Errorf("first line of the live tail: %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the live tail sent none of the kept lines")
	}
	fcancel()
	<-done
}

// Keeping is bounded: lines per function and functions kept.
func TestKeptLinesAreBounded(t *testing.T) {
	const secret = "secret-bound"
	a := startInstance(t, "$LATEST", secret)
	tail := console.NewLogTail(console.LogTailConfig{
		Instances: func(_ context.Context, fn string) ([]discovery.Instance, error) {
			return []discovery.Instance{{ID: "i-" + fn, Address: a.Addr(), Function: "talker", Version: "$LATEST"}}, nil
		},
		Client:        func(string, string) *invokeapi.Client { return &invokeapi.Client{Secret: secret} },
		Keep:          6,
		KeepFunctions: 1,
	})
	t.Cleanup(tail.Close)
	c := &invokeapi.Client{Secret: secret}
	for i := range 4 {
		resp, err := c.Invoke(context.Background(), a.Addr(), &invokeapi.Request{RequestID: fmt.Sprintf("id-%d", i), Payload: []byte(`{"say":"n"}`)})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	tail.Watch("one")
	// Four invocations log 16 lines; the newest 6 are kept.
	var kept []console.LogEvent
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		kept = tail.Kept("one")
		return len(kept) == 6 && strings.HasPrefix(kept[5].Message, "REPORT RequestId: id-3")
	}, "the newest 6 lines kept: %+v", &kept)
	tail.Watch("two")
	if n := len(tail.Kept("one")); n != 0 {
		t.Errorf("a second function over KeepFunctions=1 left %d lines of the first", n)
	}
}
