package artifactstest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
)

func TestOpenStoresAndReadsBack(t *testing.T) {
	store := Open(t)
	data := bundle(t, "a bundle")
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	ctx := context.Background()
	if _, created, err := store.Put(ctx, digest, data); err != nil || !created {
		t.Fatalf("Put: created %v, %v", created, err)
	}
	rc, info, err := store.Open(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); string(got) != string(data) || info.Size != int64(len(data)) {
		t.Fatalf("read back %q (size %d)", got, info.Size)
	}
}

func TestStoresAreIndependent(t *testing.T) {
	a, b := Open(t), Open(t)
	data := bundle(t, "only in a")
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	if _, _, err := a.Put(context.Background(), digest, data); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(context.Background(), digest); err == nil {
		t.Fatal("a bundle put in one store is visible in another")
	}
}

// bundle is a zip holding one file with content.
func bundle(t *testing.T, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
