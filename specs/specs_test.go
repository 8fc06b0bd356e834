package specs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

func mustLoad(t *testing.T, p string) *File {
	t.Helper()
	f, diags := Load(p, &Options{Env: testEnv})
	if diags.HasErrors() {
		t.Fatalf("%s:\n%s", p, FormatDiagnostics(diags, nil))
	}
	return f
}

func mustParse(t *testing.T, src string, opts *Options) *File {
	t.Helper()
	f, diags := ParseFile("test.hcl", []byte(src), opts)
	if diags.HasErrors() {
		t.Fatalf("parse:\n%s", FormatDiagnostics(diags, nil))
	}
	return f
}

// stripLocal clears the fields that are not part of the canonical form.
func stripLocal(f *File) {
	for _, fn := range f.Functions {
		fn.Pos, fn.Dir, fn.Build = "", "", nil
	}
	for _, l := range f.Layers {
		l.Pos, l.Dir = "", ""
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, in := range goldenInputs(t, "testdata/valid") {
		f := mustLoad(t, in)
		for _, fn := range f.Functions {
			b, err := Encode(fn)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(b)
			if err != nil {
				t.Fatalf("%s: decoding %s: %v", in, fn.Name, err)
			}
			want := *fn
			want.Pos, want.Dir, want.Build = "", "", nil
			if !reflect.DeepEqual(back, &want) {
				t.Errorf("%s: %s changed in the round trip:\n%s", in, fn.Name, b)
			}
			again, _ := Encode(back)
			if !bytes.Equal(again, b) {
				t.Errorf("%s: %s: Encode(Decode(x)) != x", in, fn.Name)
			}
		}
		b, err := EncodeFile(f)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeFile(b)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		stripLocal(f)
		if !reflect.DeepEqual(back, f) {
			t.Errorf("%s: file changed in the round trip", in)
		}
	}
}

// TestEncodeIsCanonical: keys sorted at every level, no whitespace, no HTML
// escaping, and the order of blocks in the source does not matter.
func TestEncodeIsCanonical(t *testing.T) {
	a := mustParse(t, `
function "b" {
  runtime = "provided"
  code { dir = "b" }
  alias "z" { version = 1 }
  alias "a" { version = 2 }
  environment = { Z = "<&>", A = "1" }
}
function "a" {
  runtime = "provided"
  code { dir = "a" }
}
`, nil)
	b := mustParse(t, `
function "a" {
  code { dir = "a" }
  runtime = "provided"
}
function "b" {
  environment = { A = "1", Z = "<&>" }
  alias "a" { version = "2" }
  code { dir = "b" }
  alias "z" { version = 1 }
  runtime = "provided"
}
`, nil)
	ja, err := EncodeFile(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := EncodeFile(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("equal specs encode differently:\n%s\n%s", ja, jb)
	}
	if bytes.ContainsAny(ja, " \n\t") {
		t.Errorf("canonical form has whitespace: %s", ja)
	}
	if !bytes.Contains(ja, []byte(`"Z":"<&>"`)) {
		t.Errorf("canonical form escapes HTML: %s", ja)
	}
	checkSortedKeys(t, ja)
}

func checkSortedKeys(t *testing.T, data []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object  bool
		lastKey string
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k := tok.(string)
			if top.lastKey != "" && k <= top.lastKey {
				t.Fatalf("key %q after %q: not sorted", k, top.lastKey)
			}
			top.lastKey, top.wantKey = k, false
			continue
		}
		if top != nil && top.object {
			top.wantKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

func TestDecodeFillsDefaults(t *testing.T) {
	fn, err := Decode([]byte(`{"name":"x","runtime":"provided","code":{"dir":"."},"url":{},"future_field":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if fn.MemoryMB != 128 || fn.Timeout != "3s" || fn.EphemeralStorageMB != 512 || fn.EnvironmentsPerInstance != 1 {
		t.Errorf("defaults not filled: %+v", fn)
	}
	if fn.URL.Auth != AuthNone || fn.URL.InvokeMode != InvokeModeBuffered || fn.URL.Qualifier != QualifierLatest {
		t.Errorf("url defaults not filled: %+v", fn.URL)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`not json`, "decoding function spec"},
		{`{"runtime":"provided","code":{"dir":"."}}`, "no name"},
		{`{"name":"x","runtime":"provided","code":{"dir":"."},"memory_mb":64}`, `function "x".memory_mb: memory_mb must be between 128 and 10240; got 64`},
		{`{"name":"x","runtime":"provided","code":{"dir":"."},"url":{"cors":{"allow_methods":["OPTIONS"]}}}`, `function "x".url.cors.allow_methods[0]: method "OPTIONS"`},
		{`{"name":"x","runtime":"provided","code":{"dir":"."},"aliases":[null]}`, "null in aliases"},
		{`{"name":"x","runtime":"cobol","code":{"dir":"."}}`, `runtime "cobol" is not supported`},
		{`{"name":"x","runtime":"provided"}`, "code is missing"},
	} {
		_, err := Decode([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%s) = %v; want an error containing %q", tc.in, err, tc.want)
		}
	}
	if _, err := DecodeFile([]byte(`{"functions":[{"name":"x","runtime":"provided","code":{"dir":"."},"layers":["nope"]}]}`)); err == nil || !strings.Contains(err.Error(), `layer "nope" is not declared`) {
		t.Errorf("DecodeFile accepted an unknown layer: %v", err)
	}
	if _, err := Encode(nil); err == nil {
		t.Error("Encode(nil) succeeded")
	}
}

func TestValidateModelWithoutSource(t *testing.T) {
	f := &File{Functions: []*Function{{
		Name: "x", Runtime: "provided", Code: &Code{Dir: "."},
		MemoryMB: 128, Timeout: "3s", EphemeralStorageMB: 512, EnvironmentsPerInstance: 1,
		Async: &AsyncConfig{MaxRetries: 2, MaxEventAge: "1h", OnFailure: &Destination{Function: "y"}},
	}}}
	diags := Validate(f)
	if len(diags) != 1 || diags[0].Subject != nil || diags[0].Summary != `function "x".async.on_failure.function: destination function "y" is not declared` {
		t.Fatalf("got %q", FormatDiagnostics(diags, nil))
	}
}

func TestPosDirAndLookup(t *testing.T) {
	f := mustLoad(t, "testdata/valid/full.hcl")
	fn := f.Function("orders-api")
	if fn == nil || f.Function("nope") != nil {
		t.Fatal("Function lookup")
	}
	if fn.Pos != "testdata/valid/full.hcl:37:1" || fn.Dir != "testdata/valid" {
		t.Errorf("Pos %q Dir %q", fn.Pos, fn.Dir)
	}
	l := f.Layer("deps")
	if l == nil || f.Layer("nope") != nil || l.Pos != "testdata/valid/full.hcl:22:1" || l.Dir != "testdata/valid" {
		t.Errorf("layer lookup: %+v", l)
	}
	// Multi-file directories report each block's own file.
	m := mustLoad(t, "testdata/valid/multi")
	if got := m.Function("resize").Pos; got != filepath.Join("testdata/valid/multi", "functions.hcl")+":3:1" {
		t.Errorf("multi Pos %q", got)
	}
}

func TestVariables(t *testing.T) {
	src := `
variable "memory" { type = number }
variable "zones" {
  type    = list(string)
  default = ["a"]
}
variable "name" { default = "x" }
function "f" {
  runtime   = "provided"
  memory_mb = var.memory
  code { dir = "." }
  placement { datacenters = var.zones }
  environment = { NAME = var.name, HOME_DIR = env("HOME"), MISSING = env("NOPE") }
}`
	f := mustParse(t, src, &Options{
		Vars:   map[string]string{"memory": "1024", "zones": `["dc1", "dc2"]`},
		Values: map[string]cty.Value{"name": cty.StringVal("typed")},
		Env:    func(k string) string { return map[string]string{"HOME": "/home/n"}[k] },
	})
	fn := f.Function("f")
	if fn.MemoryMB != 1024 || !reflect.DeepEqual(fn.Placement.Datacenters, []string{"dc1", "dc2"}) {
		t.Errorf("vars not applied: %d %v", fn.MemoryMB, fn.Placement.Datacenters)
	}
	if fn.Environment["NAME"] != "typed" || fn.Environment["HOME_DIR"] != "/home/n" || fn.Environment["MISSING"] != "" {
		t.Errorf("environment: %v", fn.Environment)
	}

	// Without Env, env() sees an empty environment.
	f = mustParse(t, src, &Options{Vars: map[string]string{"memory": "256"}})
	if got := f.Function("f").Environment["HOME_DIR"]; got != "" {
		t.Errorf("env() with nil Env = %q", got)
	}

	for _, tc := range []struct {
		opts *Options
		want string
	}{
		{&Options{}, `No value for variable "memory"`},
		{&Options{Vars: map[string]string{"memory": "lots"}}, `Variables not allowed`},
		{&Options{Vars: map[string]string{"memory": "256", "other": "1"}}, `undeclared variable "other"`},
		{&Options{Vars: map[string]string{"memory": "256", "zones": "1"}}, `Invalid value for variable "zones"`},
	} {
		_, diags := ParseFile("test.hcl", []byte(src), tc.opts)
		if got := FormatDiagnostics(diags, nil); !strings.Contains(got, tc.want) {
			t.Errorf("opts %+v: got %q, want %q", tc.opts, got, tc.want)
		}
	}
}

func TestFileFunction(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "event.json"), []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := func(arg string) []byte {
		return []byte(`function "f" {
  runtime = "provided"
  code { dir = "." }
  environment = { EVENT = file("` + arg + `"), HAS = tostring(fileexists("event.json")) }
}`)
	}
	f, diags := ParseFile(filepath.Join(dir, "nimbus.hcl"), src("event.json"), nil)
	if diags.HasErrors() {
		t.Fatal(FormatDiagnostics(diags, nil))
	}
	if env := f.Function("f").Environment; env["EVENT"] != `{"a":1}` || env["HAS"] != "true" {
		t.Errorf("environment %v", env)
	}
	for arg, want := range map[string]string{"sub": "not a regular file", "nope.txt": "no such file"} {
		_, diags := ParseFile(filepath.Join(dir, "nimbus.hcl"), src(arg), nil)
		if got := FormatDiagnostics(diags, nil); !strings.Contains(got, want) {
			t.Errorf("file(%q): %q, want %q", arg, got, want)
		}
	}
}

func TestNothingForTheHostileInput(t *testing.T) {
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	for name, src := range map[string]string{
		"nesting":  "locals { x = " + deep + " }",
		"big":      strings.Repeat("#", MaxFileBytes+1),
		"empty":    "",
		"garbage":  "\x00\xff{{{",
		"labels":   `function { }`,
		"nulls":    `function "f" { runtime = null  code { dir = null } }`,
		"unknown":  `function "f" { runtime = "provided" code { dir = "." } memory_mb = 1e40 }`,
		"fraction": `function "f" { runtime = "provided" code { dir = "." } memory_mb = 128.5 }`,
	} {
		f, diags := ParseFile("x.hcl", []byte(src), nil)
		if name == "empty" {
			if f == nil || len(f.Functions) != 0 || diags.HasErrors() {
				t.Errorf("empty: %v %v", f, diags)
			}
			continue
		}
		if f != nil || !diags.HasErrors() {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFormat(t *testing.T) {
	in := "\n\n# comment\nfunction \"a\"{\nruntime=\"provided\"\n\n\n\nhandler   =   \"x.y\"\n  environment = {\n  A = <<EOT\nline one\n\n\n\nline five\nEOT\n}\n}\n\n\n"
	want := "# comment\nfunction \"a\" {\n  runtime = \"provided\"\n\n  handler = \"x.y\"\n  environment = {\n    A = <<EOT\nline one\n\n\n\nline five\nEOT\n  }\n}\n"
	if got := string(Format([]byte(in))); got != want {
		t.Errorf("Format:\n%s\nwant:\n%s", got, want)
	}
	if got := Format(nil); len(got) != 0 {
		t.Errorf("Format(nil) = %q", got)
	}
	// Comment lines are not blank lines: the one blank line after a
	// comment block stays, and runs of blank lines after it shrink to one.
	for in, want := range map[string]string{
		"# one\n# two\n# three\n\nx = 1\n": "# one\n# two\n# three\n\nx = 1\n",
		"# one\n# two\n\n\n\nx = 1\n":      "# one\n# two\n\nx = 1\n",
		"x = 1 # one\n# two\n\ny = 2\n":    "x = 1 # one\n# two\n\ny = 2\n",
		"# one\n\n# two\n\n\n# three\n":    "# one\n\n# two\n\n# three\n",
	} {
		if got := string(Format([]byte(in))); got != want {
			t.Errorf("Format(%q) = %q, want %q", in, got, want)
		}
	}
	// Idempotent on every spec in testdata, and formatting changes no meaning.
	var files []string
	for _, pattern := range []string{"testdata/*/*.hcl", "testdata/*/*/*.hcl", "../examples/*/*.hcl"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		once := Format(src)
		if twice := Format(once); !bytes.Equal(once, twice) {
			t.Errorf("%s: Format is not idempotent", name)
		}
		f1, d1 := ParseFile(name, src, &Options{Env: testEnv})
		f2, d2 := ParseFile(name, once, &Options{Env: testEnv})
		if d1.HasErrors() != d2.HasErrors() {
			t.Errorf("%s: formatting changed validity", name)
		}
		if f1 != nil && f2 != nil {
			j1, _ := EncodeFile(f1)
			j2, _ := EncodeFile(f2)
			if !bytes.Equal(j1, j2) {
				t.Errorf("%s: formatting changed the model", name)
			}
		}
	}
}

func TestFormatDiagnosticsSnippet(t *testing.T) {
	src := "function \"f\" {\n\truntime = \"provided\"\n\tcode { dir = \".\" }\n\tmemory_mb = 99999\n}\n"
	_, diags := ParseFile("tabs.hcl", []byte(src), nil)
	got := FormatDiagnostics(diags, nil) // tabs.hcl is not on disk: no snippet
	if got != "tabs.hcl:4:14: error: memory_mb must be between 128 and 10240; got 99999\n" {
		t.Errorf("without source: %q", got)
	}
	got = FormatDiagnostics(diags, map[string]*hcl.File{"tabs.hcl": {Bytes: []byte(src)}})
	want := "tabs.hcl:4:14: error: memory_mb must be between 128 and 10240; got 99999\n" +
		"    4 | \tmemory_mb = 99999\n" +
		"      | \t            ^^^^^\n"
	if got != want {
		t.Errorf("with source:\n%s\nwant:\n%s", got, want)
	}
}

func BenchmarkParseFull(b *testing.B) {
	src, err := os.ReadFile("testdata/valid/full.hcl")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, diags := ParseFile("testdata/valid/full.hcl", src, nil); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}

func BenchmarkEncodeDecode(b *testing.B) {
	f, diags := Load("testdata/valid/full.hcl", nil)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	fn := f.Function("orders-api")
	for b.Loop() {
		data, err := Encode(fn)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExpressionsStayBounded: expressions that would build huge values fail
// with a diagnostic instead of exhausting memory.
func TestExpressionsStayBounded(t *testing.T) {
	doubling := "locals {\n  l0 = \"" + strings.Repeat("x", 1024) + "\"\n"
	for i := 1; i <= 40; i++ {
		doubling += fmt.Sprintf("  l%d = \"${local.l%d}${local.l%d}\"\n", i, i-1, i-1)
	}
	doubling += "}\n"
	for name, tc := range map[string]struct{ src, want string }{
		"doubling locals": {doubling, "is larger than 1048576 bytes"},
		"replace empty":   {`locals { x = replace("` + strings.Repeat("a", 2000) + `", "", "` + strings.Repeat("b", 2000) + `") }`, "could exceed"},
		"format width":    {`locals { x = format("%999999999d", 1) }`, "too large"},
		"indent":          {`locals { x = indent(1000000000, "a\nb") }`, "between 0 and 1024"},
	} {
		_, diags := ParseFile("x.hcl", []byte(tc.src), nil)
		if got := FormatDiagnostics(diags, nil); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
	// Ordinary uses still work.
	f := mustParse(t, `locals {
  a = replace("a-b-c", "-", "_")
  b = regex_replace("v1.2", "v(\\d+)", "version $1")
  c = format("%05d|%-6s|%.2f", 42, "x", 3.14159)
  d = indent(2, "a\nb")
}
function "f" {
  runtime     = "provided"
  code { dir = "." }
  environment = { A = local.a, B = local.b, C = local.c, D = local.d }
}`, nil)
	want := map[string]string{"A": "a_b_c", "B": "version 1.2", "C": "00042|x     |3.14", "D": "a\n  b"}
	if got := f.Function("f").Environment; !reflect.DeepEqual(got, want) {
		t.Errorf("environment %q, want %q", got, want)
	}
}

// TestBuildBlockIsClientSide: the build block reaches the model with its
// position, and leaves the canonical JSON (job meta, catalog, config
// hashes) byte-equal to the same spec without it.
func TestBuildBlockIsClientSide(t *testing.T) {
	const base = `function "fn" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
%s}
`
	with := mustParse(t, fmt.Sprintf(base, "  build {\n    command = \"make\"\n    output  = \"out/fn\"\n  }\n"), nil)
	without := mustParse(t, fmt.Sprintf(base, ""), nil)
	skip := mustParse(t, fmt.Sprintf(base, "  build {\n    skip = true\n  }\n"), nil)
	got := with.Functions[0].Build
	want := &Build{Command: "make", Output: "out/fn", Pos: "test.hcl:6:3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("build block decoded as %+v, want %+v", got, want)
	}
	if b := skip.Functions[0].Build; b == nil || !b.Skip || b.Command != "" {
		t.Fatalf("skip block decoded as %+v", b)
	}
	if without.Functions[0].Build != nil {
		t.Fatalf("no build block decoded as %+v", without.Functions[0].Build)
	}
	plain, err := Encode(without.Functions[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*File{with, skip} {
		b, err := Encode(f.Functions[0])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, plain) {
			t.Errorf("the build block changed the canonical JSON:\n%s\nvs\n%s", b, plain)
		}
	}
}
