package build

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const goMain = `package main

import "fmt"

func main() { fmt.Println("built") }
`

// The Go default builds a linux bootstrap outside the code dir, leaves the
// code dir untouched and reuses the build while the sources are unchanged.
func TestGoDefault(t *testing.T) {
	src, cache := t.TempDir(), t.TempDir()
	write(t, src, map[string]string{"go.mod": "module fn\n\ngo 1.22\n", "main.go": goMain, "README": "x"})
	opts := Options{CacheDir: cache}
	res, err := Run(context.Background(), "provided.al2023", src, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cached || !strings.HasPrefix(res.Dir, cache) || !strings.Contains(res.Step, "GOOS=linux go build") {
		t.Fatalf("result %+v", res)
	}
	if got := names(t, res.Dir); len(got) != 1 || got[0] != "bootstrap" {
		t.Fatalf("build output holds %v, want just bootstrap", got)
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "bootstrap"))
	if err != nil || !bytes.HasPrefix(b, []byte("\x7fELF")) {
		t.Fatalf("bootstrap is not an ELF binary (%v)", err)
	}
	if got := names(t, src); len(got) != 3 {
		t.Fatalf("the build wrote into the code dir: %v", got)
	}
	again, err := Run(context.Background(), "provided.al2023", src, nil, opts)
	if err != nil || !again.Cached || again.Dir != res.Dir {
		t.Fatalf("unchanged sources rebuilt: %+v %v", again, err)
	}
	// An edited source is a new build.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(src, "main.go"), later, later); err != nil {
		t.Fatal(err)
	}
	edited, err := Run(context.Background(), "provided.al2023", src, nil, opts)
	if err != nil || edited.Cached || edited.Dir == res.Dir {
		t.Fatalf("edited sources reused the old build: %+v %v", edited, err)
	}
}

// A bootstrap at least as new as every Go source is used as it is; an older
// one is rebuilt.
func TestGoDefaultPrebuilt(t *testing.T) {
	src := t.TempDir()
	write(t, src, map[string]string{"go.mod": "module fn\n\ngo 1.22\n", "main.go": goMain})
	if err := os.WriteFile(filepath.Join(src, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{"go.mod", "main.go"} {
		if err := os.Chtimes(filepath.Join(src, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	need, prebuilt, _, err := GoStatus(src)
	if err != nil || need || prebuilt != filepath.Join(src, "bootstrap") {
		t.Fatalf("GoStatus = %v %q %v", need, prebuilt, err)
	}
	res, err := Run(context.Background(), "provided", src, nil, Options{})
	if err != nil || res.Dir != src || res.Step != "" {
		t.Fatalf("prebuilt bootstrap not used: %+v %v", res, err)
	}
	newer := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(src, "main.go"), newer, newer); err != nil {
		t.Fatal(err)
	}
	need, prebuilt, newest, err := GoStatus(src)
	if err != nil || !need || prebuilt != "" || newest != filepath.Join(src, "main.go") {
		t.Fatalf("stale bootstrap: GoStatus = %v %q %q %v", need, prebuilt, newest, err)
	}
}

func TestGoDefaultFailure(t *testing.T) {
	src, cache := t.TempDir(), t.TempDir()
	write(t, src, map[string]string{"go.mod": "module fn\n\ngo 1.22\n", "main.go": "package main\n\nfunc main() { undefinedThing() }\n"})
	_, err := Run(context.Background(), "provided.al2023", src, nil, Options{CacheDir: cache})
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "undefinedThing") || !strings.Contains(err.Error(), "go build") {
		t.Fatalf("error %v", err)
	}
	if ents, _ := os.ReadDir(cache); len(ents) != 0 {
		t.Fatalf("a failed build left %d entries in the cache", len(ents))
	}
}

// Other runtimes and code dirs without Go sources or a lock file are
// packaged as they are.
func TestNoDefault(t *testing.T) {
	src := t.TempDir()
	write(t, src, map[string]string{"app.py": "def handler(e, c): return e\n", "package.json": "{}"})
	for _, rt := range []string{"python3.12", "nodejs20.x", "provided.al2023"} {
		res, err := Run(context.Background(), rt, src, nil, Options{})
		if err != nil || res.Dir != src || res.Step != "" {
			t.Errorf("%s: %+v %v", rt, res, err)
		}
	}
}

func TestCustom(t *testing.T) {
	src := t.TempDir()
	write(t, src, map[string]string{"in.txt": "data"})
	res, err := Run(context.Background(), "provided.al2023", src,
		&Custom{Command: "mkdir -p dist && cp in.txt dist/out.txt && echo made > dist/extra", Output: "dist"}, Options{})
	if err != nil || res.Dir != filepath.Join(src, "dist") {
		t.Fatalf("%+v %v", res, err)
	}
	if got := strings.Join(names(t, res.Dir), " "); got != "extra out.txt" {
		t.Fatalf("output holds %s", got)
	}
	// Skip packages the code dir even where a default would build.
	write(t, src, map[string]string{"main.go": goMain, "go.mod": "module fn\n"})
	res, err = Run(context.Background(), "provided.al2023", src, &Custom{Skip: true}, Options{})
	if err != nil || res.Dir != src || res.Step != "" {
		t.Fatalf("skip: %+v %v", res, err)
	}
	_, err = Run(context.Background(), "provided.al2023", src, &Custom{Command: "echo to-stdout; echo to-stderr >&2; exit 7"}, Options{})
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "exit status 7") ||
		!strings.Contains(err.Error(), "to-stdout\nto-stderr") {
		t.Fatalf("failing command: %v", err)
	}
	_, err = Run(context.Background(), "provided.al2023", src, &Custom{Command: "true", Output: "missing"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "left no output directory") {
		t.Fatalf("missing output: %v", err)
	}
	_, err = Run(context.Background(), "provided.al2023", src, &Custom{Command: "true", Output: "../up"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "inside the code directory") {
		t.Fatalf("escaping output: %v", err)
	}
}
