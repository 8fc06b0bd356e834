package images_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/images"
)

// registryWithImage serves go-containerregistry's registry on loopback
// (behind basic auth user:pass when auth is set) holding one random image
// at team/fn:v1; it returns the host and the image's digest.
func registryWithImage(t *testing.T, auth bool) (string, string) {
	t.Helper()
	reg := registry.New()
	h := reg
	if auth {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "pass" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			reg.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/team/fn:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{}
	if auth {
		opts = append(opts, remote.WithAuth(&basic{}))
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return host, d.String()
}

type basic struct{}

type authnConfig = authn.AuthConfig

func (basic) Authorization() (*authnConfig, error) {
	return &authnConfig{Username: "user", Password: "pass"}, nil
}

func TestResolve(t *testing.T) {
	host, digest := registryWithImage(t, false)
	r := images.NewResolver(oci.DockerConfig(func(string) string { return "" }))
	ctx := context.Background()
	got, err := r.Resolve(ctx, host+"/team/fn:v1")
	if err != nil || got != host+"/team/fn@"+digest {
		t.Fatalf("resolving a tag: %q, %v; want %s/team/fn@%s", got, err, host, digest)
	}
	// A digest reference is checked with the registry too.
	if got, err := r.Resolve(ctx, host+"/team/fn@"+digest); err != nil || got != host+"/team/fn@"+digest {
		t.Fatalf("resolving a digest: %q, %v", got, err)
	}
	for _, ref := range []string{
		host + "/team/fn:v2",
		host + "/team/other:v1",
		host + "/team/fn@sha256:" + strings.Repeat("0", 64),
	} {
		_, err := r.Resolve(ctx, ref)
		if code := functions.ReasonCode(err); code != functions.ReasonImageDeleted {
			t.Errorf("resolving missing %s: %v (reason %s), want ImageDeleted", ref, err, code)
		}
	}
	if _, err := r.Resolve(ctx, "not a reference"); functions.ReasonCode(err) != functions.ReasonInvalidImage {
		t.Errorf("resolving a malformed reference: %v", err)
	}
}

// Credentials come from the docker-style config DOCKER_CONFIG names; without
// them the registry's refusal is ImageAccessDenied.
func TestResolveWithDockerConfig(t *testing.T) {
	host, digest := registryWithImage(t, true)
	ctx := context.Background()
	dir := t.TempDir()
	env := func(k string) string {
		if k == "DOCKER_CONFIG" {
			return dir
		}
		return ""
	}
	r := images.NewResolver(oci.DockerConfig(env))
	if _, err := r.Resolve(ctx, host+"/team/fn:v1"); functions.ReasonCode(err) != functions.ReasonImageAccessDenied {
		t.Fatalf("resolving without credentials: %v, want ImageAccessDenied", err)
	}
	cfg := `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("user:pass")) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := r.Resolve(ctx, host+"/team/fn:v1")
	if err != nil || got != host+"/team/fn@"+digest {
		t.Fatalf("resolving with credentials: %q, %v", got, err)
	}
	helper := `{"credHelpers":{"` + host + `":"secretservice"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(helper), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, host+"/team/fn:v1"); err == nil || !strings.Contains(err.Error(), "credential helper") {
		t.Fatalf("a credential helper must be refused by name: %v", err)
	}
}
