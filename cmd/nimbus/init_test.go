package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/blueprints"
)

func TestInitListShowsBlueprintsThenTemplates(t *testing.T) {
	code, out, errOut := runLocalCLI(t, "", "init", "--list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	bps, tps := blueprints.List(), blueprints.Templates()
	if len(lines) != len(bps)+len(tps) {
		t.Fatalf("%d lines for %d blueprints and %d templates:\n%s", len(lines), len(bps), len(tps), out)
	}
	for i, b := range bps {
		f := strings.Fields(lines[i])
		if len(f) < 3 || f[0] != b.Name || f[1] != b.Runtime || !strings.HasSuffix(lines[i], b.Description) {
			t.Errorf("line %d = %q, want %s %s %s", i, lines[i], b.Name, b.Runtime, b.Description)
		}
	}
	for i, tp := range tps {
		line := lines[len(bps)+i]
		if f := strings.Fields(line); len(f) < 3 || f[0] != tp.Name || f[1] != "(template)" {
			t.Errorf("template line %q", line)
		}
	}
}

func TestInitRefusesBadUse(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"init"},                            // nothing to do
		{"init", "--blueprint", "hello-go"}, // no DIR
		{"init", "--blueprint", "hello-go", "--template", "x", dir}, // both
		{"init", "--list", "--blueprint", "hello-go"},
		{"init", "--blueprint", "no-such-blueprint", dir},
		{"init", "--template", "hello-go", dir}, // a blueprint, not a template
		{"init", "--blueprint", "hello-go", "--name", "bad name", dir},
	} {
		if code, _, _ := runLocalCLI(t, "", args...); code == 0 {
			t.Errorf("%q: exit 0", args)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused init wrote %d entries", len(ents))
	}
	// --name defaults to DIR's base name; a second init needs --force.
	target := filepath.Join(dir, "my-fn")
	if code, _, errOut := runLocalCLI(t, "", "init", "--blueprint", "hello-go", target); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "nimbus.hcl")); !strings.Contains(string(b), `function "my-fn"`) {
		t.Fatalf("nimbus.hcl:\n%s", b)
	}
	if code, _, errOut := runLocalCLI(t, "", "init", "--blueprint", "hello-go", target); code != 1 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("init into a non-empty dir: exit %d %s", code, errOut)
	}
	if code, _, errOut := runLocalCLI(t, "", "init", "--blueprint", "hello-go", "--force", "--name", "other", target); code != 0 {
		t.Fatalf("init --force: %s", errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "nimbus.hcl")); !strings.Contains(string(b), `function "other"`) {
		t.Fatalf("--force --name did not rewrite nimbus.hcl:\n%s", b)
	}
}

// TestEveryBlueprint scaffolds each blueprint of the catalogue (whatever
// language), validates it, runs its own unit tests with its runtime's test
// tool and runs every sample event through nimbus local invoke.
func TestEveryBlueprint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every blueprint")
	}
	for _, b := range blueprints.List() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), b.Name)
			if code, _, errOut := runLocalCLI(t, "", "init", "--blueprint", b.Name, dir); code != 0 {
				t.Fatalf("init: %s", errOut)
			}
			if code, out, errOut := runLocalCLI(t, "", "validate", dir); code != 0 {
				t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
			}
			runUnitTests(t, b, dir)
			for _, ev := range b.Events {
				code, out, errOut := runLocalCLI(t, "", "local", "invoke", "--event", filepath.Join(dir, ev.File), dir)
				want := 0
				if ev.Expect.FunctionError {
					want = 1
				}
				if code != want || !strings.Contains(out, ev.Expect.Contains) {
					t.Errorf("%s: exit %d (want %d), output lacks %q\nstdout %s\nstderr %s",
						ev.File, code, want, ev.Expect.Contains, out, errOut)
				}
			}
		})
	}
}

// runUnitTests runs the project's own tests with its language's tool.
func runUnitTests(t *testing.T, b blueprints.Info, dir string) {
	t.Helper()
	var argv []string
	var ran *regexp.Regexp // what the tool prints when at least one test ran
	env := os.Environ()
	switch b.Language {
	case "go":
		// Offline, from the module cache that built Nimbus: the go.sum
		// the blueprint writes must be complete.
		argv = []string{"go", "test", "-count=1", "./..."}
		env = append(env, "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GOPROXY=off")
		ran = regexp.MustCompile(`(?m)^ok\s`)
	case "python":
		argv = []string{"python3", "-m", "unittest", "discover", "-v"}
		ran = regexp.MustCompile(`(?m)^Ran [1-9]\d* tests?`)
	case "node":
		argv = []string{"node", "--test"}
		ran = regexp.MustCompile(`(?m)^[#ℹ] pass [1-9]`)
	default:
		t.Fatalf("no test tool for language %q", b.Language)
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		t.Skipf("%s is not on PATH: %s blueprints are not tested", argv[0], b.Language)
	}
	cmd := exec.CommandContext(context.Background(), argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	if !ran.Match(out) {
		t.Fatalf("%s ran no tests:\n%s", strings.Join(argv, " "), out)
	}
}

// TestEveryTemplateScaffolds writes each application template with
// nimbus init --template and checks that it was rendered: no .tmpl file and
// no template.json left. (The templates' own pipelines are tested with
// them; the framework is tested on a fixture in package blueprints.)
func TestEveryTemplateScaffolds(t *testing.T) {
	for _, tp := range blueprints.Templates() {
		t.Run(tp.Name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "app")
			code, out, errOut := runLocalCLI(t, "", "init", "--template", tp.Name, dir)
			if code != 0 || !strings.Contains(out, "wrote template "+tp.Name) {
				t.Fatalf("init --template: exit %d\n%s%s", code, out, errOut)
			}
			n := 0
			err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				n++
				if strings.HasSuffix(p, ".tmpl") || d.Name() == "template.json" {
					t.Errorf("%s was written", p)
				}
				return nil
			})
			if err != nil || n == 0 {
				t.Fatalf("walk: %d files, %v", n, err)
			}
		})
	}
}
