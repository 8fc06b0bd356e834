package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	messySpec = "function \"a\"{\nruntime=\"provided\"\n\n\n\ncode { dir = \".\" }\n}\n\n"
	tidySpec  = "function \"a\" {\n  runtime = \"provided\"\n\n  code { dir = \".\" }\n}\n"
)

func TestFmtStdoutCheckAndWrite(t *testing.T) {
	dir := t.TempDir()
	messy := writeSpecFile(t, dir, "messy.hcl", messySpec)
	tidy := writeSpecFile(t, dir, "tidy.hcl", tidySpec)

	// Default: print, change nothing.
	code, out, errOut := specCLI(t, "", nil, "fmt", messy)
	if code != 0 || out != tidySpec || errOut != "" {
		t.Errorf("fmt: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// -check lists the file that differs and fails.
	code, out, _ = specCLI(t, "", nil, "fmt", "-check", dir)
	if code != 1 || out != messy+"\n" {
		t.Errorf("fmt -check: exit %d, stdout %q", code, out)
	}
	if b, _ := os.ReadFile(messy); string(b) != messySpec {
		t.Error("fmt -check changed a file")
	}

	// -w rewrites it and lists it; then -check passes.
	code, out, _ = specCLI(t, "", nil, "fmt", "-w", dir)
	if code != 0 || out != messy+"\n" {
		t.Errorf("fmt -w: exit %d, stdout %q", code, out)
	}
	for _, p := range []string{messy, tidy} {
		if b, _ := os.ReadFile(p); string(b) != tidySpec {
			t.Errorf("%s after fmt -w: %q", p, b)
		}
	}
	if code, out, _ = specCLI(t, "", nil, "fmt", "-check", dir); code != 0 || out != "" {
		t.Errorf("fmt -check after -w: exit %d, stdout %q", code, out)
	}
}

func TestFmtStdinAndSyntaxErrors(t *testing.T) {
	code, out, _ := specCLI(t, messySpec, nil, "fmt", "-")
	if code != 0 || out != tidySpec {
		t.Errorf("fmt -: exit %d, stdout %q", code, out)
	}

	dir := t.TempDir()
	broken := writeSpecFile(t, dir, "broken.hcl", "function \"a\" {\n  runtime = \n}\n")
	code, out, errOut := specCLI(t, "", nil, "fmt", "-w", broken)
	if code != 1 || out != "" || !strings.HasPrefix(errOut, broken+":2:13: error: Invalid expression\n") {
		t.Errorf("broken: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(broken); string(b) != "function \"a\" {\n  runtime = \n}\n" {
		t.Error("fmt -w rewrote a file that does not parse")
	}

	if code, _, _ := specCLI(t, "", nil, "fmt", "-w", "-check", dir); code == 0 {
		t.Error("-w with -check accepted")
	}
	if code, _, _ := specCLI(t, "", nil, "fmt", filepath.Join(dir, "missing.hcl")); code == 0 {
		t.Error("missing file accepted")
	}
}
