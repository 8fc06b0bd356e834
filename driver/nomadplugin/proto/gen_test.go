package proto_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// protocLine is the generated header line naming the protoc version, which
// depends on the machine's Debian package rather than on our pins.
var protocLine = regexp.MustCompile(`(?m)^// \tprotoc +v.*$`)

// TestGeneratedCodeMatchesProtos regenerates every .pb.go file into a temp
// dir with scripts/gen-proto.sh and fails when a committed file differs, is
// missing or is stale.
func TestGeneratedCodeMatchesProtos(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Skip("protoc not installed (apt-get install protobuf-compiler): cannot check generated code for drift")
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "gen-proto.sh"), tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/gen-proto.sh: %v\n%s", err, out)
	}
	fresh := generated(t, filepath.Join(tmp, "driver", "nomadplugin", "proto"))
	committed := generated(t, ".")
	if len(fresh) == 0 {
		t.Fatal("generator produced no files")
	}
	for name, want := range fresh {
		got, ok := committed[name]
		if !ok {
			t.Errorf("%s: generated but not committed; run make generate", name)
			continue
		}
		if !bytes.Equal(normalize(got), normalize(want)) {
			t.Errorf("%s: differs from its .proto; run make generate", name)
		}
	}
	for name := range committed {
		if _, ok := fresh[name]; !ok {
			t.Errorf("%s: committed but no .proto generates it", name)
		}
	}
}

func generated(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".pb.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[rel] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func normalize(b []byte) []byte { return protocLine.ReplaceAll(b, nil) }
