package testfn

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBuildEcho(t *testing.T) {
	d := Dir(t, "echo")
	fi, err := os.Stat(filepath.Join(d, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Fatalf("bootstrap is not executable: %v", fi.Mode())
	}
	if again := Dir(t, "echo"); again != d {
		t.Fatalf("second build went to %s, want cached %s", again, d)
	}
}
