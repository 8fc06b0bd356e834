package specs

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testEnv is the environment env() sees in golden tests.
func testEnv(name string) string {
	return map[string]string{"STAGE": "prod"}[name]
}

// goldenInputs lists the *.hcl files and the directories directly in dir.
func goldenInputs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".hcl") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no inputs in %s", dir)
	}
	return out
}

func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./specs -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test ./specs -update and review the diff)\n--- got ---\n%s\n--- want ---\n%s", golden, got, want)
	}
}

// TestGoldenValid parses each spec (file or directory) in testdata/valid and
// compares its canonical JSON (indented for review) with <name>.json.
func TestGoldenValid(t *testing.T) {
	for _, in := range goldenInputs(t, "testdata/valid") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			f, diags := Load(in, &Options{Env: testEnv})
			if len(diags) > 0 {
				t.Fatalf("unexpected diagnostics:\n%s", FormatDiagnostics(diags, nil))
			}
			canon, err := EncodeFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, canon, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			checkGolden(t, strings.TrimSuffix(in, ".hcl")+".json", pretty.Bytes())
		})
	}
}

// TestGoldenDiagnostics parses each spec in testdata/diagnostics, one class
// of mistake each, and compares the rendered diagnostics with <name>.diags.
func TestGoldenDiagnostics(t *testing.T) {
	for _, in := range goldenInputs(t, "testdata/diagnostics") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			_, diags := Load(in, &Options{Env: testEnv})
			if len(diags) == 0 {
				t.Fatal("no diagnostics")
			}
			checkGolden(t, strings.TrimSuffix(in, ".hcl")+".diags", []byte(FormatDiagnostics(diags, nil)))
		})
	}
}

// TestParseFileMatchesLoad: ParseFile on a file's bytes and Load on its
// path give the same model and the same diagnostics.
func TestParseFileMatchesLoad(t *testing.T) {
	for _, dir := range []string{"testdata/valid", "testdata/diagnostics"} {
		for _, in := range goldenInputs(t, dir) {
			if !strings.HasSuffix(in, ".hcl") {
				continue
			}
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			opts := &Options{Env: testEnv}
			f1, d1 := ParseFile(in, src, opts)
			f2, d2 := Load(in, opts)
			if FormatDiagnostics(d1, nil) != FormatDiagnostics(d2, nil) {
				t.Errorf("%s: diagnostics differ:\n%s\nvs\n%s", in, FormatDiagnostics(d1, nil), FormatDiagnostics(d2, nil))
			}
			if (f1 == nil) != (f2 == nil) {
				t.Fatalf("%s: ParseFile file %v, Load file %v", in, f1 != nil, f2 != nil)
			}
			if f1 != nil {
				j1, _ := EncodeFile(f1)
				j2, _ := EncodeFile(f2)
				if !bytes.Equal(j1, j2) {
					t.Errorf("%s: models differ", in)
				}
			}
		}
	}
}
