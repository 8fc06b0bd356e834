package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/specs"
)

// keep is a Referencer naming a fixed set of bundles.
type keep map[string]bool

func (k keep) References(context.Context) (map[string]bool, error) { return k, nil }

func zipOf(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, body)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The gateway serves its artifact store on the NATS it runs for the queue:
// uploads are SigV4-checked like the API (over the whole body), downloads
// are open, and with references the unreferenced bundles are collected.
func TestServerArtifactStore(t *testing.T) {
	cfg := &config.Config{
		Dev: true, Listen: "127.0.0.1:0",
		AccessKeys: []config.AccessKey{{ID: "AKIDART", Secret: "art-secret"}},
		Artifacts:  &artifacts.Config{GCGrace: "0s", GCInterval: "20ms"},
	}
	kept := zipOf(t, "bootstrap", "kept")
	k := map[string]bool{}
	s, err := server.New(cfg, server.Deps{
		Catalog:      snapCatalog{catalog.NewSnapshot(catalog.FromFile(&specs.File{}))},
		Source:       gatewaytest.NewSource(),
		ArtifactRefs: []artifacts.Referencer{keep(k)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr()
	client := func(secret string) *artifacts.Client {
		return &artifacts.Client{BaseURL: base, Sign: func(ctx context.Context, r *http.Request, payload string) error {
			creds := aws.Credentials{AccessKeyID: "AKIDART", SecretAccessKey: secret}
			return v4.NewSigner().SignHTTP(ctx, creds, r, payload, "lambda", cfg.Region, time.Now())
		}}
	}
	if _, err := client("wrong").Upload(ctx, kept); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("wrongly signed upload: %v", err)
	}
	unsigned := &artifacts.Client{BaseURL: base}
	if _, err := unsigned.Upload(ctx, kept); err == nil {
		t.Fatal("unsigned upload accepted by a gateway with access keys")
	}
	up, err := client("art-secret").Upload(ctx, kept)
	if err != nil || !up.Created {
		t.Fatalf("signed upload: %+v %v", up, err)
	}
	// Collection starts with Serve, after the kept bundle is named.
	k[up.SHA256] = true
	status, body := get(t, base+artifacts.Path+up.SHA256+".zip")
	if status != 200 || body != string(kept) {
		t.Fatalf("download: %d (%d bytes)", status, len(body))
	}

	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	other, err := client("art-secret").Upload(ctx, zipOf(t, "bootstrap", "unreferenced"))
	if err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		_, err := s.Artifacts().Stat(ctx, other.SHA256)
		return errors.Is(err, artifacts.ErrNotFound)
	}, "the unreferenced bundle is collected")
	if _, err := s.Artifacts().Stat(ctx, up.SHA256); err != nil {
		t.Fatalf("the referenced bundle: %v", err)
	}
	if status, _ := get(t, base+artifacts.Path+up.SHA256+".zip"); status != 200 {
		t.Fatalf("referenced bundle after GC: %d", status)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
