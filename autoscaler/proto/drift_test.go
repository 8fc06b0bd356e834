package proto

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates every .pb.go into a temporary
// directory and compares it with the committed files, so a .proto edit
// without regeneration (or a hand edit of generated code) fails CI.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Skip("protoc not installed (apt-get install -y protobuf-compiler); CI installs it, so the drift check runs there")
	}
	if _, err := os.Stat("/usr/include/google/protobuf/any.proto"); err != nil {
		t.Skip("protobuf well-known types missing (apt-get install -y libprotobuf-dev, a recommended package of protobuf-compiler)")
	}
	out := t.TempDir()
	cmd := exec.Command("../../scripts/gen-autoscaler-proto.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("regenerating: %v\n%s", err, b)
	}

	committed, err := filepath.Glob("*/*.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := filepath.Glob(filepath.Join(out, "autoscaler", "proto", "*", "*.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(committed) == 0 || len(committed) != len(fresh) {
		t.Fatalf("committed generated files %v, regenerated %d files; run scripts/gen-autoscaler-proto.sh", committed, len(fresh))
	}
	for _, rel := range committed {
		want, err := os.ReadFile(filepath.Join(out, "autoscaler", "proto", rel))
		if err != nil {
			t.Errorf("%s has no regenerated counterpart: %v", rel, err)
			continue
		}
		got, err := os.ReadFile(rel)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(normalise(got), normalise(want)) {
			t.Errorf("%s differs from what the .proto files generate; run scripts/gen-autoscaler-proto.sh and commit", rel)
		}
	}
}

// normalise drops the header line naming the protoc version: Debian's protoc
// is the pinned tool, but a patch release elsewhere must not fail the check
// when the generated code itself is identical.
func normalise(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	keep := lines[:0]
	for _, l := range lines {
		if strings.HasPrefix(l, "// \tprotoc ") || strings.HasPrefix(l, "// - protoc ") {
			continue
		}
		keep = append(keep, l)
	}
	return []byte(strings.Join(keep, "\n"))
}
