package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// closedEndpoint is a gateway address nothing listens on: the refusals
// below must come before export asks the gateway anything.
const closedEndpoint = "http://127.0.0.1:1"

func TestExportRefusesANonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "mine.txt")
	if err := os.WriteFile(keep, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "export", "--endpoint", closedEndpoint, "--out", dir, "fn")
	if r.code != 1 || !strings.Contains(r.stderr, dir+" is not empty") || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "keep me" {
		t.Fatalf("the directory's file changed: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, exportSpecFile)); !os.IsNotExist(err) {
		t.Fatalf("a spec was written: %v", err)
	}

	// With --force the directory is accepted, so the gateway is asked.
	r = runCLI(t, nil, "export", "--endpoint", closedEndpoint, "--out", dir, "--force", "fn")
	if r.code != 1 || !strings.Contains(r.stderr, "reading the spec of fn") {
		t.Fatalf("--force: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestExportRefusesBadArguments(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--out", file, "fn"}, 1, file + " exists and is not a directory"},
		{[]string{"--out", file, "--force", "fn"}, 1, file + " exists and is not a directory"},
		{[]string{"fn:1"}, 1, `"fn:1" is not a function name`},
		{[]string{"../fn"}, 1, `"../fn" is not a function name`},
		{[]string{}, 2, "Usage: nimbus export"},
		{[]string{"a", "b"}, 2, "Usage: nimbus export"},
	} {
		r := runCLI(t, nil, append([]string{"export", "--endpoint", closedEndpoint}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d stderr %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}

func TestDownloadVerified(t *testing.T) {
	body := []byte("PK not really a zip, but bytes with a sha256")
	sum := sha256.Sum256(body)
	srv := httptest.NewServer(http.FileServerFS(os.DirFS(writeFileDir(t, "b.zip", body))))
	defer srv.Close()
	ctx := context.Background()

	dest := filepath.Join(t.TempDir(), "ok.zip")
	if err := downloadVerified(ctx, srv.URL+"/b.zip", hex.EncodeToString(sum[:]), dest); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest); string(b) != string(body) {
		t.Fatalf("downloaded %q", b)
	}

	other := sha256.Sum256([]byte("something else"))
	err := downloadVerified(ctx, srv.URL+"/b.zip", hex.EncodeToString(other[:]), filepath.Join(t.TempDir(), "bad.zip"))
	if err == nil || !strings.Contains(err.Error(), "has sha256 "+hex.EncodeToString(sum[:])) {
		t.Fatalf("a mismatching bundle: %v", err)
	}
	err = downloadVerified(ctx, srv.URL+"/missing.zip", hex.EncodeToString(sum[:]), filepath.Join(t.TempDir(), "x.zip"))
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a missing bundle: %v", err)
	}
	if err := downloadVerified(ctx, srv.URL+"/b.zip", "abc", filepath.Join(t.TempDir(), "y.zip")); err == nil {
		t.Fatal("a malformed sha256 was accepted")
	}
}

func writeFileDir(t *testing.T, name string, b []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A bundle whose entries leave the directory is refused, and the code
// directory it was to replace stays as it was.
func TestReplaceWithZipRefusesZipSlip(t *testing.T) {
	root := t.TempDir()
	zipPath := filepath.Join(root, "evil.zip")
	f, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, name := range []string{"ok.txt", "../escaped.txt"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte("x"))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out := filepath.Join(root, "out")
	code := filepath.Join(out, exportCodeDir)
	if err := os.MkdirAll(code, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(code, "old.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceWithZip(zipPath, code); err == nil {
		t.Fatal("a zip-slip bundle was extracted")
	}
	if _, err := os.Stat(filepath.Join(root, "escaped.txt")); !os.IsNotExist(err) {
		t.Fatalf("an entry escaped: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(code, "old.txt")); string(b) != "old" {
		t.Fatal("the old code directory was touched")
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}
