package bundle_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

func writeTree(t *testing.T, root string, files map[string]string, exec map[string]bool) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := fs.FileMode(0o600)
		if exec[name] {
			mode = 0o700
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func zipDir(t *testing.T, dir string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := bundle.Zip(dir, &buf)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.Sum256(buf.Bytes())
	if hex.EncodeToString(got[:]) != sum {
		t.Fatalf("returned checksum %s is not the sha256 of the bytes written", sum)
	}
	return buf.Bytes(), sum
}

var sample = map[string]string{
	"bootstrap":         "#!/bin/sh\necho hi\n",
	"lib/util.py":       "def f(): pass\n",
	"lib/data/a.json":   "{}",
	"z-last.txt":        "z",
	"a-first.txt":       "a",
	"nested/deep/x.txt": strings.Repeat("x", 10_000),
}

// Same files give the same bytes, whatever the mtimes, modes (beyond the
// exec bit) or directory creation order.
func TestZipDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, sample, map[string]bool{"bootstrap": true})
	writeTree(t, b, sample, map[string]bool{"bootstrap": true})
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(b, "lib/util.py"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(b, "z-last.txt"), 0o664); err != nil {
		t.Fatal(err)
	}
	za, sa := zipDir(t, a)
	zb, sb := zipDir(t, b)
	if sa != sb || !bytes.Equal(za, zb) {
		t.Fatalf("checksums differ: %s vs %s", sa, sb)
	}
	_, again := zipDir(t, a)
	if again != sa {
		t.Fatalf("zipping twice gave %s then %s", sa, again)
	}
	// A content change changes the checksum.
	if err := os.WriteFile(filepath.Join(b, "a-first.txt"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, sc := zipDir(t, b); sc == sa {
		t.Fatal("changed content kept the checksum")
	}
	// Toggling the exec bit changes it too (modes are part of the bundle).
	c := t.TempDir()
	writeTree(t, c, sample, nil)
	if _, sc := zipDir(t, c); sc == sa {
		t.Fatal("exec bit change kept the checksum")
	}
}

func TestZipEntries(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, sample, map[string]bool{"bootstrap": true})
	if err := os.Symlink("lib/util.py", filepath.Join(dir, "link.py")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	data, _ := zipDir(t, dir)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if !f.Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: modified %v", f.Name, f.Modified)
		}
		want := fs.FileMode(0o644)
		switch {
		case strings.HasSuffix(f.Name, "/"):
			want = fs.ModeDir | 0o755
		case f.Name == "bootstrap":
			want = 0o755
		}
		if f.Mode() != want {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), want)
		}
	}
	want := "a-first.txt bootstrap empty/ lib/ lib/data/ lib/data/a.json lib/util.py link.py nested/ nested/deep/ nested/deep/x.txt z-last.txt"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries\n got %s\nwant %s", got, want)
	}
}

func TestZipRefusesEscapingSymlink(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"ok.txt": "ok"}, nil)
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "leak")); err != nil {
		t.Fatal(err)
	}
	_, err := bundle.Zip(dir, &bytes.Buffer{})
	if !errors.Is(err, bundle.ErrUnsafePath) || !strings.Contains(err.Error(), "leak") {
		t.Fatalf("error %v, want ErrUnsafePath naming leak", err)
	}

	dir2 := t.TempDir()
	if err := os.Symlink("../"+filepath.Base(outside), filepath.Join(dir2, "up")); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Zip(dir2, &bytes.Buffer{}); err == nil {
		t.Fatal("relative symlink out of the bundle accepted")
	}
}

func TestZipRefusesSymlinkedDir(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"sub/a": "a"}, nil)
	if err := os.Symlink("sub", filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Zip(dir, &bytes.Buffer{}); !errors.Is(err, bundle.ErrUnsupported) {
		t.Fatalf("error %v, want ErrUnsupported", err)
	}
}

// A real aws-lambda-go bootstrap survives Zip → Extract byte for byte and
// stays executable.
func TestRoundTripRealFunction(t *testing.T) {
	src := testfn.Dir(t, "echo")
	zipPath := filepath.Join(t.TempDir(), "fn.zip")
	f, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Zip(src, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "code")
	if err := bundle.Extract(zipPath, dest, bundle.Limits{}); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(src, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dest, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bootstrap changed in the round trip")
	}
	info, err := os.Stat(filepath.Join(dest, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o755 {
		t.Fatalf("bootstrap mode %v, want 0755", info.Mode().Perm())
	}
}

func TestExtractTree(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, sample, map[string]bool{"bootstrap": true})
	data, _ := zipDir(t, dir)
	zipPath := filepath.Join(t.TempDir(), "b.zip")
	if err := os.WriteFile(zipPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	if err := bundle.Extract(zipPath, dest, bundle.Limits{}); err != nil {
		t.Fatal(err)
	}
	for name, content := range sample {
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
		if err != nil || string(got) != content {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}

type rawEntry struct {
	name    string
	mode    fs.FileMode
	content string
}

func craft(t *testing.T, entries ...rawEntry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		fh.SetMode(e.mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "crafted.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExtractRejectsZipSlip(t *testing.T) {
	cases := map[string]rawEntry{
		"dotdot":           {"../evil.txt", 0o644, "x"},
		"nested dotdot":    {"a/../../evil.txt", 0o644, "x"},
		"absolute":         {"/tmp/evil.txt", 0o644, "x"},
		"backslash":        {`..\evil.txt`, 0o644, "x"},
		"symlink":          {"link", fs.ModeSymlink | 0o777, "/etc/passwd"},
		"empty name":       {"", 0o644, "x"},
		"dotdot only":      {"..", 0o644, "x"},
		"dotdot directory": {"../up/", fs.ModeDir | 0o755, ""},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "dest")
			zipPath := craft(t, rawEntry{"fine.txt", 0o644, "ok"}, e)
			err := bundle.Extract(zipPath, dest, bundle.Limits{})
			if !errors.Is(err, bundle.ErrUnsafePath) {
				t.Fatalf("error %v, want ErrUnsafePath", err)
			}
			// Nothing was written, not even the harmless first entry: every
			// name is checked before anything is unpacked.
			if _, err := os.Stat(filepath.Join(parent, "evil.txt")); !os.IsNotExist(err) {
				t.Fatal("evil.txt written outside dest")
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Fatal("dest created for a rejected archive")
			}
		})
	}
}

func TestExtractSizeLimits(t *testing.T) {
	zipPath := craft(t,
		rawEntry{"a.bin", 0o644, strings.Repeat("\x00", 600<<10)},
		rawEntry{"b.bin", 0o644, strings.Repeat("\x00", 600<<10)},
	)
	err := bundle.Extract(zipPath, t.TempDir(), bundle.Limits{MaxUnzippedBytes: 1 << 20})
	if !errors.Is(err, bundle.ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	if err := bundle.Extract(zipPath, t.TempDir(), bundle.Limits{MaxUnzippedBytes: 2 << 20}); err != nil {
		t.Fatalf("within the limit: %v", err)
	}
	err = bundle.Extract(zipPath, t.TempDir(), bundle.Limits{MaxEntries: 1})
	if !errors.Is(err, bundle.ErrTooLarge) || !strings.Contains(err.Error(), "2 entries") {
		t.Fatalf("entry limit: %v", err)
	}
}

// A header that understates the size does not get past the limit: the
// bytes written are counted.
func TestExtractCountsRealBytes(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	content := bytes.Repeat([]byte("y"), 64<<10)
	fh := &zip.FileHeader{Name: "big.bin", Method: zip.Store}
	// CreateRaw lets the test write a header whose sizes lie.
	fh.CRC32 = 0
	fh.CompressedSize64 = uint64(len(content))
	fh.UncompressedSize64 = 10
	w, err := zw.CreateRaw(fh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "lying.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	err = bundle.Extract(p, t.TempDir(), bundle.Limits{MaxUnzippedBytes: 1 << 10})
	if err == nil {
		t.Fatal("archive with a lying header extracted beyond the limit")
	}
}

// BenchmarkZip packages a real aws-lambda-go bootstrap (several MB).
func BenchmarkZip(b *testing.B) {
	src := testfn.Dir(b, "echo")
	info, err := os.Stat(filepath.Join(src, "bootstrap"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(info.Size())
	for b.Loop() {
		if _, err := bundle.Zip(src, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
