package instance

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

func TestTailBufferKeepsTheLastBytes(t *testing.T) {
	tb := newTailBuffer(8)
	_, _ = tb.Write([]byte("abcdef"))
	_, _ = tb.Write([]byte("ghij"))
	if got := string(tb.Bytes()); got != "cdefghij" {
		t.Fatalf("tail %q", got)
	}
	_, _ = tb.Write([]byte("0123456789"))
	if got := string(tb.Bytes()); got != "23456789" {
		t.Fatalf("tail %q", got)
	}
}

// lockedBuffer collects what a FIFO reader reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.b.Bytes(), []byte(s))
}

func TestFIFOSinks(t *testing.T) {
	cfg := testConfig(t, "sleep")
	dir := t.TempDir()
	cfg.StdoutPath = filepath.Join(dir, "stdout.fifo")
	if err := syscall.Mkfifo(cfg.StdoutPath, 0o600); err != nil {
		t.Fatal(err)
	}
	// Nomad's log collector holds the read end open, as this reader does.
	var got lockedBuffer
	go func() {
		f, err := os.Open(cfg.StdoutPath)
		if err != nil {
			return
		}
		defer f.Close()
		_, _ = io.Copy(&got, f)
	}()
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{RequestID: "fifo-1", Payload: event(map[string]int{"ms": 1}), LogTail: true})
	if string(r.body) != `"slept"` {
		t.Fatalf("answer %s", r.body)
	}
	eventually(t, 5*time.Second, "function output and REPORT in the FIFO", func() bool {
		return got.Contains("sleeping 1 ms\n") && got.Contains("REPORT RequestId: fifo-1\t")
	})
}

func TestLogTailIsBounded(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not on PATH")
	}
	cfg := managedConfig(t, "python3.12", "app.handler", "app.py", `
def handler(event, context):
    print("y" * 10000)
    return 1
`)
	in := start(t, cfg)
	r := invoke(t, in, &invokeapi.Request{RequestID: "tail", Payload: []byte(`{}`), LogTail: true})
	tail := mustBase64(t, r.resp.LogResult)
	if len(tail) != invokeapi.MaxLogTail || !bytes.Contains(tail, []byte("yyyy\n")) || !reportLine.Match(tail) {
		t.Fatalf("tail of %d bytes: %q", len(tail), tail[len(tail)-300:])
	}
}

func TestLogSinkWriteAfterCloseIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	s, err := openSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	n, err := s.Write([]byte("after\n"))
	if !errors.Is(err, errSinkClosed) || n != 0 {
		t.Fatalf("Write after Close: n=%d err=%v, want 0 and errSinkClosed", n, err)
	}
	s.TryWrite([]byte("dropped\n"))
	if got := s.dropped.Load(); got != 1 {
		t.Fatalf("dropped %d, want 1", got)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "before\n" {
		t.Fatalf("file holds %q, want only the write before Close", b)
	}
}

// Writers racing Close must each either land their line or get
// errSinkClosed; none may panic.
func TestLogSinkWritesRacingClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	s, err := openSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var landed atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				_, err := s.Write([]byte("x\n"))
				switch {
				case err == nil:
					landed.Add(1)
				case errors.Is(err, errSinkClosed):
				default:
					t.Errorf("Write: %v", err)
				}
				s.TryWrite([]byte("y\n"))
			}
		}()
	}
	_ = s.Close()
	wg.Wait()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := int64(bytes.Count(b, []byte("x\n"))); got != landed.Load() {
		t.Fatalf("file holds %d accepted lines, Write accepted %d", got, landed.Load())
	}
}
