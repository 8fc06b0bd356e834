package instance

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// maxTail is how much of an invocation's log X-Amz-Log-Result carries.
const maxTail = 4 * 1024

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// sinkQueue bounds how many writes wait for a slow log sink.
const sinkQueue = 4096

// errSinkClosed answers a write to a log sink after Close.
var errSinkClosed = errors.New("log sink closed")

// logSink serialises writes to one log destination (a file, a FIFO or the
// instance's own stdout/stderr) through a bounded queue and one writer
// goroutine, so a slow reader of a FIFO never stalls a lock holder.
//
// Lock rule: senders hold mu for reading while they send on ch, Close holds
// it for writing while it marks the sink closed and closes ch, so no send
// ever meets a closed channel. A sender blocked on a full queue still
// finishes because run drains ch without taking mu.
type logSink struct {
	w       io.Writer
	closer  io.Closer // nil for the instance's own streams
	ch      chan []byte
	done    chan struct{}
	dropped atomic.Uint64
	once    sync.Once

	mu     sync.RWMutex
	closed bool // guarded by mu
}

// openSink opens path for appending (creating a regular file if needed), or
// uses fallback when path is empty.
func openSink(path string, fallback io.Writer) (*logSink, error) {
	s := &logSink{w: fallback, ch: make(chan []byte, sinkQueue), done: make(chan struct{})}
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		s.w, s.closer = f, f
	}
	go s.run()
	return s, nil
}

func (s *logSink) run() {
	defer close(s.done)
	for p := range s.ch {
		_, _ = s.w.Write(p)
	}
}

// Write queues p, waiting while the queue is full (backpressure for the
// environments' output readers). After Close it writes nothing and answers
// errSinkClosed.
func (s *logSink) Write(p []byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errSinkClosed
	}
	s.ch <- append([]byte(nil), p...)
	return len(p), nil
}

// TryWrite queues p without waiting; a full queue or a closed sink drops p
// and counts it.
func (s *logSink) TryWrite(p []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.Add(1)
		return
	}
	select {
	case s.ch <- p:
	default:
		s.dropped.Add(1)
	}
}

// Close flushes queued writes and closes the destination. Writes that follow
// are refused (Write) or dropped (TryWrite).
func (s *logSink) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.ch)
		s.mu.Unlock()
		<-s.done
		if s.closer != nil {
			err = s.closer.Close()
		}
	})
	return err
}
