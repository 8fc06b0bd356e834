package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/nimbus-fn/nimbus/specs"
)

// TestDevSpecLoaderSurvivesHostileSpecs: what nimbus dev reads on a reload
// answers an error, never a crash or an exhausted machine, for a spec that
// describes a huge computation and for a reader that panics.
func TestDevSpecLoaderSurvivesHostileSpecs(t *testing.T) {
	dir := t.TempDir()
	line3 := `  m = [for a in local.l : [for b in local.l : "${a}${b}"]]`
	p := writeSpecFile(t, dir, "big.hcl", "locals {\n"+
		"  l = split(\",\", \""+strings.Repeat(",", 99_999)+"\")\n"+
		line3+"\n"+
		"}\n"+
		"function \"f\" {\n  runtime = \"provided\"\n  code { dir = \".\" }\n  environment = { N = tostring(length(local.m)) }\n}\n")
	load := devSpecLoader(specs.Load, &specs.Options{})
	f, err := load(dir)
	if f != nil || err == nil {
		t.Fatalf("hostile spec loaded: %v %v", f, err)
	}
	col := strings.Index(line3, `local.l : "`) + 1
	want := fmt.Sprintf("%s:3:%d: error: Spec too costly to evaluate\n", p, col)
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error:\n%s\nwant it to start with:\n%s", err, want)
	}

	panicky := devSpecLoader(func(string, *specs.Options) (*specs.File, hcl.Diagnostics) {
		panic("index out of range")
	}, nil)
	f, err = panicky(filepath.Join(dir, "x.hcl"))
	if f != nil || err == nil || !strings.Contains(err.Error(), "internal error: index out of range") {
		t.Fatalf("panicking reader: %v %v", f, err)
	}
}
