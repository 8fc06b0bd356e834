package runtimes

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestManaged(t *testing.T) {
	for runtime, want := range map[string]bool{
		"python3.8": true, "python3.13": true, "python3.14": true,
		"nodejs18.x": true, "nodejs22.x": true, "nodejs24.x": true,
		"provided": false, "provided.al2023": false, "python2.7": false, "python3": false,
		"python3.x": false, "nodejs": false, "nodejs20": false, "java21": false, "": false,
		" python3.12": false, "python3.12\n": false,
	} {
		if got := Managed(runtime); got != want {
			t.Errorf("Managed(%q) = %v, want %v", runtime, got, want)
		}
	}
}

func TestInstallWritesEmbeddedBootstraps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runtimes")
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"python/bootstrap.py", "nodejs/bootstrap.mjs"} {
		want, err := bootstraps.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) || len(got) == 0 {
			t.Errorf("%s differs from the embedded copy", name)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v, want 0755", name, fi.Mode().Perm())
		}
	}
}

func TestInstallIsIdempotentAndRepairs(t *testing.T) {
	dir := t.TempDir()
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "python", "bootstrap.py")
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Errorf("unchanged bootstrap was rewritten")
	}

	// A damaged copy (content or mode) is replaced.
	if err := os.WriteFile(path, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	want, _ := bootstraps.ReadFile("python/bootstrap.py")
	got, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(got) != string(want) || fi.Mode().Perm() != 0o755 {
		t.Errorf("damaged bootstrap not repaired (mode %v)", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("leftover files next to the bootstrap: %v", entries)
	}
}

func TestInstallConcurrentCallers(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- Install(dir) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, name := range []string{"python/bootstrap.py", "nodejs/bootstrap.mjs"} {
		want, _ := bootstraps.ReadFile(name)
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s after concurrent installs: err %v, equal %v", name, err, string(got) == string(want))
		}
		entries, _ := os.ReadDir(filepath.Dir(filepath.Join(dir, name)))
		if len(entries) != 1 {
			t.Errorf("leftover temp files: %v", entries)
		}
	}
}

func TestInstallIntoUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Install(filepath.Join(file, "sub")); err == nil {
		t.Fatal("Install under a regular file succeeded")
	}
}

// fakePath makes a PATH directory holding executables with the given names
// and bodies, so lookups see exactly these.
func fakePath(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	// A versioned python3.12 on PATH is not used: such names are often
	// broken shims (pyenv).
	bin := fakePath(t, map[string]string{"python3": "", "python3.12": "", "node": ""})
	t.Setenv("PATH", bin)

	cases := []struct {
		runtime string
		want    []string
	}{
		{"python3.12", []string{filepath.Join(bin, "python3"), "-u", filepath.Join(dir, "python", "bootstrap.py")}},
		{"python3.9", []string{filepath.Join(bin, "python3"), "-u", filepath.Join(dir, "python", "bootstrap.py")}},
		{"nodejs22.x", []string{filepath.Join(bin, "node"), filepath.Join(dir, "nodejs", "bootstrap.mjs")}},
	}
	for _, tc := range cases {
		got, err := Command(dir, tc.runtime)
		if err != nil {
			t.Errorf("Command(%s): %v", tc.runtime, err)
			continue
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("Command(%s) = %q, want %q", tc.runtime, got, tc.want)
		}
	}
}

func TestCommandRelativeDirBecomesAbsolute(t *testing.T) {
	t.Setenv("PATH", fakePath(t, map[string]string{"python3": ""}))
	t.Chdir(t.TempDir())
	if err := Install("rt"); err != nil {
		t.Fatal(err)
	}
	argv, err := Command("rt", "python3.11")
	if err != nil {
		t.Fatal(err)
	}
	if script := argv[len(argv)-1]; !filepath.IsAbs(script) {
		t.Errorf("script path %q is relative; the bootstrap runs in the task root", script)
	}
}

func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", fakePath(t, nil))

	if _, err := Command(dir, "provided.al2023"); !errors.Is(err, ErrUnknownRuntime) {
		t.Errorf("provided.al2023: %v, want ErrUnknownRuntime", err)
	}
	_, err := Command(dir, "python3.12")
	if !errors.Is(err, ErrNoInterpreter) || !strings.Contains(err.Error(), "needs python3") {
		t.Errorf("python without interpreter: %v", err)
	}
	if _, err := Command(dir, "nodejs20.x"); !errors.Is(err, ErrNoInterpreter) {
		t.Errorf("node without interpreter: %v", err)
	}

	t.Setenv("PATH", fakePath(t, map[string]string{"node": ""}))
	if _, err := Command(t.TempDir(), "nodejs20.x"); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("Command on an empty dir: %v, want a not-installed error", err)
	}
}

func TestDetectRealInterpreters(t *testing.T) {
	found := map[string]Interpreter{}
	for _, in := range Detect() {
		found[in.Name] = in
	}
	for _, name := range []string{"python3", "node"} {
		path, err := exec.LookPath(name)
		if err != nil {
			if _, ok := found[name]; ok {
				t.Errorf("%s reported but not on PATH", name)
			}
			continue
		}
		in, ok := found[name]
		if !ok {
			t.Errorf("%s on PATH (%s) not detected", name, path)
			continue
		}
		out, err := exec.Command(path, "--version").CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if in.Path != path || in.Version == "" || !strings.Contains(string(out), in.Version) {
			t.Errorf("detected %+v; --version says %q", in, out)
		}
	}
}

func TestDetectSkipsOldAndBrokenInterpreters(t *testing.T) {
	t.Setenv("PATH", fakePath(t, map[string]string{
		"python3": "echo 'Python 3.7.17'",
		"node":    "exit 3",
	}))
	if got := Detect(); len(got) != 0 {
		t.Errorf("Detect() = %+v, want nothing", got)
	}
	t.Setenv("PATH", fakePath(t, map[string]string{
		"python3": "echo 'Python 3.13.0rc1'",
		"node":    "echo v22.11.0",
	}))
	got := Detect()
	if len(got) != 2 || got[0].Version != "3.13.0rc1" || got[1].Version != "22.11.0" {
		t.Errorf("Detect() = %+v", got)
	}
}

func TestAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v            string
		major, minor int
		want         bool
	}{
		{"3.8.0", 3, 8, true}, {"3.7.17", 3, 8, false}, {"3.13rc1", 3, 8, true}, {"4.0", 3, 8, true},
		{"18.0.0", 18, 0, true}, {"16.20.2", 18, 0, false}, {"22", 18, 0, true}, {"x.y", 3, 8, false},
	} {
		if got := atLeast(tc.v, tc.major, tc.minor); got != tc.want {
			t.Errorf("atLeast(%q, %d, %d) = %v", tc.v, tc.major, tc.minor, got)
		}
	}
}
