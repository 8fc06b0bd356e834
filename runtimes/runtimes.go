package runtimes

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// bootstraps holds the runtime clients, laid out as Install writes them.
//
//go:embed python/bootstrap.py nodejs/bootstrap.mjs
var bootstraps embed.FS

var (
	// ErrUnknownRuntime: the runtime is not a managed runtime (provided.*
	// runtimes bring their own bootstrap).
	ErrUnknownRuntime = errors.New("not a managed runtime")
	// ErrNoInterpreter: the runtime's interpreter is not on PATH.
	ErrNoInterpreter = errors.New("interpreter not found on PATH")
)

// Interpreter is a language interpreter found on PATH.
type Interpreter struct {
	// Name is the executable's name: "python3" or "node".
	Name string
	// Path is the absolute path LookPath found.
	Path string
	// Version is the interpreter's version without prefix, e.g. "3.11.7" or "20.20.2".
	Version string
}

// family describes how to start one language's bootstrap.
type family struct {
	script   string   // bootstrap path inside the install dir, slash-separated
	exe      string   // the interpreter's executable name on PATH
	flags    []string // interpreter flags before the script
	minMajor int      // oldest supported interpreter (major.minor)
	minMinor int
}

var (
	pythonRuntime = regexp.MustCompile(`^python3\.\d+$`)
	nodeRuntime   = regexp.MustCompile(`^nodejs\d+\.x$`)

	// The runtime's minor version does not pick the interpreter: versioned
	// names such as python3.12 are often on PATH without working (pyenv
	// shims answer "command not found" unless that version is selected).
	python = family{
		script: "python/bootstrap.py",
		exe:    "python3",
		// Unbuffered stdio, so print() output reaches the log as it happens.
		flags:    []string{"-u"},
		minMajor: 3, minMinor: 8,
	}
	node = family{
		script:   "nodejs/bootstrap.mjs",
		exe:      "node",
		minMajor: 18,
	}
)

// lookup maps a runtime string to its family.
func lookup(runtime string) (family, bool) {
	switch {
	case pythonRuntime.MatchString(runtime):
		return python, true
	case nodeRuntime.MatchString(runtime):
		return node, true
	}
	return family{}, false
}

// Managed reports whether runtime ("python3.N", "nodejsNN.x") is run by one of
// the bootstraps in this package.
func Managed(runtime string) bool {
	_, ok := lookup(runtime)
	return ok
}

// Command returns the argv that starts the bootstrap for runtime from dir (a
// directory Install wrote): the interpreter found on PATH ("python3" for
// python3.N, "node" for nodejsNN.x), its flags and the absolute path of the
// bootstrap script. The process must run with the Lambda environment
// variables set and the task root as its working directory.
func Command(dir, runtime string) ([]string, error) {
	fam, ok := lookup(runtime)
	if !ok {
		return nil, fmt.Errorf("runtime %q: %w", runtime, ErrUnknownRuntime)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("runtimes dir %s: %w", dir, err)
	}
	script := filepath.Join(abs, filepath.FromSlash(fam.script))
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("bootstrap for %s (runtimes not installed in %s?): %w", runtime, dir, err)
	}
	exe, err := exec.LookPath(fam.exe)
	if err != nil {
		return nil, fmt.Errorf("runtime %s needs %s: %w", runtime, fam.exe, ErrNoInterpreter)
	}
	argv := append([]string{exe}, fam.flags...)
	return append(argv, script), nil
}

// Install writes the embedded bootstraps under dir (python/bootstrap.py,
// nodejs/bootstrap.mjs), executable. Files that already hold the right
// content and mode are left alone; others are replaced atomically (temp file
// and rename), so concurrent callers and running bootstraps never see a
// partial file.
func Install(dir string) error {
	return fs.WalkDir(bootstraps, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := bootstraps.ReadFile(name)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(dir, filepath.FromSlash(name)), data, 0o755)
	})
}

func writeFile(path string, data []byte, mode fs.FileMode) error {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == mode {
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
			return nil
		}
	}
	parent := filepath.Dir(path)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("installing runtime: %w", err)
	}
	tmp, err := os.CreateTemp(parent, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("installing runtime: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("installing runtime %s: %w", path, err)
	}
	return nil
}

// Detect reports the supported interpreters on PATH ("python3" ≥ 3.8,
// "node" ≥ 18), running each with --version. Missing, failing or too old
// interpreters are left out.
func Detect() []Interpreter {
	var found []Interpreter
	for _, fam := range []family{python, node} {
		path, err := exec.LookPath(fam.exe)
		if err != nil {
			continue
		}
		v, err := interpreterVersion(path)
		if err != nil || !atLeast(v, fam.minMajor, fam.minMinor) {
			continue
		}
		found = append(found, Interpreter{Name: fam.exe, Path: path, Version: v})
	}
	return found
}

// interpreterVersion runs `path --version` and returns the bare version
// ("Python 3.11.7" and "v20.20.2" become "3.11.7" and "20.20.2").
func interpreterVersion(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	v := strings.TrimSpace(string(out))
	v = strings.TrimPrefix(v, "Python ")
	v = strings.TrimPrefix(v, "v")
	if v == "" || strings.ContainsAny(v, " \n") {
		return "", fmt.Errorf("%s --version: unexpected output %q", path, out)
	}
	return v, nil
}

// atLeast reports whether version "X.Y[.Z…]" is at least major.minor.
func atLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	x, err := strconv.Atoi(parts[0])
	if err != nil {
		return false
	}
	y := 0
	if len(parts) > 1 {
		// Only the leading digits count: "13rc1" is minor 13.
		digits := parts[1]
		if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			digits = digits[:i]
		}
		if y, err = strconv.Atoi(digits); err != nil {
			return false
		}
	}
	return x > major || (x == major && y >= minor)
}
