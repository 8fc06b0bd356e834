package importrules

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/nimbus-fn/nimbus"

// rule says which module packages a package (matched by prefix) may import.
// The first matching rule applies, so more specific prefixes come first.
type rule struct {
	pkg   string
	allow []string // prefixes relative to the module; "" entries never match
}

var rules = []rule{
	// Leaves: contracts used by both writer and reader.
	{"specs/filter", nil},
	{"specs/schedexpr", nil},
	{"specs", []string{"specs/filter", "specs/schedexpr"}},
	{"driver/taskconfig", nil},
	{"driver/invokeapi", nil},
	{"autoscaler/policy", nil},
	{"gateway/discovery", nil},
	{"bundle", nil},
	{"rollout", nil},
	{"runtimes", nil},
	{"blueprints", nil},
	{"mesh", nil},
	{"driver/", []string{"driver/", "runtimes", "mesh"}},
	{"jobs", []string{"jobs", "specs", "driver/taskconfig", "driver/invokeapi", "bundle"}},
	{"gateway/", []string{"gateway/", "specs", "driver/invokeapi", "bundle", "rollout", "mesh"}},
	{"autoscaler/", []string{"autoscaler/"}},
	// Test support may reach what it supports.
	{"internal/", []string{""}},
	{"cmd/", []string{""}},
	{"e2e", []string{""}},
	{"bench/", []string{""}},
	{"examples/", nil},
}

type pkgInfo struct {
	ImportPath string
	Imports    []string
}

func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...")
	cmd.Dir = "../.."
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	dec := json.NewDecoder(&out)
	checked := 0
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		r, ok := match(rel)
		if !ok {
			if rel != "" {
				t.Errorf("%s: no import rule covers this package; add one", rel)
			}
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			if !allowed(r, rel, dep) {
				t.Errorf("%s imports %s, which the rule for %q forbids", rel, dep, r.pkg)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d packages checked; go list output looks wrong", checked)
	}
}

func match(rel string) (rule, bool) {
	for _, r := range rules {
		if rel == strings.TrimSuffix(r.pkg, "/") || strings.HasPrefix(rel, r.pkg) ||
			(!strings.HasSuffix(r.pkg, "/") && strings.HasPrefix(rel, r.pkg+"/")) {
			return r, true
		}
	}
	return rule{}, false
}

func allowed(r rule, rel, dep string) bool {
	for _, a := range r.allow {
		if a == "" && (r.pkg == "internal/" || r.pkg == "cmd/" || r.pkg == "e2e" || r.pkg == "bench/") {
			return true
		}
		if a != "" && (dep == strings.TrimSuffix(a, "/") || strings.HasPrefix(dep, a) ||
			(!strings.HasSuffix(a, "/") && strings.HasPrefix(dep, a+"/"))) {
			return true
		}
	}
	// A package may always import its own subpackages' parents within the same leaf tree.
	return strings.HasPrefix(dep, rel+"/")
}

func TestMatchAndAllow(t *testing.T) {
	cases := []struct {
		pkg, dep string
		ok       bool
	}{
		{"driver/instance", "driver/runtimeapi", true},
		{"driver/instance", "runtimes", true},
		{"driver/instance", "specs", false},
		{"driver/instance", "gateway/router", false},
		{"gateway/router", "driver/invokeapi", true},
		{"gateway/router", "driver/local", false},
		{"gateway/router", "jobs", false},
		{"jobs", "specs", true},
		{"jobs/submit", "gateway/api", false},
		{"specs", "driver/taskconfig", false},
		{"specs", "specs/filter", true},
		{"specs/filter", "specs", false},
		{"jobs", "specs/filter", true},
		{"gateway/sources", "specs/filter", true},
		{"driver/taskconfig", "specs", false},
		{"autoscaler/apm", "gateway/metrics", false},
		{"cmd/nimbus", "gateway/router", true},
		{"driver/instance", "mesh", true},
		{"gateway/server", "mesh", true},
		{"mesh", "gateway/consul", false},
	}
	for _, c := range cases {
		r, ok := match(c.pkg)
		if !ok {
			t.Fatalf("%s: no rule", c.pkg)
		}
		if got := allowed(r, c.pkg, c.dep); got != c.ok {
			t.Errorf("%s → %s: allowed=%v, want %v", c.pkg, c.dep, got, c.ok)
		}
	}
}
