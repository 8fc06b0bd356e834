package testfn

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
	root  string
)

// Dir returns a code directory holding `bootstrap` built from
// internal/testfn/<name>. It builds once per process and fails tb on error.
func Dir(tb testing.TB, name string) string {
	tb.Helper()
	d, err := Build(name)
	if err != nil {
		tb.Fatalf("building test function %s: %v", name, err)
	}
	return d
}

// Build is Dir for callers without a testing.TB (benchmarks' main, e2e setup).
func Build(name string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if d, ok := built[name]; ok {
		return d, nil
	}
	if root == "" {
		r, err := os.MkdirTemp("", "nimbus-testfn-")
		if err != nil {
			return "", err
		}
		root = r
	}
	src, err := sourceDir(name)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", filepath.Join(dir, "bootstrap"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %w\n%s", src, err, out)
	}
	built[name] = dir
	return dir, nil
}

// sourceDir finds internal/testfn/<name> next to this file.
func sourceDir(name string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate testfn sources")
	}
	d := filepath.Join(filepath.Dir(file), name)
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("no test function %q: %w", name, err)
	}
	return d, nil
}
