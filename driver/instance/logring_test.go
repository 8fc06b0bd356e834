package instance

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

// The log endpoint answers the platform's and the function's lines, each
// with its request id, and follows new ones; the invoke secret guards it.
func TestLogEndpointReturnsAndFollowsLines(t *testing.T) {
	cfg := testConfig(t, "logs")
	cfg.InvokeSecret = "log-secret"
	in := start(t, cfg)
	c := &invokeapi.Client{Secret: cfg.InvokeSecret}

	r1 := invoke(t, in, &invokeapi.Request{RequestID: "req-one", Payload: event(map[string]string{"say": "hello", "warn": "careful"})})
	if string(r1.body) != `"logged"` {
		t.Fatalf("invoke: %s", r1.body)
	}
	read := func(since time.Time) []invokeapi.LogLine {
		var got []invokeapi.LogLine
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Logs(ctx, in.Addr(), since, false, func(l invokeapi.LogLine) error { got = append(got, l); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	has := func(lines []invokeapi.LogLine, stream, id, prefix string) bool {
		for _, l := range lines {
			if l.Stream == stream && l.RequestID == id && strings.HasPrefix(l.Message, prefix) {
				return true
			}
		}
		return false
	}
	var lines []invokeapi.LogLine
	// The function's output reaches the ring through its pipes.
	eventually(t, 5*time.Second, "the function's lines in the ring", func() bool {
		lines = read(time.Time{})
		return has(lines, "stdout", "req-one", "hello req-one") && has(lines, "stderr", "req-one", "careful req-one")
	})
	for _, want := range []string{"START RequestId: req-one", "END RequestId: req-one", "REPORT RequestId: req-one"} {
		if !has(lines, "platform", "req-one", want) {
			t.Errorf("no platform line %q in %+v", want, lines)
		}
	}

	// since leaves out what came before.
	last := lines[len(lines)-1].Time
	if got := read(last); len(got) != 0 {
		t.Errorf("lines after the last one: %+v", got)
	}

	// follow: a second invocation's lines arrive on the open stream.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan invokeapi.LogLine, 100)
	done := make(chan error, 1)
	go func() {
		done <- c.Logs(ctx, in.Addr(), last, true, func(l invokeapi.LogLine) error { got <- l; return nil })
	}()
	invoke(t, in, &invokeapi.Request{RequestID: "req-two", Payload: event(map[string]string{"say": "again"})})
	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for !seen["again req-two"] || !seen["REPORT"] {
		select {
		case l := <-got:
			if l.RequestID != "req-two" {
				t.Errorf("followed a line of another request: %+v", l)
			}
			if strings.HasPrefix(l.Message, "REPORT") {
				seen["REPORT"] = true
			}
			seen[l.Message] = true
		case <-timeout:
			t.Fatalf("followed lines: %v", seen)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("follow ended with %v", err)
	}

	// Without the secret: refused.
	bad := &invokeapi.Client{Secret: "wrong"}
	err := bad.Logs(context.Background(), in.Addr(), time.Time{}, false, func(invokeapi.LogLine) error { return nil })
	if !isCode(err, &invokeapi.Error{Code: invokeapi.CodeUnauthorized}) {
		t.Errorf("wrong secret: %v", err)
	}
}

func TestLogRingIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newLogRing(func() time.Time { now = now.Add(time.Millisecond); return now })
	for i := range ringLines + 10 {
		r.add("stdout", "", strings.Repeat("x", 1+i%7)+"\n")
	}
	if n := len(r.since(time.Time{})); n != ringLines {
		t.Errorf("%d lines kept, want %d", n, ringLines)
	}
	big := strings.Repeat("y", invokeapi.MaxLogLine)
	for range ringBytes / invokeapi.MaxLogLine * 2 {
		r.add("stdout", "", big)
	}
	total := 0
	for _, l := range r.since(time.Time{}) {
		total += len(l.Message)
	}
	if total > ringBytes {
		t.Errorf("%d bytes kept, over %d", total, ringBytes)
	}
	// A long line is split; CRLF ends lines too.
	r.add("stderr", "id", strings.Repeat("z", invokeapi.MaxLogLine+5)+"\r\nnext\r\n")
	all := r.since(time.Time{})
	tail := all[len(all)-3:]
	if len(tail[0].Message) != invokeapi.MaxLogLine || tail[1].Message != "zzzzz" || tail[2].Message != "next" {
		t.Errorf("split lines: %d %q %q", len(tail[0].Message), tail[1].Message, tail[2].Message)
	}
}

// TestLogRingKeepsNewestInOrderAcrossCompactions fills the ring several
// times over: the kept lines are always the newest, oldest first, and the
// backing array stays bounded.
func TestLogRingKeepsNewestInOrderAcrossCompactions(t *testing.T) {
	r := newLogRing(nil)
	const total = 3*ringLines + 7
	for i := range total {
		r.add("stdout", "", strconv.Itoa(i))
		if i == ringLines+ringLines/2 || i == total-1 {
			kept := r.since(time.Time{})
			if len(kept) != ringLines {
				t.Fatalf("after %d lines: %d kept, want %d", i+1, len(kept), ringLines)
			}
			for j, l := range kept {
				if want := strconv.Itoa(i + 1 - ringLines + j); l.Message != want {
					t.Fatalf("after %d lines: line %d is %q, want %q", i+1, j, l.Message, want)
				}
			}
		}
	}
	if c := cap(r.lines); c > 4*ringLines {
		t.Errorf("backing array holds %d lines for a ring of %d", c, ringLines)
	}
}

// A batched follower (flush=D) still gets every line: what the instance
// holds back is written out when the stream ends, here because the
// instance stops long before the 5 s flush interval. A bad flush is
// refused.
func TestBatchedFollowerGetsLinesHeldAtStop(t *testing.T) {
	cfg := testConfig(t, "logs")
	in := start(t, cfg)
	c := &invokeapi.Client{}
	got := make(chan invokeapi.LogLine, 100)
	done := make(chan error, 1)
	since := time.Now()
	go func() {
		done <- c.LogsBatched(context.Background(), in.Addr(), since, invokeapi.MaxLogFlush, func(l invokeapi.LogLine) error { got <- l; return nil })
	}()
	invoke(t, in, &invokeapi.Request{RequestID: "req-b", Payload: event(map[string]string{"say": "held"})})
	// The ring has the invocation's lines (so the follower was sent them,
	// held or not) before the instance stops.
	eventually(t, 5*time.Second, "the REPORT line in the ring", func() bool {
		for _, l := range in.logs.since(since) {
			if l.RequestID == "req-b" && strings.HasPrefix(l.Message, "REPORT") {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("batched follow ended with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the batched follow did not end when the instance stopped")
	}
	close(got)
	seen := map[string]bool{}
	for l := range got {
		for _, p := range []string{"START", "held req-b", "END", "REPORT"} {
			if l.RequestID == "req-b" && strings.HasPrefix(l.Message, p) {
				seen[p] = true
			}
		}
	}
	if len(seen) != 4 {
		t.Errorf("lines of req-b the batched follower got: %v", seen)
	}

	in2 := start(t, testConfig(t, "logs"))
	err := c.LogsBatched(context.Background(), in2.Addr(), time.Time{}, time.Minute, func(invokeapi.LogLine) error { return nil })
	if !isCode(err, &invokeapi.Error{Code: invokeapi.CodeBadRequest}) {
		t.Errorf("flush of a minute: %v", err)
	}
}
