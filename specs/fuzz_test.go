package specs

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// addSeeds adds every spec in testdata and examples to the corpus.
func addSeeds(f *testing.F) {
	var files []string
	for _, pattern := range []string{"testdata/*/*.hcl", "testdata/*/*/*.hcl", "../examples/*/*.hcl"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) == 0 {
		f.Fatal("no seed specs")
	}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
}

// FuzzParse: no input makes Parse or Format panic; whatever parses encodes,
// decodes back to the same model, writes as HCL (EncodeHCL) that loads to
// the same model, and formats idempotently without changing the model.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		// The spec lives in testdata, so file() reads only seed files.
		file, diags := ParseFile("testdata/fuzz.hcl", src, &Options{Env: testEnv})
		_ = FormatDiagnostics(diags, nil)
		formatted := Format(src)
		if file == nil {
			if !diags.HasErrors() {
				t.Fatal("nil file without errors")
			}
			return
		}
		canon, err := EncodeFile(file)
		if err != nil {
			t.Fatalf("encoding a valid spec: %v", err)
		}
		back, err := DecodeFile(canon)
		if err != nil {
			t.Fatalf("decoding a valid spec: %v\n%s", err, canon)
		}
		checkHCLRoundTrip(t, file)
		stripLocal(file)
		if !reflect.DeepEqual(back, file) {
			t.Fatalf("round trip changed the model:\n%s", canon)
		}
		if again := Format(formatted); !bytes.Equal(again, formatted) {
			t.Fatalf("Format not idempotent:\n%q\n%q", formatted, again)
		}
		file2, diags2 := ParseFile("testdata/fuzz.hcl", formatted, &Options{Env: testEnv})
		if file2 == nil {
			t.Fatalf("formatting broke a valid spec:\n%s\n%s", formatted, FormatDiagnostics(diags2, nil))
		}
		canon2, _ := EncodeFile(file2)
		if !bytes.Equal(canon, canon2) {
			t.Fatalf("formatting changed the model:\n%s\n%s", canon, canon2)
		}
	})
}

// FuzzDecode: no input makes Decode panic, and what it accepts encodes to
// a fixed point.
func FuzzDecode(f *testing.F) {
	for _, in := range []string{"testdata/valid/full.json", "testdata/valid/minimal.json", "testdata/valid/multi.json"} {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","runtime":"provided","code":{"dir":"."}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if fn, err := Decode(data); err == nil {
			b, err := Encode(fn)
			if err != nil {
				t.Fatal(err)
			}
			fn2, err := Decode(b)
			if err != nil {
				t.Fatalf("re-decoding: %v\n%s", err, b)
			}
			if b2, _ := Encode(fn2); !bytes.Equal(b, b2) {
				t.Fatalf("not a fixed point:\n%s\n%s", b, b2)
			}
		}
		if file, err := DecodeFile(data); err == nil {
			if _, err := EncodeFile(file); err != nil {
				t.Fatal(err)
			}
		}
	})
}
