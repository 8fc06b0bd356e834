package artifacts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkUploadDownload stores a fresh 8 MiB bundle through one gateway
// and reads it back from another over the same NATS server, next to the
// dedupe path (the same bytes again) and a plain HTTP download of the same
// size from memory as the floor.
func BenchmarkUploadDownload(b *testing.B) {
	ns := startNATS(b)
	g1 := newGateway(b, ns, Config{}, nil)
	g2 := newGateway(b, ns, Config{}, nil)
	const size = 8 << 20
	payload := noise(size - 4096)
	ctx := context.Background()

	b.Run("upload-new", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			b.StopTimer() // zipping is the CLI's cost, not the store's
			data := makeZip(b, map[string]string{"bootstrap": payload, "n": fmt.Sprint(i)})
			b.StartTimer()
			if _, err := (&Client{BaseURL: g1.srv.URL}).Upload(ctx, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	data := makeZip(b, map[string]string{"bootstrap": payload})
	up, err := (&Client{BaseURL: g1.srv.URL}).Upload(ctx, data)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("upload-dedupe", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := (&Client{BaseURL: g1.srv.URL}).Upload(ctx, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("download-other-gateway", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			resp, err := http.Get(g2.srv.URL + Path + up.SHA256 + ".zip")
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n != int64(len(data)) {
				b.Fatalf("read %d bytes", n)
			}
		}
	})
	floor := newMemServer(b, data)
	b.Run("download-floor-memory", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			resp, err := http.Get(floor)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func newMemServer(b *testing.B, data []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "b.zip", time.Time{}, bytes.NewReader(data))
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}
