package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// specCLI runs the CLI in-process with stdin and an environment of its own.
func specCLI(t *testing.T, stdin string, environ map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cliEnv{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return environ[k] },
	}
	code = run(context.Background(), env, args)
	return code, out.String(), errOut.String()
}

func writeSpecFile(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateExamples(t *testing.T) {
	for _, dir := range []string{"hello-go", "hello-python", "hello-node"} {
		code, out, errOut := specCLI(t, "", nil, "validate", filepath.Join("..", "..", "examples", dir))
		if code != 0 || out != "1 function, 0 layers valid\n" || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", dir, code, out, errOut)
		}
	}
}

func TestValidateReportsDiagnostics(t *testing.T) {
	dir := t.TempDir()
	p := writeSpecFile(t, dir, "api.hcl", `function "api" {
  runtime   = "provided.al2023"
  memory_mb = 64
  code {
    dir = "."
  }
}
`)
	code, out, errOut := specCLI(t, "", nil, "validate", p)
	want := p + ":3:15: error: memory_mb must be between 128 and 10240; got 64\n" +
		"    3 |   memory_mb = 64\n" +
		"      |               ^^\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant:\n%s", code, out, errOut, want)
	}
}

func TestValidateDirectoryVarsEnvAndJSON(t *testing.T) {
	dir := t.TempDir()
	writeSpecFile(t, dir, "a.hcl", `variable "memory" {
  type = number
}
layer "deps" {
  code {
    zip = "deps.zip"
  }
}
`)
	writeSpecFile(t, dir, "b.hcl", `function "api" {
  runtime     = "provided.al2023"
  memory_mb   = var.memory
  layers      = ["deps"]
  environment = { STAGE = env("STAGE") }
  code {
    dir = "."
  }
}
function "worker" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
}
`)
	writeSpecFile(t, dir, "notes.txt", "not a spec")

	code, out, errOut := specCLI(t, "", nil, "validate", dir)
	if code != 1 || out != "" || !strings.Contains(errOut, `No value for variable "memory"`) {
		t.Errorf("without -var: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = specCLI(t, "", nil, "validate", "-var", "memory=256", dir)
	if code != 0 || out != "2 functions, 1 layer valid\n" || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = specCLI(t, "", map[string]string{"STAGE": "prod"}, "validate", "-json", "-var", "memory=512", dir)
	var file struct {
		Functions []struct {
			Name        string            `json:"name"`
			MemoryMB    int               `json:"memory_mb"`
			Environment map[string]string `json:"environment"`
		} `json:"functions"`
	}
	if err := json.Unmarshal([]byte(out), &file); err != nil || code != 0 {
		t.Fatalf("exit %d, -json output %q: %v", code, out, err)
	}
	if len(file.Functions) != 2 || file.Functions[0].MemoryMB != 512 || file.Functions[0].Environment["STAGE"] != "prod" {
		t.Errorf("-json output %s", out)
	}
}

func TestValidateUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"validate", "a", "b"},
		{"validate", "-var", "novalue", "."},
		{"validate", filepath.Join(t.TempDir(), "missing.hcl")},
		{"validate", t.TempDir()},
	} {
		if code, _, errOut := specCLI(t, "", nil, args...); code == 0 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
