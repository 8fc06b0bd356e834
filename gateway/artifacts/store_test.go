package artifacts

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
)

// gateway is one gateway's artifact store: its own NATS connection and
// HTTP server over a shared NATS system.
type gateway struct {
	store *Store
	srv   *httptest.Server
}

func startNATS(t testing.TB) *natsembed.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// newGateway connects over TCP (as a second gateway process would).
func newGateway(t testing.TB, ns *natsembed.Server, cfg Config, auth Authorizer) *gateway {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Open(ctx, js, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(st, auth))
	t.Cleanup(srv.Close)
	return &gateway{store: st, srv: srv}
}

// makeZip builds a zip holding the given name → content entries.
func makeZip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// noise is incompressible content, so bundles span several object chunks.
func noise(n int) string {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// Upload to one gateway, download from the other; a second upload of the
// same bytes (to either gateway) stores nothing new.
func TestTwoGatewaysShareBundles(t *testing.T) {
	ns := startNATS(t)
	a := newGateway(t, ns, Config{}, nil)
	b := newGateway(t, ns, Config{}, nil)
	ctx := context.Background()

	data := makeZip(t, map[string]string{"bootstrap": noise(300_000), "lib/a.txt": "hello"})
	up, err := (&Client{BaseURL: a.srv.URL}).Upload(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if !up.Created || up.SHA256 != digestOf(data) || up.Size != int64(len(data)) {
		t.Fatalf("upload answered %+v", up)
	}
	resp, body := get(t, (&Client{BaseURL: b.srv.URL}).URL(up.SHA256), nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("download from the other gateway: %s, %d bytes, equal=%v", resp.Status, len(body), bytes.Equal(body, data))
	}
	if resp.Header.Get(HeaderSHA256) != up.SHA256 || resp.Header.Get("ETag") != `"`+up.SHA256+`"` || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("download headers %v", resp.Header)
	}
	if digestOf(body) != resp.Header.Get(HeaderSHA256) {
		t.Fatal("downloaded bytes do not hash to the advertised checksum")
	}

	again, err := (&Client{BaseURL: b.srv.URL}).Upload(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.SHA256 != up.SHA256 || again.Size != up.Size {
		t.Fatalf("second upload should dedupe: %+v vs %+v", again, up)
	}
	list, err := a.store.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("store lists %v, %v; want exactly one bundle", list, err)
	}

	resp, _ = get(t, a.srv.URL+Path+strings.Repeat("0", 64)+".zip", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing bundle: %s", resp.Status)
	}
	resp, _ = get(t, a.srv.URL+Path+"../etc/passwd", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bad name: %s", resp.Status)
	}
}

func TestRangeRequests(t *testing.T) {
	ns := startNATS(t)
	g := newGateway(t, ns, Config{}, nil)
	data := makeZip(t, map[string]string{"f": noise(500_000)})
	up, err := (&Client{BaseURL: g.srv.URL}).Upload(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	url := g.srv.URL + Path + up.SHA256 + ".zip"
	n := len(data)
	cases := []struct {
		rng        string
		status     int
		from, to   int // expected body data[from:to]
		contentRng string
	}{
		{"bytes=0-9", 206, 0, 10, fmt.Sprintf("bytes 0-9/%d", n)},
		{"bytes=200000-200099", 206, 200000, 200100, fmt.Sprintf("bytes 200000-200099/%d", n)},
		{"bytes=-7", 206, n - 7, n, fmt.Sprintf("bytes %d-%d/%d", n-7, n-1, n)},
		{fmt.Sprintf("bytes=%d-", n-3), 206, n - 3, n, fmt.Sprintf("bytes %d-%d/%d", n-3, n-1, n)},
		{fmt.Sprintf("bytes=5-%d", n+100), 206, 5, n, fmt.Sprintf("bytes 5-%d/%d", n-1, n)},
		{"bytes=0-1,5-6", 200, 0, n, ""},
		{"", 200, 0, n, ""},
	}
	for _, c := range cases {
		hdr := map[string]string{}
		if c.rng != "" {
			hdr["Range"] = c.rng
		}
		resp, body := get(t, url, hdr)
		if resp.StatusCode != c.status || !bytes.Equal(body, data[c.from:c.to]) || resp.Header.Get("Content-Range") != c.contentRng {
			t.Errorf("Range %q: %s, %d bytes, Content-Range %q; want %d, data[%d:%d], %q",
				c.rng, resp.Status, len(body), resp.Header.Get("Content-Range"), c.status, c.from, c.to, c.contentRng)
		}
	}
	resp, _ := get(t, url, map[string]string{"Range": fmt.Sprintf("bytes=%d-", n)})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", n) {
		t.Errorf("range past the end: %s %q", resp.Status, resp.Header.Get("Content-Range"))
	}
	resp, _ = get(t, url, map[string]string{"If-None-Match": `"` + up.SHA256 + `"`})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %s", resp.Status)
	}
}

func put(t *testing.T, url string, body []byte) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRejectedUploadsStoreNothing(t *testing.T) {
	ns := startNATS(t)
	g := newGateway(t, ns, Config{MaxBundleBytes: 200_000}, nil)
	ctx := context.Background()
	good := makeZip(t, map[string]string{"a": strings.Repeat("q", 1000)})
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	notZip := []byte("this is not a zip archive at all")
	slip := makeZip(t, map[string]string{"../../etc/cron.d/evil": "x"})
	abs := makeZip(t, map[string]string{"/etc/evil": "x"})
	big := make([]byte, 300_000)

	cases := []struct {
		name   string
		addr   string
		body   []byte
		status int
		code   string
	}{
		{"corrupted bytes", digestOf(good), flipped, 400, "ChecksumMismatch"},
		{"truncated body under the full checksum", digestOf(good), good[:len(good)-10], 400, "ChecksumMismatch"},
		{"hash matches but not a zip", digestOf(notZip), notZip, 400, "CorruptBundle"},
		{"truncated zip under its own hash", digestOf(good[:len(good)-10]), good[:len(good)-10], 400, "CorruptBundle"},
		{"zip slip", digestOf(slip), slip, 400, "UnsafeBundle"},
		{"absolute entry", digestOf(abs), abs, 400, "UnsafeBundle"},
		{"too large", digestOf(big), big, 413, "BundleTooLarge"},
	}
	for _, c := range cases {
		resp, body := put(t, g.srv.URL+Path+c.addr+".zip", c.body)
		if resp.StatusCode != c.status || !strings.Contains(body, `"code":"`+c.code+`"`) {
			t.Errorf("%s: %s %s; want %d %s", c.name, resp.Status, body, c.status, c.code)
		}
		if _, err := g.store.Stat(ctx, c.addr); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: bundle %s stored anyway (stat: %v)", c.name, c.addr, err)
		}
	}
}

// A client that declares Content-Length and hangs up half way: the real
// server path sees a short body and answers 400 IncompleteBody.
func TestHalfSentUploadOverTCP(t *testing.T) {
	ns := startNATS(t)
	g := newGateway(t, ns, Config{}, nil)
	data := makeZip(t, map[string]string{"a": strings.Repeat("z", 50_000)})
	digest := digestOf(data)
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s%s.zip HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", Path, digest, len(data))
	if _, err := conn.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "IncompleteBody") {
		t.Fatalf("half upload answered %s %s", resp.Status, b)
	}
	if _, err := g.store.Stat(context.Background(), digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("half upload stored: %v", err)
	}
}

// Uploads go through the gateway's SigV4 verifier; downloads need no key.
func TestUploadsAreAuthenticated(t *testing.T) {
	ns := startNATS(t)
	v := &sigv4.Verifier{Keys: map[string]string{"AKID": "secret"}, Region: "us-east-1", Service: "lambda"}
	g := newGateway(t, ns, Config{}, func(r *http.Request, body []byte) error {
		_, err := v.Verify(r, body)
		return err
	})
	ctx := context.Background()
	data := makeZip(t, map[string]string{"a": "b"})

	resp, body := put(t, g.srv.URL+Path+digestOf(data)+".zip", data)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "AccessDenied") {
		t.Fatalf("unsigned upload: %s %s", resp.Status, body)
	}
	sign := func(key string) func(context.Context, *http.Request, string) error {
		return func(ctx context.Context, r *http.Request, sum string) error {
			return v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: key}, r, sum, "lambda", "us-east-1", time.Now())
		}
	}
	if _, err := (&Client{BaseURL: g.srv.URL, Sign: sign("wrong")}).Upload(ctx, data); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("wrong key: %v", err)
	}
	up, err := (&Client{BaseURL: g.srv.URL, Sign: sign("secret")}).Upload(ctx, data)
	if err != nil || !up.Created {
		t.Fatalf("signed upload: %+v, %v", up, err)
	}
	resp, got := get(t, g.srv.URL+Path+up.SHA256+".zip", nil)
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("download: %s", resp.Status)
	}
}

type refs map[string]bool

func (r refs) References(context.Context) (map[string]bool, error) { return r, nil }

type failingRefs struct{}

func (failingRefs) References(context.Context) (map[string]bool, error) {
	return nil, errors.New("nomad unreachable")
}

func TestGCDeletesOnlyUnreferencedOldBundles(t *testing.T) {
	ns := startNATS(t)
	g := newGateway(t, ns, Config{GCGrace: "10m"}, nil)
	ctx := context.Background()
	var digests []string
	for i := range 3 {
		data := makeZip(t, map[string]string{"f": fmt.Sprint(i)})
		info, _, err := g.store.Put(ctx, digestOf(data), data)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, info.SHA256)
	}
	keep := refs{digests[0]: true}
	now := time.Now()
	if del, err := g.store.GC(ctx, now, keep); err != nil || len(del) != 0 {
		t.Fatalf("within the grace period GC deleted %v (%v)", del, err)
	}
	later := now.Add(11 * time.Minute)
	if del, err := g.store.GC(ctx, later, keep, failingRefs{}); err == nil || len(del) != 0 {
		t.Fatalf("a failing referencer must stop GC: deleted %v, err %v", del, err)
	}
	del, err := g.store.GC(ctx, later, keep, refs{digests[2]: true})
	if err != nil || len(del) != 1 || del[0] != digests[1] {
		t.Fatalf("GC deleted %v (%v); want only %s", del, err, digests[1])
	}
	for i, d := range digests {
		_, err := g.store.Stat(ctx, d)
		if gone := errors.Is(err, ErrNotFound); gone != (i == 1) {
			t.Errorf("bundle %d: stat %v", i, err)
		}
	}
}

func TestParseRange(t *testing.T) {
	for _, c := range []struct {
		h                string
		size             int64
		start, length    int64
		partial, satisfy bool
	}{
		{"bytes=0-0", 10, 0, 1, true, true},
		{"bytes=9-", 10, 9, 1, true, true},
		{"bytes=10-", 10, 0, 0, false, false},
		{"bytes=-0", 10, 0, 0, false, false},
		{"bytes=-20", 10, 0, 10, true, true},
		{"bytes=5-2", 10, 0, 10, false, true},
		{"items=0-1", 10, 0, 10, false, true},
		{"bytes=x-1", 10, 0, 10, false, true},
	} {
		s, l, p, ok := parseRange(c.h, c.size)
		if s != c.start || l != c.length || p != c.partial || ok != c.satisfy {
			t.Errorf("%q/%d: %d %d %v %v", c.h, c.size, s, l, p, ok)
		}
	}
}
