package instance

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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
