package plugintest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Logger returns a debug-level logger named after the test that writes
// into tb's log until the test ends. go-plugin's goroutines may still log
// after that (testing panics on a Log after the end); those lines are
// dropped.
func Logger(tb testing.TB) hclog.Logger {
	w := &testWriter{tb: tb}
	tb.Cleanup(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
	})
	return hclog.New(&hclog.LoggerOptions{Name: tb.Name(), Level: hclog.Debug, Output: w})
}

type testWriter struct {
	tb     testing.TB
	mu     sync.Mutex
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Eventually polls cond until it holds, failing tb with what when within
// passes first.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			tb.Fatalf("timed out after %s waiting for %s", within, what)
		case <-tick.C:
		}
	}
}
