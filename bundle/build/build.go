package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Custom is a spec's build block: it replaces the default build.
type Custom struct {
	// Command is a shell command line, run with `sh -c` in the code
	// directory. Required unless Skip.
	Command string
	// Output is the directory, relative to the code directory, whose
	// contents are packaged after Command ran. "" means the code directory.
	Output string
	// Skip turns every build off: the code directory is packaged as it is.
	Skip bool
}

// Options say where default builds write and for which platform.
type Options struct {
	// CacheDir holds default builds, one subdirectory per build input (so a
	// caller that keeps it reuses builds of unchanged sources). Required
	// when a default build runs; never inside the code directory.
	CacheDir string
	// GOOS the Go default builds for. Default: "linux" (what Nomad clients
	// run); nimbus dev passes its own GOOS.
	GOOS string
	// Env is the environment of every command. Default: os.Environ().
	Env []string
}

// Result is the directory to package or run and what produced it.
type Result struct {
	// Dir is the directory to package: the code directory, a build output
	// under Options.CacheDir, or a custom build's output.
	Dir string
	// Step is the command that produced Dir ("" when Dir is the code
	// directory as it is).
	Step string
	// Cached is true when Dir is an earlier build of the same inputs.
	Cached bool
}

// Error is a build step that failed; it carries the step's output.
type Error struct {
	Step   string // the command line
	Dir    string // where it ran
	Output []byte // combined stdout and stderr (its tail)
	Err    error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("build step `%s` in %s: %v", e.Step, e.Dir, e.Err)
	if out := strings.TrimRight(string(e.Output), "\n"); out != "" {
		msg += "\n" + out
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// maxOutput bounds the command output an Error keeps (its tail).
const maxOutput = 16 << 10

// Run returns the directory to package for code in dir under runtime:
// custom's output when custom is set, else the default build's output for
// the runtime, else dir itself.
func Run(ctx context.Context, runtime, dir string, custom *Custom, opts Options) (Result, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Result{}, err
	}
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	if opts.GOOS == "" {
		opts.GOOS = "linux"
	}
	if custom != nil {
		return runCustom(ctx, dir, custom, opts)
	}
	switch {
	case strings.HasPrefix(runtime, "provided"):
		return goDefault(ctx, dir, opts)
	case strings.HasPrefix(runtime, "nodejs"):
		return npmDefault(ctx, dir, opts)
	}
	return Result{Dir: dir}, nil
}

func runCustom(ctx context.Context, dir string, c *Custom, opts Options) (Result, error) {
	if c.Skip {
		return Result{Dir: dir}, nil
	}
	if strings.TrimSpace(c.Command) == "" {
		return Result{}, errors.New("build command is empty; set one, or skip = true to package the code directory as it is")
	}
	out := c.Output
	if out == "" {
		out = "."
	}
	if !filepath.IsLocal(out) {
		return Result{}, fmt.Errorf("build output %q must be a directory inside the code directory", c.Output)
	}
	step := c.Command
	if err := run(ctx, dir, opts.Env, step, "sh", "-c", c.Command); err != nil {
		return Result{}, err
	}
	outDir := filepath.Join(dir, out)
	fi, err := os.Stat(outDir)
	switch {
	case err != nil:
		return Result{}, fmt.Errorf("build step `%s` succeeded but left no output directory %s: %w", step, outDir, err)
	case !fi.IsDir():
		return Result{}, fmt.Errorf("build output %s is not a directory", outDir)
	}
	return Result{Dir: outDir, Step: step}, nil
}

// run runs name args in dir and wraps a failure in *Error.
func run(ctx context.Context, dir string, env []string, step, name string, args ...string) error {
	if _, err := exec.LookPath(name); err != nil {
		return &Error{Step: step, Dir: dir, Err: fmt.Errorf("%s is not on PATH: %w", name, err)}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	b, err := cmd.CombinedOutput()
	if err != nil {
		if len(b) > maxOutput {
			b = append([]byte("…\n"), b[len(b)-maxOutput:]...)
		}
		return &Error{Step: step, Dir: dir, Output: b, Err: err}
	}
	return nil
}

// ---- Go ---------------------------------------------------------------------

// IsGoSource says whether a file named n is one go build reads.
func IsGoSource(n string) bool {
	return strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum"
}

// skipDir says whether a walk of sources skips the directory named n (as
// the go tool ignores ".", "_" and testdata directories).
func skipDir(n string) bool {
	return strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" || n == "node_modules"
}

// hasGoSources says whether dir holds go.mod or a *.go file at its top.
func hasGoSources(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		if !e.IsDir() && (e.Name() == "go.mod" || strings.HasSuffix(e.Name(), ".go")) {
			return true, nil
		}
	}
	return false, nil
}

// goSources lists the Go sources under dir (relative slash paths with
// size and mtime, sorted) and the newest one.
func goSources(dir string) (parts []string, newest string, newestMod time.Time, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !IsGoSource(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		parts = append(parts, fmt.Sprintf("%s|%d|%d", filepath.ToSlash(rel), fi.Size(), fi.ModTime().UnixNano()))
		if newest == "" || fi.ModTime().After(newestMod) {
			newest, newestMod = p, fi.ModTime()
		}
		return nil
	})
	sort.Strings(parts)
	return parts, newest, newestMod, err
}

// GoStatus says what the Go default does with dir: build is false when dir
// has no Go sources or a bootstrap at least as new as every one of them
// (prebuilt names it then); newest is the newest source when a prebuilt
// bootstrap is older than it.
func GoStatus(dir string) (build bool, prebuilt, newest string, err error) {
	ok, err := hasGoSources(dir)
	if err != nil || !ok {
		return false, "", "", err
	}
	_, newest, mod, err := goSources(dir)
	if err != nil {
		return false, "", "", err
	}
	bootstrap := filepath.Join(dir, "bootstrap")
	if st, err := os.Stat(bootstrap); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		if !mod.After(st.ModTime()) {
			return false, bootstrap, "", nil
		}
		return true, "", newest, nil
	}
	return true, "", "", nil
}

// goDefault builds the Go sources in dir into CacheDir/go-<inputs>/bootstrap.
func goDefault(ctx context.Context, dir string, opts Options) (Result, error) {
	need, _, _, err := GoStatus(dir)
	if err != nil || !need {
		return Result{Dir: dir}, err
	}
	parts, _, _, err := goSources(dir)
	if err != nil {
		return Result{}, err
	}
	key := fingerprint(dir, "GOOS="+opts.GOOS, "GOARCH="+getenv(opts.Env, "GOARCH"), strings.Join(parts, "\n"))
	step := "CGO_ENABLED=0 GOOS=" + opts.GOOS + " go build -trimpath -buildvcs=false -tags lambda.norpc -o bootstrap ."
	return cached(opts.CacheDir, "go-"+key, step, func(out string) error {
		env := append(append([]string(nil), opts.Env...), "CGO_ENABLED=0", "GOOS="+opts.GOOS)
		return run(ctx, dir, env, step, "go", "build", "-trimpath", "-buildvcs=false", "-tags", "lambda.norpc",
			"-o", filepath.Join(out, "bootstrap"), ".")
	})
}

// ---- npm --------------------------------------------------------------------

// npmDefault copies dir without node_modules and runs npm ci there.
func npmDefault(ctx context.Context, dir string, opts Options) (Result, error) {
	lock := false
	for _, n := range []string{"package-lock.json", "npm-shrinkwrap.json"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			lock = true
		}
	}
	if !lock {
		return Result{Dir: dir}, nil
	}
	stamp, err := Stamp(dir)
	if err != nil {
		return Result{}, err
	}
	step := "npm ci --omit=dev"
	return cached(opts.CacheDir, "npm-"+fingerprint(dir, stamp), step, func(out string) error {
		if err := copyTree(dir, out); err != nil {
			return fmt.Errorf("copying %s for npm ci: %w", dir, err)
		}
		return run(ctx, out, opts.Env, step, "npm", "ci", "--omit=dev", "--no-audit", "--no-fund")
	})
}

// Stamp hashes the names, sizes, modes and mtimes of the files under dir
// (outside directories whose names start with "." or "_", testdata and
// node_modules): it changes when a source does.
func Stamp(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s|%d|%d|%v\n", filepath.ToSlash(rel), fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// copyTree copies the files under src into dst (created), leaving out
// node_modules and .git. Symlinks are copied as the files they point to.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if p != src && (d.Name() == "node_modules" || d.Name() == ".git") {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		}
		fi, err := os.Stat(p) // follows symlinks
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", rel)
		}
		return copyFile(p, target, fi.Mode().Perm())
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ---- cache ------------------------------------------------------------------

// cached returns cacheDir/name when an earlier build made it, else builds
// into a fresh sibling with build and renames that into place, so a build
// that fails or is interrupted never leaves a half output behind.
func cached(cacheDir, name, step string, build func(out string) error) (Result, error) {
	if cacheDir == "" {
		return Result{}, fmt.Errorf("build `%s`: no cache directory to build into", step)
	}
	final := filepath.Join(cacheDir, name)
	if _, err := os.Stat(final); err == nil {
		return Result{Dir: final, Step: step, Cached: true}, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("creating the build cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, "."+name+"-*")
	if err != nil {
		return Result{}, fmt.Errorf("creating a build directory: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return Result{}, err
	}
	if err := build(tmp); err != nil {
		os.RemoveAll(tmp)
		return Result{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(final); serr == nil { // built meanwhile by another caller
			return Result{Dir: final, Step: step, Cached: true}, nil
		}
		return Result{}, fmt.Errorf("storing the build: %w", err)
	}
	return Result{Dir: final, Step: step}, nil
}

func fingerprint(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}

func getenv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
