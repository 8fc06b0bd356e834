package specs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkHCLRoundTrip writes f as HCL, loads it back from a file and fails
// unless the model (canonical JSON and build blocks) is unchanged, the
// output is formatted, and encoding the reloaded model gives the same bytes.
func checkHCLRoundTrip(t *testing.T, f *File) []byte {
	t.Helper()
	src, err := EncodeHCL(f)
	if err != nil {
		t.Fatalf("EncodeHCL: %v", err)
	}
	if !bytes.Equal(Format(src), src) {
		t.Errorf("EncodeHCL output is not formatted:\n%s", src)
	}
	name := filepath.Join(t.TempDir(), "exported.hcl")
	if err := os.WriteFile(name, src, 0o644); err != nil {
		t.Fatal(err)
	}
	back, diags := Load(name, nil)
	if back == nil || diags.HasErrors() {
		t.Fatalf("the written spec does not load:\n%s\n%s", FormatDiagnostics(diags, nil), src)
	}
	want, err := EncodeFile(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := EncodeFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("round trip changed the model\n--- HCL ---\n%s\n--- got ---\n%s\n--- want ---\n%s", src, got, want)
	}
	for _, fn := range f.Functions {
		if !sameBuild(fn.Build, back.Function(fn.Name).Build) {
			t.Errorf("function %q: build %+v came back as %+v", fn.Name, fn.Build, back.Function(fn.Name).Build)
		}
	}
	again, err := EncodeHCL(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, src) {
		t.Errorf("EncodeHCL is not a fixed point:\n%s\n---\n%s", src, again)
	}
	return src
}

func sameBuild(a, b *Build) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Command == b.Command && a.Output == b.Output && a.Skip == b.Skip
}

// TestEncodeHCLRoundTrip: every valid golden and every example loads to
// the same model after EncodeHCL.
func TestEncodeHCLRoundTrip(t *testing.T) {
	inputs := goldenInputs(t, "testdata/valid")
	examples, _ := filepath.Glob("../examples/*/nimbus.hcl")
	if len(examples) == 0 {
		t.Fatal("no examples")
	}
	for _, in := range append(inputs, examples...) {
		t.Run(in, func(t *testing.T) {
			f, diags := Load(in, &Options{Env: testEnv})
			if f == nil {
				t.Fatalf("loading: %s", FormatDiagnostics(diags, nil))
			}
			checkHCLRoundTrip(t, f)
		})
	}
}

// TestEncodeHCLLeavesDefaultsOut: a function that sets only what it must
// is written back as short as it was, and the settings Parse would not
// fill in are kept even when they look like zero values.
func TestEncodeHCLLeavesDefaultsOut(t *testing.T) {
	f, diags := ParseFile("in.hcl", []byte(`function "a" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  async {
  }
  event_source "tick" {
    type     = "schedule"
    schedule = "rate(5 minutes)"
  }
  event_source "q" {
    type = "nats"
    stream = "S"
  }
}
`), nil)
	if f == nil {
		t.Fatal(FormatDiagnostics(diags, nil))
	}
	want := `function "a" {
  runtime = "provided.al2023"

  code {
    dir = "."
  }
  async {
  }
  event_source "q" {
    type   = "nats"
    stream = "S"
  }
  event_source "tick" {
    type     = "schedule"
    schedule = "rate(5 minutes)"
  }
}
`
	if got := string(checkHCLRoundTrip(t, f)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}

	// Zero values that differ from the defaults must be written.
	f.Functions[0].Async.MaxRetries = 0
	f.Functions[0].EventSources[0].Enabled = false
	zero := 0
	f.Functions[0].EventSources[0].MaximumRetryAttempts = &zero
	f.Functions[0].ReservedConcurrency = &zero
	src := string(checkHCLRoundTrip(t, f))
	for _, s := range []string{"max_retries = 0", "enabled                = false", "maximum_retry_attempts = 0", "reserved_concurrency = 0"} {
		if !strings.Contains(src, s) {
			t.Errorf("output lacks %q:\n%s", s, src)
		}
	}
}

// TestEncodeHCLQuotes: values that HCL would read as templates, escapes or
// keywords come back as the same strings.
func TestEncodeHCLQuotes(t *testing.T) {
	fn, err := Decode([]byte(`{"name":"q","runtime":"python3.12","handler":"app.handler",
		"description":"costs $5 and ${not.a.template} or %{if x}",
		"code":{"dir":"code"},
		"environment":{"null":"x","true":"y","A":"line1\nline2\t\"quoted\" \\ back","B":"${var.x}","C":""},
		"tags":{"aws:cloudformation":"1","team":"é","with space":"z","false":""},
		"event_sources":[{"name":"s","type":"nats","enabled":true,"stream":"S","filters":["{\"body\":{\"k\":[\"${x}\"]}}"]}],
		"aliases":[{"name":"live","version":"2","routing":{"3":0.25}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	checkHCLRoundTrip(t, &File{Functions: []*Function{fn}})
}

// TestEncodeHCLDecoded: a function read from canonical JSON (what the
// gateway answers to nimbus export) writes to a spec with the same model.
func TestEncodeHCLDecoded(t *testing.T) {
	f, diags := Load("testdata/valid/full.hcl", &Options{Env: testEnv})
	if f == nil {
		t.Fatal(FormatDiagnostics(diags, nil))
	}
	decoded := &File{Layers: f.Layers}
	for _, fn := range f.Functions {
		canon, err := Encode(fn)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(canon)
		if err != nil {
			t.Fatal(err)
		}
		decoded.Functions = append(decoded.Functions, back)
	}
	// Decode does not read build blocks (they are not in the JSON).
	checkHCLRoundTrip(t, decoded)
}

func TestEncodeHCLRefusesWhatItCannotWrite(t *testing.T) {
	nan := &Function{Name: "n", Runtime: "provided", Code: &Code{Dir: "."}, Provisioned: &ProvisionedConcurrency{Min: 1, TargetUtilization: zeroDiv()}}
	for name, f := range map[string]*File{
		"nil function": {Functions: []*Function{nil}},
		"nil layer":    {Layers: []*Layer{nil}},
		"no code":      {Functions: []*Function{{Name: "x", Runtime: "provided"}}},
		"NaN":          {Functions: []*Function{nan}},
		"nil secret":   {Functions: []*Function{{Name: "x", Runtime: "provided", Code: &Code{Dir: "."}, Secrets: []*Secret{nil}}}},
	} {
		if _, err := EncodeHCL(f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := EncodeHCL(nil); err == nil {
		t.Error("nil file: no error")
	}
}

func zeroDiv() float64 {
	z := 0.0
	return z / z
}

// TestEncodeHCLFileOrder: layers come before functions, both in model
// order, so equal models give equal files.
func TestEncodeHCLFileOrder(t *testing.T) {
	f, diags := Load("testdata/valid/multi", &Options{Env: testEnv})
	if f == nil {
		t.Fatal(FormatDiagnostics(diags, nil))
	}
	a, err := EncodeHCL(f)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := EncodeHCL(f)
	if !bytes.Equal(a, b) {
		t.Fatal("two encodings differ")
	}
	if len(f.Layers) > 0 && len(f.Functions) > 0 {
		if bytes.Index(a, []byte("layer ")) > bytes.Index(a, []byte("function ")) {
			t.Errorf("a function is written before a layer:\n%s", a)
		}
	}
}
