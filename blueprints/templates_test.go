package blueprints_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/blueprints"
)

// requires reads the module → version pairs of a go.mod's require lines.
func requires(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	block := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.SplitN(sc.Text(), "//", 2)[0])
		switch {
		case line == "require (":
			block = true
			continue
		case block && line == ")":
			block = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !block:
			continue
		}
		if f := strings.Fields(line); len(f) == 2 {
			out[f[0]] = f[1]
		}
	}
	return out
}

func lines(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out[l] = true
		}
	}
	return out
}

// TestTemplateModulesMatchNimbus: a Go template's go.mod requires the
// versions Nimbus's go.mod does, and its go.sum lines for them are
// Nimbus's, so a project scaffolded in CI builds from the module cache
// that built Nimbus, and its go.sum was not made up.
func TestTemplateModulesMatchNimbus(t *testing.T) {
	ours := requires(t, filepath.Join("..", "go.mod"))
	ourSum := lines(t, filepath.Join("..", "go.sum"))
	for _, ti := range blueprints.Templates() {
		t.Run(ti.Name, func(t *testing.T) {
			dir := t.TempDir()
			if err := blueprints.Scaffold(ti.Name, dir, blueprints.Data{Name: "demo", Module: "example.com/demo"}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
				t.Skip("not a Go project")
			}
			reqs := requires(t, filepath.Join(dir, "go.mod"))
			if len(reqs) == 0 {
				t.Fatal("go.mod requires nothing")
			}
			sum := lines(t, filepath.Join(dir, "go.sum"))
			for mod, v := range reqs {
				if want, ok := ours[mod]; ok && want != v {
					t.Errorf("go.mod requires %s %s; Nimbus builds with %s", mod, v, want)
				}
				n := 0
				for l := range sum {
					if strings.HasPrefix(l, mod+" "+v+" ") || strings.HasPrefix(l, mod+" "+v+"/go.mod ") {
						n++
						if !ourSum[l] {
							t.Errorf("go.sum line %q is not in Nimbus's go.sum", l)
						}
					}
				}
				if n != 2 {
					t.Errorf("go.sum has %d lines for %s %s, want 2", n, mod, v)
				}
			}
		})
	}
}
