package blueprints

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// The version and go.sum lines Go blueprints pin must be the ones Nimbus
// builds with, or scaffolded projects would not build from its module cache.
func TestAWSLambdaGoMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var version string
	sc := bufio.NewScanner(bytes.NewReader(mod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "github.com/aws/aws-lambda-go" {
			version = f[1]
		}
	}
	if version != AWSLambdaGoVersion {
		t.Fatalf("go.mod requires aws-lambda-go %q, AWSLambdaGoVersion is %q: update blueprints.go", version, AWSLambdaGoVersion)
	}
	sum, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(awsLambdaGoSum), "\n") {
		if !bytes.Contains(sum, []byte(line+"\n")) {
			t.Errorf("go.sum lacks %q: update awsLambdaGoSum", line)
		}
	}
}

func TestCatalogueLoads(t *testing.T) {
	if _, err := defaultCatalog(); err != nil {
		t.Fatal(err)
	}
	bps := List()
	if len(bps) == 0 {
		t.Fatal("no blueprints")
	}
	for _, b := range bps {
		if b.Template || b.NeedsBuild != (b.Language == "go") || len(b.Events) == 0 {
			t.Errorf("%s: %+v", b.Name, b)
		}
	}
	for _, tp := range Templates() {
		if !tp.Template {
			t.Errorf("%s: not marked as a template", tp.Name)
		}
	}
	info, err := Lookup("hello-go")
	if err != nil || info.Runtime != "provided.al2023" {
		t.Fatalf("Lookup(hello-go) = %+v, %v", info, err)
	}
	if !info.UsesModule {
		t.Errorf("hello-go does not use .Module")
	}
	if _, err := Lookup("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup(nope): %v", err)
	}
}

func TestLoadRejectsBadMetadata(t *testing.T) {
	good := `{"name":"x-go","runtime":"provided.al2023","language":"go","description":"d","events":[{"file":"events/a.json","expect":{"contains":"a"}}]}`
	cases := map[string]struct {
		meta  string
		extra map[string]string
		want  string
	}{
		"unknown field":  {strings.Replace(good, `"description"`, `"descr":"",  "description"`, 1), nil, "unknown field"},
		"wrong name":     {strings.Replace(good, `"x-go"`, `"y-go"`, 1), nil, "differs from the directory"},
		"bad language":   {strings.Replace(good, `"go","description"`, `"rust","description"`, 1), nil, "language"},
		"runtime misfit": {strings.Replace(good, `provided.al2023`, `python3.12`, 1), nil, "does not fit"},
		"missing event":  {strings.Replace(good, `events/a.json`, `events/zz.json`, 1), nil, "events/zz.json"},
		"unlisted event": {good, map[string]string{"events/b.json": "{}"}, "events/b.json has no entry"},
		"empty expect":   {strings.Replace(good, `"contains":"a"`, `"contains":""`, 1), nil, "expect.contains"},
		"two lines":      {strings.Replace(good, `"d"`, `"a\nb"`, 1), nil, "one non-empty line"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"catalog/x-go/blueprint.json": {Data: []byte(c.meta)},
				"catalog/x-go/events/a.json":  {Data: []byte("{}")},
				"templates/README.md":         {Data: []byte("")},
			}
			for p, d := range c.extra {
				fsys["catalog/x-go/"+p] = &fstest.MapFile{Data: []byte(d)}
			}
			_, err := load(fsys)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
	// The good one loads, and a template may not share a blueprint's name.
	fsys := fstest.MapFS{
		"catalog/x-go/blueprint.json":  {Data: []byte(good)},
		"catalog/x-go/events/a.json":   {Data: []byte("{}")},
		"templates/README.md":          {Data: []byte("")},
		"templates/x-go/template.json": {Data: []byte(`{"name":"x-go","description":"t"}`)},
	}
	if _, err := load(fsys); err == nil || !strings.Contains(err.Error(), "both a blueprint and a template") {
		t.Fatalf("duplicate name: %v", err)
	}
	delete(fsys, "templates/x-go/template.json")
	fsys["catalog/x-go/run.sh"] = &fstest.MapFile{Data: []byte("#!/bin/sh\necho hi\n")}
	fsys["catalog/x-go/cfg.txt.tmpl"] = &fstest.MapFile{Data: []byte(`{{.Name}} {{"${{ x }}"}}`)}
	cat, err := open(fsys)
	if err != nil || !cat.entries["x-go"].info.NeedsBuild {
		t.Fatalf("good catalogue: %+v, %v", cat, err)
	}
	out, err := cat.render("x-go", Data{Name: "fn"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]file{}
	for _, f := range out {
		got[f.name] = f
	}
	if f := got["run.sh"]; f.mode != 0o755 {
		t.Errorf("run.sh mode %v, want 0755 (it starts with #!)", f.mode)
	}
	if f := got["events/a.json"]; f.mode != 0o644 {
		t.Errorf("events/a.json mode %v", f.mode)
	}
	if f := got["cfg.txt"]; string(f.data) != "fn ${{ x }}" {
		t.Errorf("cfg.txt = %q", f.data)
	}
	if _, ok := got["blueprint.json"]; ok || len(got) != 3 {
		t.Errorf("rendered %v", got)
	}
	// A key Data lacks is an error, not an empty string.
	fsys["catalog/x-go/cfg.txt.tmpl"] = &fstest.MapFile{Data: []byte(`{{.Nope}}`)}
	if _, err := cat.render("x-go", Data{Name: "fn"}); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("missing key: %v", err)
	}
}

func TestScaffoldRendersAndRefusesNonEmpty(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proj")
	if err := Scaffold("hello-go", dir, Data{Name: "greeter", Module: "example.com/greeter"}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("go.mod"); !strings.Contains(got, "module example.com/greeter\n") ||
		!strings.Contains(got, "github.com/aws/aws-lambda-go "+AWSLambdaGoVersion) {
		t.Errorf("go.mod:\n%s", got)
	}
	if got := read("go.sum"); got != awsLambdaGoSum {
		t.Errorf("go.sum:\n%s", got)
	}
	if got := read("nimbus.hcl"); !strings.Contains(got, `function "greeter" {`) {
		t.Errorf("nimbus.hcl:\n%s", got)
	}
	for _, gone := range []string{"blueprint.json", "go.mod.tmpl", "nimbus.hcl.tmpl"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written: %v", gone, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "main.go"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("main.go: %v %v", fi, err)
	}

	err = Scaffold("hello-go", dir, Data{Name: "greeter"})
	if !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("second scaffold: %v", err)
	}
	// Force replaces what the blueprint writes and leaves the rest.
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mine.txt"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ScaffoldWith("hello-go", dir, Data{Name: "greeter"}, Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := read("main.go"); !strings.Contains(got, "lambda.Start") {
		t.Errorf("main.go not replaced: %q", got)
	}
	if got := read("mine.txt"); got != "keep" {
		t.Errorf("mine.txt: %q", got)
	}
	if got := read("go.mod"); !strings.Contains(got, "module greeter\n") {
		t.Errorf("module default is not the name:\n%s", got)
	}
}

func TestScaffoldRejectsBadData(t *testing.T) {
	for _, d := range []Data{{Name: ""}, {Name: "a b"}, {Name: "ok", Module: "bad module"}, {Name: "ok", Module: "x\"y"}} {
		if err := Scaffold("hello-go", t.TempDir(), d); err == nil {
			t.Errorf("%+v accepted", d)
		}
	}
	if err := Scaffold("nope", t.TempDir(), Data{Name: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown blueprint: %v", err)
	}
}

func TestZipIsDeterministicAndComplete(t *testing.T) {
	a, err := Zip("hello-go", Data{Name: "greeter"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Zip("hello-go", Data{Name: "greeter"})
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("two zips differ (err %v)", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(rc)
		rc.Close()
		got[f.Name] = string(body)
	}
	for _, want := range []string{"main.go", "main_test.go", "go.mod", "go.sum", "nimbus.hcl", "events/direct.json", "README.md"} {
		if _, ok := got[want]; !ok {
			t.Errorf("zip lacks %s (has %v)", want, keys(got))
		}
	}
	if _, ok := got["blueprint.json"]; ok {
		t.Error("zip holds blueprint.json")
	}
	if !strings.Contains(got["nimbus.hcl"], `function "greeter"`) {
		t.Errorf("nimbus.hcl not rendered: %s", got["nimbus.hcl"])
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A template (the fixture in testdata) scaffolds with hidden directories,
// nested .tmpl files, a literal "${{" and an executable script.
func TestTemplateFixtureScaffolds(t *testing.T) {
	cat, err := open(os.DirFS("testdata/fixture"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cat.list(true); len(got) != 1 || got[0].Name != "mini-app" || !got[0].Template || got[0].NeedsBuild {
		t.Fatalf("templates %+v", got)
	}
	if got := cat.list(false); len(got) != 0 {
		t.Fatalf("blueprints %+v", got)
	}
	if err := cat.scaffold("mini-app", t.TempDir(), Data{Name: "shop", Module: "example.com/shop"}, Options{}); err != nil {
		t.Fatalf("the fixture uses .Module in README.md.tmpl: %v", err)
	}
	// Without .Module in any .tmpl, a module is refused, not ignored.
	delete(cat.entries, "mini-app")
	cat2, err := open(fstest.MapFS{
		"templates/plain/template.json": {Data: []byte(`{"name":"plain","description":"d"}`)},
		"templates/plain/a.txt.tmpl":    {Data: []byte(`{{.Name}}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cat2.scaffold("plain", t.TempDir(), Data{Name: "x", Module: "m"}, Options{}); !errors.Is(err, ErrModuleUnused) {
		t.Fatalf("module for a project without one: %v", err)
	}
	if err := cat2.scaffold("plain", t.TempDir(), Data{Name: "x"}, Options{}); err != nil {
		t.Fatal(err)
	}
	cat, err = open(os.DirFS("testdata/fixture"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := cat.scaffold("mini-app", dir, Data{Name: "shop", Module: "example.com/shop"}, Options{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"README.md":                "# shop\n\nModule example.com/shop.\n",
		".github/workflows/ci.yml": "NOMAD_TOKEN: ${{ secrets.NOMAD_TOKEN }}",
		"functions/api/nimbus.hcl": `function "shop-api" {`,
		"functions/api/app.py":     "def handler(event, context):",
	}
	for name, sub := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !strings.Contains(string(b), sub) {
			t.Errorf("%s: %q (%v), want it to contain %q", name, b, err, sub)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "scripts", "deploy.sh"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("deploy.sh: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "template.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("template.json written: %v", err)
	}
}

// Every blueprint names its handler (what the console creates a function
// from its Zip with), as its spec sets it.
func TestEveryBlueprintNamesItsHandler(t *testing.T) {
	want := map[string]string{"go": "bootstrap", "python": "app.handler", "node": "index.handler"}
	for _, b := range List() {
		if b.Handler != want[b.Language] {
			t.Errorf("%s: handler %q, want %q", b.Name, b.Handler, want[b.Language])
		}
	}
}
