package catalog

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/specs"
)

// LoadFunc loads and validates the specs under path (a file or a directory).
// cmd/nimbus passes specs.Load, turning its diagnostics into an error.
type LoadFunc func(path string) (*specs.File, error)

// Local is the dev-mode catalog: the specs in one directory are $LATEST of
// their functions. Run polls the spec files' mtimes and sizes and reloads on
// change; a load error keeps the last good snapshot (and is logged), so a
// half-saved file never empties the catalog.
type Local struct {
	path   string
	load   LoadFunc
	logger hclog.Logger

	snap atomic.Pointer[Snapshot]

	mu       sync.Mutex // guards stamp, watchers, lastErr, extra
	stamp    string
	watchers []func(*Snapshot)
	lastErr  error
	extra    func(*Snapshot) string
}

// WatchAlso adds f's answer to what Poll compares: when it changes, the
// specs are reloaded and watchers run as for a spec edit (dev mode
// fingerprints the functions' code directories this way).
func (l *Local) WatchAlso(f func(*Snapshot) string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.extra = f
	l.stamp += "\x00" + f(l.snap.Load())
}

// NewLocal loads path once and fails if that first load fails.
func NewLocal(path string, load LoadFunc, logger hclog.Logger) (*Local, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	l := &Local{path: path, load: load, logger: logger.Named("catalog")}
	stamp, err := l.fingerprint()
	if err != nil {
		return nil, err
	}
	f, err := load(path)
	if err != nil {
		return nil, fmt.Errorf("loading specs from %s: %w", path, err)
	}
	l.stamp = stamp
	l.snap.Store(NewSnapshot(FromFile(f)))
	return l, nil
}

// Snapshot returns the current function set.
func (l *Local) Snapshot() *Snapshot { return l.snap.Load() }

// Function returns one function or ErrFunctionNotFound.
func (l *Local) Function(_ context.Context, name string) (*Function, error) {
	return l.snap.Load().Function(name)
}

// Functions returns every function, sorted by name.
func (l *Local) Functions(_ context.Context) ([]*Function, error) {
	return l.snap.Load().Functions(), nil
}

// ReservedTotal is the sum of reserved concurrency over all functions.
func (l *Local) ReservedTotal() int { return l.snap.Load().ReservedTotal }

// Watch registers fn to be called (from Run's goroutine) after each reload.
func (l *Local) Watch(fn func(*Snapshot)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watchers = append(l.watchers, fn)
}

// LastError returns the error of the most recent reload attempt (nil after a
// good one).
func (l *Local) LastError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// Run polls every interval until ctx is done.
func (l *Local) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Poll()
		}
	}
}

// Poll reloads once if a spec file changed, and reports whether it swapped
// in a new snapshot.
func (l *Local) Poll() bool {
	stamp, err := l.fingerprint()
	if err != nil {
		l.logger.Warn("scanning specs", "error", err)
		return false
	}
	files := stamp
	l.mu.Lock()
	if l.extra != nil {
		stamp += "\x00" + l.extra(l.snap.Load())
	}
	same := stamp == l.stamp
	l.mu.Unlock()
	if same {
		return false
	}
	f, err := l.load(l.path)
	l.mu.Lock()
	l.stamp = stamp
	l.lastErr = err
	watchers := append([]func(*Snapshot){}, l.watchers...)
	l.mu.Unlock()
	if err != nil {
		l.logger.Error("reloading specs; keeping the previous ones", "error", err)
		return false
	}
	s := NewSnapshot(FromFile(f))
	l.snap.Store(s)
	l.mu.Lock()
	if l.extra != nil {
		// Stamp the new function set, so the next poll compares like with like.
		l.stamp = files + "\x00" + l.extra(s)
	}
	l.mu.Unlock()
	l.logger.Info("specs reloaded", "functions", len(f.Functions))
	for _, w := range watchers {
		w(s)
	}
	return true
}

// fingerprint names every spec file with its size and mtime. A directory
// contributes the files specs.Load reads (specs.SpecFiles).
func (l *Local) fingerprint() (string, error) {
	st, err := os.Stat(l.path)
	if err != nil {
		return "", fmt.Errorf("reading spec path: %w", err)
	}
	var files []fs.FileInfo
	var names []string
	if !st.IsDir() {
		files, names = []fs.FileInfo{st}, []string{l.path}
	} else {
		list, err := specs.SpecFiles(l.path)
		if err != nil {
			return "", fmt.Errorf("listing spec dir: %w", err)
		}
		for _, name := range list {
			fi, err := os.Stat(name)
			if err != nil {
				continue // removed while listing; the next poll sees it
			}
			files = append(files, fi)
			names = append(names, name)
		}
	}
	parts := make([]string, len(files))
	for i, fi := range files {
		parts[i] = fmt.Sprintf("%s|%d|%d", names[i], fi.Size(), fi.ModTime().UnixNano())
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n"), nil
}
