package bundlecache

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nimbus-fn/nimbus/bundle"
)

// server serves zip bundles by sha256 and counts downloads per digest.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	blobs map[string][]byte
	hits  map[string]*atomic.Int32
}

func newServer(t *testing.T) *server {
	s := &server{blobs: map[string][]byte{}, hits: map[string]*atomic.Int32{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".zip")
		s.mu.Lock()
		b, ok := s.blobs[name]
		h := s.hits[name]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Add(1)
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// add zips files and serves the archive under name (its sha256 unless
// name is given), returning the Source for it.
func (s *server) add(t *testing.T, files map[string]string, name string) Source {
	t.Helper()
	dir := t.TempDir()
	for p, body := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	sum, err := bundle.Zip(dir, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if name == "" {
		name = sum
	}
	s.mu.Lock()
	s.blobs[name] = buf.Bytes()
	s.hits[name] = new(atomic.Int32)
	s.mu.Unlock()
	return Source{URL: s.URL + "/" + name + ".zip", SHA256: sum}
}

func (s *server) count(name string) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[name].Load()
}

func TestGetDownloadsOnceAndServesFromDisk(t *testing.T) {
	srv := newServer(t)
	src := srv.add(t, map[string]string{"bootstrap": "#!/bin/sh\n", "lib/x.txt": "x"}, "")
	c, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := c.Get(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	if !p1.Fetched {
		t.Error("first Get did not report a fetch")
	}
	if b, err := os.ReadFile(filepath.Join(p1.Dir, "lib", "x.txt")); err != nil || string(b) != "x" {
		t.Fatalf("unpacked file: %q, %v", b, err)
	}
	// A second cache on the same directory is a second process's view.
	c2, err := Open(c.Dir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c2.Get(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if p2.Fetched || p2.Dir != p1.Dir {
		t.Errorf("second Get: fetched=%v dir=%s, want a cache hit at %s", p2.Fetched, p2.Dir, p1.Dir)
	}
	if n := srv.count(src.SHA256); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

func TestConcurrentGetsShareOneDownload(t *testing.T) {
	srv := newServer(t)
	src := srv.add(t, map[string]string{"index.py": "def handler(e, c): return e\n"}, "")
	c, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			p, err := c.Get(context.Background(), src)
			if err == nil {
				_, err = os.Stat(filepath.Join(p.Dir, "index.py"))
				p.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.count(src.SHA256); n != 1 {
		t.Errorf("%d downloads for 8 concurrent Gets, want 1", n)
	}
}

func TestDigestMismatchLeavesNothing(t *testing.T) {
	srv := newServer(t)
	real := srv.add(t, map[string]string{"a": "1"}, "")
	other := srv.add(t, map[string]string{"a": "2"}, "")
	c, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The URL serves other's bytes but the job claims real's digest.
	bad := Source{URL: other.URL, SHA256: real.SHA256}
	if _, err := c.Get(context.Background(), bad); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Get = %v, want ErrDigestMismatch", err)
	}
	if es, _ := c.Entries(); len(es) != 0 {
		t.Errorf("entries after a mismatch: %+v", es)
	}
	if left, _ := os.ReadDir(filepath.Join(c.Dir(), ".incoming")); len(left) != 0 {
		t.Errorf(".incoming keeps %d leftovers", len(left))
	}
	if _, err := c.Get(context.Background(), Source{URL: srv.URL + "/missing.zip", SHA256: real.SHA256}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing bundle: %v", err)
	}
	if _, err := c.Get(context.Background(), Source{URL: "s3::https://bucket/x.zip", SHA256: real.SHA256}); err == nil {
		t.Error("a non-http URL was accepted")
	}
}

func TestCollectEvictsLeastRecentlyUsedUnpinned(t *testing.T) {
	srv := newServer(t)
	big := strings.Repeat("x", 4096)
	a := srv.add(t, map[string]string{"f": big + "a"}, "")
	b := srv.add(t, map[string]string{"f": big + "b"}, "")
	d := srv.add(t, map[string]string{"f": big + "d"}, "")
	c, err := Open(t.TempDir(), Options{MaxBytes: 2 * 4097})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pa, err := c.Get(ctx, a) // oldest, but pinned
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Source{b, d} {
		p, err := c.Get(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	freed, err := c.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if freed != 4097 {
		t.Errorf("freed %d bytes, want 4097", freed)
	}
	have := map[string]bool{}
	es, _ := c.Entries()
	for _, e := range es {
		have[e.SHA256] = true
	}
	if !have[a.SHA256] || have[b.SHA256] || !have[d.SHA256] {
		t.Errorf("after collect: %v; want the pinned oldest and the newest kept, the middle one evicted", have)
	}

	// The pin moves to a child process: closing ours keeps the entry.
	child := exec.Command("sleep", "60")
	child.ExtraFiles = []*os.File{pa.File()}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	pa.Close()
	c.maxBytes = 1
	if _, err := c.Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), a.SHA256)); err != nil {
		t.Errorf("entry pinned by a child process was collected: %v", err)
	}
	_ = child.Process.Kill()
	_ = child.Wait()
	if _, err := c.Collect(); err != nil {
		t.Fatal(err)
	}
	if es, _ := c.Entries(); len(es) != 0 {
		t.Errorf("entries left after the last pin went away: %+v", es)
	}
	// A collected bundle comes back on the next Get.
	p, err := c.Get(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Fetched {
		t.Error("Get after eviction did not download again")
	}
}
