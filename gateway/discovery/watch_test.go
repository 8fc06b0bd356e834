package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// blockingSource is a FetchFunc double that behaves like a blocking query:
// it answers at once when its index is past the caller's, otherwise waits
// for the next change.
type blockingSource struct {
	mu      sync.Mutex
	index   uint64
	data    map[string][]Instance
	err     error
	changed chan struct{}
	seen    []uint64 // indexes callers passed in
}

func newBlockingSource() *blockingSource {
	return &blockingSource{index: 1, data: map[string][]Instance{}, changed: make(chan struct{})}
}

func (s *blockingSource) set(function, version string, ins ...Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[function+":"+version] = ins
	s.bumpLocked(s.index + 1)
}

func (s *blockingSource) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	s.bumpLocked(s.index + 1)
}

func (s *blockingSource) setIndex(i uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bumpLocked(i)
}

func (s *blockingSource) bumpLocked(i uint64) {
	s.index = i
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *blockingSource) indexes() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

func (s *blockingSource) fetch(ctx context.Context, function, version string, index uint64) ([]Instance, uint64, error) {
	s.mu.Lock()
	s.seen = append(s.seen, index)
	for s.index == index {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, 0, s.err
	}
	return slices.Clone(s.data[function+":"+version]), s.index, nil
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func inst(id, group string) Instance {
	return Instance{ID: id, Address: "127.0.0.1:1", Function: "fn", Version: "$LATEST", Group: group}
}

func fastConfig() WatchConfig {
	return WatchConfig{MinInterval: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

func TestWatcherFirstAnswerThenUpdates(t *testing.T) {
	src := newBlockingSource()
	src.set("fn", "$LATEST", inst("b", GroupOnDemand), inst("a", GroupProvisioned))
	var (
		mu      sync.Mutex
		changes [][]Instance
	)
	cfg := fastConfig()
	cfg.OnChange = func(fn, v string, ins []Instance) {
		mu.Lock()
		defer mu.Unlock()
		if fn != "fn" || v != "$LATEST" {
			t.Errorf("OnChange(%q, %q)", fn, v)
		}
		changes = append(changes, ins)
	}
	w := NewWatcher(src.fetch, cfg, nil)
	defer w.Close()

	got, err := w.Instances(context.Background(), "fn", "$LATEST")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Instance{inst("a", GroupProvisioned), inst("b", GroupOnDemand)}; !slices.Equal(got, want) {
		t.Fatalf("instances = %v, want %v (sorted by ID)", got, want)
	}

	src.set("fn", "$LATEST", inst("a", GroupProvisioned))
	eventually(t, 5*time.Second, "instance b to leave", func() bool {
		got, _ := w.Instances(context.Background(), "fn", "$LATEST")
		return len(got) == 1 && got[0].ID == "a"
	})
	// Another function version's change wakes the query but changes nothing here.
	src.set("other", "1", inst("x", GroupOnDemand))
	src.set("fn", "$LATEST")
	eventually(t, 5*time.Second, "the set to empty", func() bool {
		got, err := w.Instances(context.Background(), "fn", "$LATEST")
		return err == nil && got != nil && len(got) == 0
	})
	// The cache is updated before OnChange runs, so wait for the callback too.
	eventually(t, 5*time.Second, "the third OnChange", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(changes) >= 3
	})
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 3 {
		t.Fatalf("OnChange called %d times (%v), want 3: first answer, b gone, empty", len(changes), changes)
	}
	if got := w.Watching(); !slices.Equal(got, []string{"fn:$LATEST"}) {
		t.Fatalf("watching %v", got)
	}
}

func TestWatcherErrorBeforeFirstAnswer(t *testing.T) {
	src := newBlockingSource()
	boom := errors.New("agent unreachable")
	src.fail(boom)
	w := NewWatcher(src.fetch, fastConfig(), nil)
	defer w.Close()
	if _, err := w.Instances(context.Background(), "fn", "1"); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	// Recovery: the watch keeps retrying and the next call sees data.
	src.mu.Lock()
	src.err = nil
	src.mu.Unlock()
	src.set("fn", "1", inst("a", GroupOnDemand))
	eventually(t, 5*time.Second, "recovery", func() bool {
		got, err := w.Instances(context.Background(), "fn", "1")
		return err == nil && len(got) == 1
	})
}

func TestWatcherServesLastGoodSetThroughErrors(t *testing.T) {
	src := newBlockingSource()
	src.set("fn", "1", inst("a", GroupOnDemand))
	w := NewWatcher(src.fetch, fastConfig(), nil)
	defer w.Close()
	if got, err := w.Instances(context.Background(), "fn", "1"); err != nil || len(got) != 1 {
		t.Fatalf("first: %v %v", got, err)
	}
	src.fail(errors.New("leader lost"))
	eventually(t, 5*time.Second, "the watch to see the error", func() bool {
		return len(src.indexes()) >= 4 // first, blocked, failed, retry
	})
	got, err := w.Instances(context.Background(), "fn", "1")
	if err != nil || len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("after error: %v %v; want the last good set", got, err)
	}
}

func TestWatcherWaitIsBoundedByContext(t *testing.T) {
	w := NewWatcher(func(ctx context.Context, _, _ string, _ uint64) ([]Instance, uint64, error) {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}, fastConfig(), nil)
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Instances(ctx, "fn", "1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestWatcherStopsIdleWatches(t *testing.T) {
	src := newBlockingSource()
	src.set("fn", "1", inst("a", GroupOnDemand))
	cfg := fastConfig()
	cfg.IdleTimeout = 50 * time.Millisecond
	w := NewWatcher(src.fetch, cfg, nil)
	defer w.Close()
	if _, err := w.Instances(context.Background(), "fn", "1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the idle watch to stop", func() bool { return len(w.Watching()) == 0 })
	// Asking again starts a fresh watch from index 0.
	before := len(src.indexes())
	if _, err := w.Instances(context.Background(), "fn", "1"); err != nil {
		t.Fatal(err)
	}
	if idx := src.indexes(); idx[before] != 0 {
		t.Fatalf("restarted watch asked from index %d, want 0", idx[before])
	}
}

func TestWatcherResetsIndexThatGoesBackwards(t *testing.T) {
	src := newBlockingSource()
	src.setIndex(100)
	w := NewWatcher(src.fetch, fastConfig(), nil)
	defer w.Close()
	if _, err := w.Instances(context.Background(), "fn", "1"); err != nil {
		t.Fatal(err)
	}
	src.setIndex(7) // e.g. a snapshot restore
	eventually(t, 5*time.Second, "a query from index 0", func() bool {
		idx := src.indexes()
		// 0 (first), 100 (blocked, woken by 7), then 0 again.
		return len(idx) >= 3 && idx[2] == 0
	})
	if idx := src.indexes(); idx[0] != 0 || idx[1] != 100 {
		t.Fatalf("indexes = %v", idx)
	}
}

func TestWatcherClose(t *testing.T) {
	src := newBlockingSource()
	w := NewWatcher(src.fetch, fastConfig(), nil)
	for i := range 3 {
		if _, err := w.Instances(context.Background(), "fn", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close() // returns only once every loop has exited
	if _, err := w.Instances(context.Background(), "fn", "0"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
