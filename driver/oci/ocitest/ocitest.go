// Package ocitest is test support for image functions: a real OCI
// distribution registry (go-containerregistry's registry package) served
// on loopback, optionally behind basic auth, that counts blob downloads and
// can corrupt a blob on the wire; and helpers that assemble real images
// from tar layers. Production packages must not import it.
//
// It may import the standard library and go-containerregistry.
package ocitest

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is a loopback OCI registry.
type Registry struct {
	// Host is "127.0.0.1:<port>", the registry part of references.
	Host string
	// User and Password, when set, are required (HTTP basic auth).
	User, Password string

	srv      *httptest.Server
	mu       sync.Mutex
	blobGets map[string]int
	corrupt  map[string]bool
}

// NewRegistry serves a registry until the test ends; user and password,
// when not empty, protect every request.
func NewRegistry(tb testing.TB, user, password string) *Registry {
	tb.Helper()
	r := &Registry{User: user, Password: password, blobGets: map[string]int{}, corrupt: map[string]bool{}}
	inner := registry.New(registry.Logger(nopLogger()))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.User != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.User || p != r.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="ocitest"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			d := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
			r.mu.Lock()
			r.blobGets[d]++
			bad := r.corrupt[d]
			r.mu.Unlock()
			if bad {
				rec := httptest.NewRecorder()
				inner.ServeHTTP(rec, req)
				body := rec.Body.Bytes()
				if len(body) > 0 {
					body[len(body)/2] ^= 0xff
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(body)
				return
			}
		}
		inner.ServeHTTP(w, req)
	}))
	tb.Cleanup(r.srv.Close)
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// Close stops serving (later pulls cannot reach it).
func (r *Registry) Close() { r.srv.Close() }

// BlobGets is how many times the blob with digest d was downloaded.
func (r *Registry) BlobGets(d string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets[d]
}

// Corrupt flips a byte of the blob with digest d in every later download.
func (r *Registry) Corrupt(d string) {
	r.mu.Lock()
	r.corrupt[d] = true
	r.mu.Unlock()
}

// DockerConfig writes a docker-style config.json with the registry's
// credentials and returns its path.
func (r *Registry) DockerConfig(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
	if err := os.WriteFile(p, []byte(`{"auths":{"`+r.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Push uploads img as repoTag ("team/fn:v1", relative to the registry)
// and returns its digest-pinned reference.
func (r *Registry) Push(tb testing.TB, repoTag string, img v1.Image) string {
	tb.Helper()
	ref, err := name.ParseReference(r.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	var a authn.Authenticator = authn.Anonymous
	if r.User != "" {
		a = &authn.Basic{Username: r.User, Password: r.Password}
	}
	if err := remote.Write(ref, img, remote.WithAuth(a)); err != nil {
		tb.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return ref.Context().Name() + "@" + d.String()
}

// Entry is one tar entry of a layer.
type Entry struct {
	Name     string
	Body     []byte
	Mode     int64 // default 0o644 for files, 0o755 for dirs, 0o777 links
	Type     byte  // tar.TypeReg (default), TypeDir, TypeSymlink, TypeLink
	Linkname string
	UID, GID int
}

// Layer is a gzip-compressed layer of entries, in order.
func Layer(tb testing.TB, entries ...Entry) v1.Layer {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Linkname: e.Linkname, Uid: e.UID, Gid: e.GID, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			switch h.Typeflag {
			case tar.TypeDir:
				h.Mode = 0o755
			case tar.TypeSymlink:
				h.Mode = 0o777
			default:
				h.Mode = 0o644
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Body); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// DirEntries turns a host directory into entries under prefix (e.g. the
// built aws-lambda-go binary's directory under "/var/task").
func DirEntries(tb testing.TB, dir, prefix string) []Entry {
	tb.Helper()
	var out []Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		n := strings.TrimPrefix(filepath.ToSlash(filepath.Join(prefix, rel)), "/")
		if n == "" || n == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out = append(out, Entry{Name: n, Type: tar.TypeDir, Mode: 0o755})
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, Entry{Name: n, Body: b, Mode: int64(fi.Mode().Perm())})
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// RandomLayer is a layer of one incompressible file of size bytes at name.
func RandomLayer(tb testing.TB, name string, size int) v1.Layer {
	tb.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	return Layer(tb, Entry{Name: name, Body: b})
}

// Image is an image for this machine's platform (linux/GOARCH) with cfg
// and the layers, bottom first.
func Image(tb testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	tb.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		tb.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// Digest is a layer's (compressed) digest.
func Digest(tb testing.TB, l v1.Layer) string {
	tb.Helper()
	d, err := l.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return d.String()
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
