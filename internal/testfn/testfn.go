package testfn

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"
)

// EnvCacheDir names the environment variable that overrides where built
// functions are kept. Default: <user cache dir>/nimbus-testfn, else
// <temp dir>/nimbus-testfn-<uid>.
const EnvCacheDir = "NIMBUS_TESTFN_CACHE"

var (
	mu    sync.Mutex
	built = map[string]string{}
)

// Dir returns a code directory holding `bootstrap` built from
// internal/testfn/<name>. It builds once per source version and fails tb
// on error. The directory is shared: callers must not write into it.
func Dir(tb testing.TB, name string) string {
	tb.Helper()
	d, err := Build(name)
	if err != nil {
		tb.Fatalf("building test function %s: %v", name, err)
	}
	return d
}

// Build is Dir for callers without a testing.TB (benchmarks' main, e2e setup).
//
// Builds are kept in a cache directory keyed by everything the binary
// depends on (the function's sources, go.mod, go.sum, the Go version and
// platform), so test processes reuse one copy instead of each leaving its
// own set of binaries behind. Concurrent builders (other test processes)
// each build into a private directory and rename it into place; the first
// rename wins and the others use it.
func Build(name string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if d, ok := built[name]; ok {
		return d, nil
	}
	src, err := sourceDir(name)
	if err != nil {
		return "", err
	}
	key, err := sourceKey(src)
	if err != nil {
		return "", fmt.Errorf("hashing the sources of %s: %w", name, err)
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, name+"-"+key)
	if isExecutable(filepath.Join(dir, "bootstrap")) {
		built[name] = dir
		return dir, nil
	}
	tmp, err := os.MkdirTemp(cache, "."+name+"-")
	if err != nil {
		return "", fmt.Errorf("creating a build dir: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", filepath.Join(tmp, "bootstrap"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %w\n%s", src, err, out)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil && !isExecutable(filepath.Join(dir, "bootstrap")) {
		return "", fmt.Errorf("caching test function %s: %w", name, err)
	}
	built[name] = dir
	return dir, nil
}

// sourceDir finds internal/testfn/<name> next to this file.
func sourceDir(name string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate testfn sources")
	}
	d := filepath.Join(filepath.Dir(file), name)
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("no test function %q: %w", name, err)
	}
	return d, nil
}

// sourceKey hashes what the binary built from src depends on: every file
// under src, the module's go.mod and go.sum (the functions import only the
// standard library and modules), the Go version and the platform.
func sourceKey(src string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	module := filepath.Join(src, "..", "..", "..")
	files := []string{filepath.Join(module, "go.mod"), filepath.Join(module, "go.sum")}
	var walked []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			walked = append(walked, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(walked)
	for _, p := range append(files, walked...) {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(module, p)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func cacheDir() (string, error) {
	dir := os.Getenv(EnvCacheDir)
	if dir == "" {
		if base, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(base, "nimbus-testfn")
		} else {
			dir = filepath.Join(os.TempDir(), "nimbus-testfn-"+strconv.Itoa(os.Getuid()))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the test function cache: %w", err)
	}
	return dir, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// LogURL serves an http:// URL that appends every POSTed body to path, for
// the batch and stamp functions' BATCH_LOG and STAMP_LOG: an isolated
// function does not see the host's files but reaches its loopback, and
// tests keep reading the file. The server ends with tb. The file is opened
// once, at the first body, and kept open (O_APPEND) until then: the stamp
// function posts once per batch, inside the invocation a benchmark times,
// and an open and a close per body were a good part of that post.
func LogURL(tb testing.TB, path string) string {
	var mu sync.Mutex
	var f *os.File
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err == nil {
			mu.Lock()
			if f == nil {
				f, err = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			}
			if err == nil {
				_, err = f.Write(b)
			}
			mu.Unlock()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		if f != nil {
			_ = f.Close()
		}
	})
	return srv.URL + "/log"
}
