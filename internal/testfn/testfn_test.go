package testfn

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBuildEcho(t *testing.T) {
	d := Dir(t, "echo")
	fi, err := os.Stat(filepath.Join(d, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Fatalf("bootstrap is not executable: %v", fi.Mode())
	}
	if again := Dir(t, "echo"); again != d {
		t.Fatalf("second build went to %s, want cached %s", again, d)
	}
}

// A second test process finds the first one's build instead of building
// (and leaving behind) its own copy.
func TestBuildReusesTheCacheAcrossProcesses(t *testing.T) {
	t.Setenv(EnvCacheDir, t.TempDir())
	forget := func() {
		mu.Lock()
		delete(built, "echo")
		mu.Unlock()
	}
	forget()
	t.Cleanup(forget)
	d := Dir(t, "echo")
	first, err := os.Stat(filepath.Join(d, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	forget() // as a fresh process would start
	if again := Dir(t, "echo"); again != d {
		t.Fatalf("second process built into %s, want the cached %s", again, d)
	}
	second, err := os.Stat(filepath.Join(d, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(first, second) || !second.ModTime().Equal(first.ModTime()) {
		t.Fatal("the cached bootstrap was rebuilt")
	}
	entries, err := os.ReadDir(filepath.Dir(d))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("cache holds %d entries, want only %s (no leftover build dirs)", len(entries), filepath.Base(d))
	}
}

func TestSourceKeyFollowsTheSources(t *testing.T) {
	module := t.TempDir()
	src := filepath.Join(module, "internal", "testfn", "fn")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(module, "go.mod"), "module m\n")
	write(filepath.Join(module, "go.sum"), "")
	write(filepath.Join(src, "main.go"), "package main\n")
	key := func() string {
		t.Helper()
		k, err := sourceKey(src)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1 := key()
	if key() != k1 {
		t.Fatal("the key of unchanged sources changed")
	}
	write(filepath.Join(src, "main.go"), "package main\n\nfunc main() {}\n")
	k2 := key()
	if k2 == k1 {
		t.Fatal("editing main.go kept the key")
	}
	write(filepath.Join(module, "go.sum"), "example.com/x v1.0.0 h1:abc=\n")
	if key() == k2 {
		t.Fatal("a dependency change (go.sum) kept the key")
	}
}
