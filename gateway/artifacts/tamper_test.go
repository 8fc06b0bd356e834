package artifacts

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
)

// attacker is a client with write access to the NATS system (its token):
// it writes the artifact bucket directly, past the upload checks.
type attacker struct {
	nc  *nats.Conn
	obj jetstream.ObjectStore
}

func newAttacker(t *testing.T, url string) *attacker {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(context.Background(), "nimbus_artifacts")
	if err != nil {
		t.Fatal(err)
	}
	return &attacker{nc: nc, obj: obj}
}

// replace stores content under digest's object name, the object store's
// own way: its recorded digest is the new content's.
func (a *attacker) replace(t *testing.T, digest string, content []byte) {
	t.Helper()
	if _, err := a.obj.Put(context.Background(), jetstream.ObjectMeta{Name: objectName(digest)}, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
}

// forge stores content under digest's object name and then rewrites the
// object's metadata to claim digest as its SHA-256, so only hashing the
// content itself tells.
func (a *attacker) forge(t *testing.T, digest string, content []byte) {
	t.Helper()
	a.replace(t, digest, content)
	oi, err := a.obj.GetInfo(context.Background(), objectName(digest))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(digest)
	if err != nil {
		t.Fatal(err)
	}
	oi.Digest = "SHA-256=" + base64.URLEncoding.EncodeToString(raw)
	data, err := json.Marshal(oi)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("$O.nimbus_artifacts.M." + base64.URLEncoding.EncodeToString([]byte(objectName(digest))))
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Data = data
	js, _ := jetstream.New(a.nc)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	back, err := a.obj.GetInfo(context.Background(), objectName(digest))
	if err != nil || back.Digest != oi.Digest {
		t.Fatalf("forging the metadata: %v, %v", back, err)
	}
}

// A bundle whose content was replaced in the object store, by someone with
// NATS access, is not served: GET, a range and HEAD answer 502 with the
// reason, the log says so, and no byte of the replacement goes out. The
// genuine bundle next to it is still served.
func TestTamperedBundlesAreNotServed(t *testing.T) {
	ns := startNATS(t)
	logs := &gatewaytest.LogBuffer{}
	nc, err := ns.Connect("gateway")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spool := t.TempDir()
	st, err := Open(ctx, js, Config{SpoolDir: spool}, hclog.New(&hclog.LoggerOptions{Output: logs}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(st, nil))
	t.Cleanup(srv.Close)
	c := &Client{BaseURL: srv.URL}

	genuine := makeZip(t, map[string]string{"bootstrap": noise(200_000)})
	replaced := makeZip(t, map[string]string{"bootstrap": noise(200_001)})
	forged := makeZip(t, map[string]string{"bootstrap": noise(200_002)})
	for _, b := range [][]byte{genuine, replaced, forged} {
		if _, err := c.Upload(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	evil := []byte("PK\x03\x04 not what was uploaded: " + noise(150_000))
	a := newAttacker(t, ns.ClientURL())
	a.replace(t, digestOf(replaced), evil)
	a.forge(t, digestOf(forged), evil)

	for name, digest := range map[string]string{"replaced": digestOf(replaced), "forged metadata": digestOf(forged)} {
		for _, tc := range []struct {
			method string
			hdr    map[string]string
		}{{"GET", nil}, {"GET", map[string]string{"Range": "bytes=0-99"}}, {"HEAD", nil}} {
			if name == "forged metadata" && tc.method == "HEAD" {
				continue // HEAD trusts the recorded digest: it sends no content
			}
			req, _ := http.NewRequest(tc.method, c.URL(digest), nil)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(HeaderSHA256) != "" {
				t.Errorf("%s: %s %v answered %s %v", name, tc.method, tc.hdr, resp.Status, resp.Header)
			}
			if tc.method == "GET" && (!strings.Contains(body.String(), "StoredBundleMismatch") || !strings.Contains(body.String(), digest) ||
				bytes.Contains(body.Bytes(), evil[:40])) {
				t.Errorf("%s: %s %v body %.300s", name, tc.method, tc.hdr, body.String())
			}
		}
		if !strings.Contains(logs.String(), "stored bundle does not match its address") || !strings.Contains(logs.String(), digest) {
			t.Errorf("%s: the log does not report the mismatch:\n%s", name, logs)
		}
	}

	resp, body := get(t, c.URL(digestOf(genuine)), nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, genuine) {
		t.Fatalf("the genuine bundle: %s, %d bytes", resp.Status, len(body))
	}
	resp, body = get(t, c.URL(digestOf(genuine)), map[string]string{"Range": "bytes=100-199"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, genuine[100:200]) {
		t.Fatalf("a range of the genuine bundle: %s, %q", resp.Status, body)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Fatalf("spool files left behind: %v", left)
	}
}
