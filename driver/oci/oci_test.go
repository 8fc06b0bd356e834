package oci

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/nimbus-fn/nimbus/driver/oci/ocitest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func openStore(t *testing.T, max int64) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), max)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unpacking whiteouts needs root (CAP_MKNOD, trusted xattrs)")
	}
}

// storeEmpty fails t unless the store holds no layer and no unpack leftovers.
func storeEmpty(t *testing.T, s *Store) {
	t.Helper()
	for _, d := range []string{"layers", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(s.Dir(), d))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) > 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("%s/ is not empty: %v", d, names)
		}
	}
}

func TestPullResolveAndConfig(t *testing.T) {
	needRoot(t)
	reg := ocitest.NewRegistry(t, "", "")
	img := ocitest.Image(t, v1.Config{Entrypoint: []string{"/main"}, Cmd: []string{"handler"}, Env: []string{"A=1"}, WorkingDir: "/work", User: "1000"},
		ocitest.Layer(t, ocitest.Entry{Name: "main", Body: []byte("#!/bin/sh\n"), Mode: 0o755}))
	pinned := reg.Push(t, "team/fn:v1", img)

	got, err := Resolve(ctx(t), reg.Host+"/team/fn:v1", Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if got != pinned {
		t.Fatalf("Resolve = %s, want %s", got, pinned)
	}
	if again, err := Resolve(ctx(t), pinned, Auth{}); err != nil || again != pinned {
		t.Fatalf("Resolve(digest) = %s, %v", again, err)
	}

	s := openStore(t, 0)
	im, err := s.Pull(ctx(t), reg.Host+"/team/fn:v1", Auth{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(im)
	if im.Ref != pinned || !strings.HasSuffix(pinned, im.Digest) {
		t.Fatalf("image ref %s digest %s, pushed %s", im.Ref, im.Digest, pinned)
	}
	want := ImageConfig{Entrypoint: []string{"/main"}, Cmd: []string{"handler"}, Env: []string{"A=1"}, WorkingDir: "/work", User: "1000"}
	if fmt.Sprint(im.Config) != fmt.Sprint(want) {
		t.Fatalf("config %+v, want %+v", im.Config, want)
	}
	if len(im.Layers) != 1 {
		t.Fatalf("layers %v", im.Layers)
	}
	fi, err := os.Stat(filepath.Join(im.Layers[0], "main"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("main: %v %v", fi, err)
	}
	if im.Size <= 0 || s.Usage() != im.Size {
		t.Fatalf("size %d, usage %d", im.Size, s.Usage())
	}
}

func TestDigestPullNeedsNoRegistryOnceCached(t *testing.T) {
	needRoot(t)
	reg := ocitest.NewRegistry(t, "", "")
	pinned := reg.Push(t, "fn:v1", ocitest.Image(t, v1.Config{Entrypoint: []string{"/x"}}, ocitest.Layer(t, ocitest.Entry{Name: "x", Body: []byte("x")})))
	s := openStore(t, 0)
	im, err := s.Pull(ctx(t), pinned, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	s.Release(im)
	reg.Close()
	im2, err := s.Pull(ctx(t), pinned, Auth{})
	if err != nil {
		t.Fatalf("cached pull with the registry down: %v", err)
	}
	s.Release(im2)
	if _, err := s.Pull(ctx(t), strings.Replace(pinned, "fn@", "other@", 1), Auth{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("uncached pull with the registry down: %v", err)
	}
}

func TestAuth(t *testing.T) {
	needRoot(t)
	reg := ocitest.NewRegistry(t, "alice", "s3cret")
	pinned := reg.Push(t, "private/fn:v1", ocitest.Image(t, v1.Config{}, ocitest.Layer(t, ocitest.Entry{Name: "f", Body: []byte("f")})))
	s := openStore(t, 0)

	_, err := s.Pull(ctx(t), pinned, Auth{})
	if !errors.Is(err, ErrAccessDenied) || ErrorType(err) != ReasonImageAccessDenied {
		t.Fatalf("anonymous pull: %v (%s)", err, ErrorType(err))
	}
	_, err = Resolve(ctx(t), reg.Host+"/private/fn:v1", Auth{Credentials: []Credential{{Registry: reg.Host, Username: "alice", Password: "wrong"}}})
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("wrong password: %v", err)
	}
	for name, a := range map[string]Auth{
		"credentials": {Credentials: []Credential{{Registry: "other.example", Username: "x", Password: "y"}, {Registry: reg.Host, Username: "alice", Password: "s3cret"}}},
		"config file": {ConfigFile: reg.DockerConfig(t)},
	} {
		if err := a.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := Resolve(ctx(t), reg.Host+"/private/fn:v1", a)
		if err != nil || got != pinned {
			t.Fatalf("%s: resolve %s, %v", name, got, err)
		}
		im, err := s.Pull(ctx(t), pinned, a)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s.Release(im)
	}
}

func TestAuthValidateAndInsecure(t *testing.T) {
	bad := []Auth{
		{Credentials: []Credential{{Username: "a", Password: "b"}}},
		{Credentials: []Credential{{Registry: "r", Username: "a"}}},
		{Credentials: []Credential{{Registry: "r", Username: "a", Password: "b", Token: "t"}}},
		{InsecureRegistries: []string{"http://r/x"}},
		{ConfigFile: filepath.Join(t.TempDir(), "missing.json")},
	}
	for i, a := range bad {
		if a.Validate() == nil {
			t.Errorf("case %d: %+v validated", i, a)
		}
	}
	if err := (Auth{Credentials: []Credential{{Registry: "r", Token: "t"}}}).Validate(); err != nil {
		t.Fatal(err)
	}
	a := Auth{InsecureRegistries: []string{"build.internal:5000"}}
	for reg, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:33": true, "[::1]:5000": true, "127.8.9.1": true,
		"build.internal:5000": true, "build.internal": false, "registry.example": false, "10.0.0.1:5000": false,
	} {
		if got := a.insecure(reg); got != want {
			t.Errorf("insecure(%s) = %v, want %v", reg, got, want)
		}
	}
}

func TestMissingImage(t *testing.T) {
	reg := ocitest.NewRegistry(t, "", "")
	s := openStore(t, 0)
	_, err := s.Pull(ctx(t), reg.Host+"/nope/fn@sha256:"+strings.Repeat("ab", 32), Auth{})
	if !errors.Is(err, ErrNotFound) || ErrorType(err) != ReasonImageDeleted {
		t.Fatalf("pull: %v (%s)", err, ErrorType(err))
	}
	if _, err := Resolve(ctx(t), reg.Host+"/nope/fn:latest", Auth{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve: %v", err)
	}
	if _, err := Resolve(ctx(t), "UPPER/Case::bad", Auth{}); !errors.Is(err, ErrInvalidReference) {
		t.Fatalf("bad reference: %v", err)
	}
	storeEmpty(t, s)
}

func TestCorruptLayerRefusedAndCacheClean(t *testing.T) {
	needRoot(t)
	reg := ocitest.NewRegistry(t, "", "")
	good := ocitest.Layer(t, ocitest.Entry{Name: "ok", Body: []byte("fine")})
	bad := ocitest.Layer(t, ocitest.Entry{Name: "big", Body: []byte(strings.Repeat("payload ", 4096))})
	pinned := reg.Push(t, "fn:v1", ocitest.Image(t, v1.Config{}, good, bad))
	reg.Corrupt(ocitest.Digest(t, bad))
	reg.Corrupt(ocitest.Digest(t, good)) // both corrupt: no layer may stay
	s := openStore(t, 0)
	_, err := s.Pull(ctx(t), pinned, Auth{})
	if !errors.Is(err, ErrInvalidImage) || ErrorType(err) != ReasonInvalidImage {
		t.Fatalf("pull: %v", err)
	}
	if !strings.Contains(err.Error(), "does not match its digest") || !(strings.Contains(err.Error(), ocitest.Digest(t, bad)) || strings.Contains(err.Error(), ocitest.Digest(t, good))) {
		t.Fatalf("error does not name the layer: %v", err)
	}
	storeEmpty(t, s)
}

func TestWhiteoutsOverlay(t *testing.T) {
	needRoot(t)
	reg := ocitest.NewRegistry(t, "", "")
	lower := ocitest.Layer(t,
		ocitest.Entry{Name: "a/", Type: tar.TypeDir},
		ocitest.Entry{Name: "a/keep", Body: []byte("keep")},
		ocitest.Entry{Name: "a/gone", Body: []byte("gone")},
		ocitest.Entry{Name: "b/", Type: tar.TypeDir},
		ocitest.Entry{Name: "b/old", Body: []byte("old")},
		ocitest.Entry{Name: "c", Body: []byte("file becomes dir")},
	)
	upper := ocitest.Layer(t,
		ocitest.Entry{Name: "a/.wh.gone"},
		ocitest.Entry{Name: "b/.wh..wh..opq"},
		ocitest.Entry{Name: "b/new", Body: []byte("new")},
		ocitest.Entry{Name: ".wh.c"},
		ocitest.Entry{Name: "c/", Type: tar.TypeDir},
		ocitest.Entry{Name: "c/inside", Body: []byte("in")},
		ocitest.Entry{Name: "hard", Type: tar.TypeLink, Linkname: "b/new"},
		ocitest.Entry{Name: "abs", Type: tar.TypeSymlink, Linkname: "/a/keep"},
	)
	pinned := reg.Push(t, "wh:v1", ocitest.Image(t, v1.Config{}, lower, upper))
	s := openStore(t, 0)
	im, err := s.Pull(ctx(t), pinned, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(im)
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(im.Layers[1], "a/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("a/gone is not a 0/0 whiteout: %+v %v", st, err)
	}
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(im.Layers[1], "b"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("b is not opaque: %q %v", buf[:n], err)
	}
	var a, b unix.Stat_t
	_ = unix.Stat(filepath.Join(im.Layers[1], "hard"), &a)
	_ = unix.Stat(filepath.Join(im.Layers[1], "b/new"), &b)
	if a.Ino == 0 || a.Ino != b.Ino {
		t.Fatalf("hard link not shared: %d %d", a.Ino, b.Ino)
	}

	// What an environment sees: the layers stacked by overlayfs.
	mnt := t.TempDir()
	opts := "lowerdir=" + im.Layers[1] + ":" + im.Layers[0]
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mounting overlay: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	for p, want := range map[string]string{"a/keep": "keep", "b/new": "new", "c/inside": "in", "hard": "new"} {
		if b, err := os.ReadFile(filepath.Join(mnt, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	for _, p := range []string{"a/gone", "b/old"} {
		if _, err := os.Lstat(filepath.Join(mnt, p)); !os.IsNotExist(err) {
			t.Errorf("%s still visible: %v", p, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(mnt, "abs")); err != nil || l != "/a/keep" {
		t.Errorf("abs symlink: %q %v", l, err)
	}
}

func TestEscapesRefused(t *testing.T) {
	needRoot(t)
	cases := map[string][]ocitest.Entry{
		"dotdot":       {{Name: "../evil", Body: []byte("x")}},
		"dotdot-deep":  {{Name: "a/../../evil", Body: []byte("x")}},
		"abs-symlink":  {{Name: "l", Type: tar.TypeSymlink, Linkname: "/"}, {Name: "l/tmp/evil", Body: []byte("x")}},
		"rel-symlink":  {{Name: "d/", Type: tar.TypeDir}, {Name: "d/up", Type: tar.TypeSymlink, Linkname: "../.."}, {Name: "d/up/evil", Body: []byte("x")}},
		"hardlink-out": {{Name: "h", Type: tar.TypeLink, Linkname: "../../etc/passwd"}},
		"hardlink-abs": {{Name: "h", Type: tar.TypeLink, Linkname: "/etc/passwd"}},
		"whiteout-out": {{Name: "l", Type: tar.TypeSymlink, Linkname: "/etc"}, {Name: "l/.wh.passwd"}},
	}
	reg := ocitest.NewRegistry(t, "", "")
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			pinned := reg.Push(t, "esc/"+name+":v1", ocitest.Image(t, v1.Config{}, ocitest.Layer(t, entries...)))
			s := openStore(t, 0)
			_, err := s.Pull(ctx(t), pinned, Auth{})
			if !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("pull: %v", err)
			}
			storeEmpty(t, s)
			for _, p := range []string{filepath.Join(filepath.Dir(s.Dir()), "evil"), filepath.Join(s.Dir(), "evil"), "/tmp/evil"} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s was written", p)
				}
			}
		})
	}
	// /etc/passwd is whatever it was: a regular file.
	var st syscall.Stat_t
	if err := syscall.Stat("/etc/passwd", &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Fatalf("/etc/passwd: %v", err)
	}
}

func TestSharedLayersAndConcurrentPulls(t *testing.T) {
	needRoot(t)
	reg := ocitest.NewRegistry(t, "", "")
	base := ocitest.RandomLayer(t, "base.bin", 256<<10)
	a := ocitest.Layer(t, ocitest.Entry{Name: "a", Body: []byte("a")})
	b := ocitest.Layer(t, ocitest.Entry{Name: "b", Body: []byte("b")})
	refA := reg.Push(t, "fa:v1", ocitest.Image(t, v1.Config{}, base, a))
	refB := reg.Push(t, "fb:v1", ocitest.Image(t, v1.Config{}, base, b))
	s := openStore(t, 0)
	var wg sync.WaitGroup
	images := make([]*Image, 8)
	errs := make([]error, 8)
	for i := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := refA
			if i%2 == 1 {
				ref = refB
			}
			images[i], errs[i] = s.Pull(ctx(t), ref, Auth{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		defer s.Release(images[i])
	}
	if n := reg.BlobGets(ocitest.Digest(t, base)); n != 1 {
		t.Fatalf("shared base layer downloaded %d times", n)
	}
	if images[0].Layers[0] != images[1].Layers[0] {
		t.Fatalf("base layer stored twice: %s %s", images[0].Layers[0], images[1].Layers[0])
	}
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), "layers"))
	if len(ents) != 6 { // 3 dirs + 3 size files
		t.Fatalf("layers/ has %d entries", len(ents))
	}
}

func TestEvictionLRUAndPins(t *testing.T) {
	needRoot(t)
	reg := ocitest.NewRegistry(t, "", "")
	const mb = 1 << 20
	small1 := reg.Push(t, "s1:v1", ocitest.Image(t, v1.Config{}, ocitest.RandomLayer(t, "s1", 300<<10)))
	small2 := reg.Push(t, "s2:v1", ocitest.Image(t, v1.Config{}, ocitest.RandomLayer(t, "s2", 300<<10)))
	huge := reg.Push(t, "huge:v1", ocitest.Image(t, v1.Config{Entrypoint: []string{"/h"}}, ocitest.RandomLayer(t, "h1", 2*mb), ocitest.RandomLayer(t, "h2", 2*mb)))
	s := openStore(t, mb)

	im1, err := s.Pull(ctx(t), small1, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	s.Release(im1)
	im2, err := s.Pull(ctx(t), small2, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	// Both fit (~600 KiB of 1 MiB); im2 stays in use.
	if _, err := os.Stat(im1.Layers[0]); err != nil {
		t.Fatalf("small1 evicted while the cache had room: %v", err)
	}

	// An image larger than the whole cache still comes in and stays while
	// it is used; the least recently used unpinned layer (small1) goes.
	big, err := s.Pull(ctx(t), huge, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range big.Layers {
		if _, err := os.Stat(filepath.Join(l, fmt.Sprintf("h%d", i+1))); err != nil {
			t.Fatalf("pinned layer %s evicted: %v", l, err)
		}
	}
	if _, err := os.Stat(im1.Layers[0]); !os.IsNotExist(err) {
		t.Fatalf("unpinned small1 not evicted: %v", err)
	}
	if _, err := os.Stat(im2.Layers[0]); err != nil {
		t.Fatalf("pinned small2 evicted: %v", err)
	}
	// A second user of the big image pins it too.
	big2, err := s.Acquire(big)
	if err != nil {
		t.Fatal(err)
	}
	s.Release(big)
	s.Release(big) // twice is harmless
	for _, l := range big.Layers {
		if _, err := os.Stat(l); err != nil {
			t.Fatalf("layer evicted while another user holds it: %v", err)
		}
	}
	s.Release(big2)
	for _, l := range big.Layers {
		if _, err := os.Stat(l); !os.IsNotExist(err) {
			t.Fatalf("big layer %s kept after release: %v", l, err)
		}
	}
	if _, err := os.Stat(im2.Layers[0]); err != nil {
		t.Fatalf("small2 (in use) harmed: %v", err)
	}
	if u := s.Usage(); u > mb {
		t.Fatalf("usage %d over the bound %d", u, mb)
	}
	if _, err := s.Acquire(big); err == nil {
		t.Fatal("acquired an evicted image")
	}
	s.Release(im2)
	// Pulled again after eviction: downloaded again, fine.
	big3, err := s.Pull(ctx(t), huge, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	s.Release(big3)
}

func TestCommand(t *testing.T) {
	cfg := ImageConfig{Entrypoint: []string{"/lambda-entrypoint.sh"}, Cmd: []string{"app.handler"}}
	for _, c := range []struct {
		ep, cmd, want []string
	}{
		{nil, nil, []string{"/lambda-entrypoint.sh", "app.handler"}},
		{nil, []string{"other.handler"}, []string{"/lambda-entrypoint.sh", "other.handler"}},
		{[]string{"/main"}, nil, []string{"/main", "app.handler"}},
		{[]string{"/main"}, []string{"x"}, []string{"/main", "x"}},
	} {
		if got := Command(cfg, c.ep, c.cmd); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("Command(%v, %v) = %v, want %v", c.ep, c.cmd, got, c.want)
		}
	}
}

// The user's docker config (DockerConfig) may be missing: access is then
// anonymous, and a `docker login` written later is read at the next call.
// A registry handed to a credential helper is refused by name, for the
// driver's registry_auth_file as for the user's config.
func TestDockerConfigAndHelpers(t *testing.T) {
	reg := ocitest.NewRegistry(t, "alice", "s3cret")
	pinned := reg.Push(t, "private/fn:v1", ocitest.Image(t, v1.Config{}, ocitest.Layer(t, ocitest.Entry{Name: "f", Body: []byte("f")})))
	dir := t.TempDir()
	a := DockerConfig(func(k string) string {
		if k == "DOCKER_CONFIG" {
			return dir
		}
		return "/nonexistent-home"
	})
	if a.ConfigFile != filepath.Join(dir, "config.json") || !a.ConfigFileOptional {
		t.Fatalf("DockerConfig = %+v", a)
	}
	if home := DockerConfig(func(k string) string { return map[string]string{"HOME": "/h"}[k] }); home.ConfigFile != "/h/.docker/config.json" {
		t.Fatalf("DockerConfig from HOME = %+v", home)
	}
	if none := DockerConfig(func(string) string { return "" }); none.ConfigFile != "" {
		t.Fatalf("DockerConfig without DOCKER_CONFIG or HOME = %+v", none)
	}
	if err := a.Validate(); err != nil {
		t.Fatalf("a missing optional config: %v", err)
	}
	_, err := Resolve(ctx(t), reg.Host+"/private/fn:v1", a)
	if !errors.Is(err, ErrAccessDenied) || Reason(err) != ReasonImageAccessDenied {
		t.Fatalf("anonymous resolve: %v (%s)", err, Reason(err))
	}
	if err := os.Rename(reg.DockerConfig(t), filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	if got, err := Resolve(ctx(t), reg.Host+"/private/fn:v1", a); err != nil || got != pinned {
		t.Fatalf("resolve after docker login: %s, %v", got, err)
	}
	// The same Auth is the keychain others (nimbus build --push) use.
	if au, err := a.Resolve(fakeResource(reg.Host)); err != nil || au == nil {
		t.Fatalf("keychain: %v %v", au, err)
	} else if cfg, _ := au.Authorization(); cfg.Username != "alice" || cfg.Password != "s3cret" {
		t.Fatalf("keychain credentials %+v", cfg)
	}

	helpers := map[string]string{
		"credential helper": `{"credHelpers":{"` + reg.Host + `":"secretservice"}}`,
		"credential store":  `{"credsStore":"desktop"}`,
	}
	for want, cfg := range helpers {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		for who, auth := range map[string]Auth{"user config": a, "registry_auth_file": {ConfigFile: filepath.Join(dir, "config.json")}} {
			_, err := Resolve(ctx(t), reg.Host+"/private/fn:v1", auth)
			if err == nil || !strings.Contains(err.Error(), want) || Reason(err) != "" {
				t.Errorf("%s with a %s: %v (reason %q), want the helper refused by name", who, want, err, Reason(err))
			}
			s := openStore(t, 0)
			if _, err := s.Pull(ctx(t), pinned, auth); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s with a %s: pull %v", who, want, err)
			}
		}
	}
	// The driver's registry_auth_file must exist.
	if err := (Auth{ConfigFile: filepath.Join(dir, "missing.json")}).Validate(); err == nil {
		t.Error("a missing registry_auth_file validated")
	}
}

type fakeResource string

func (r fakeResource) String() string      { return string(r) }
func (r fakeResource) RegistryStr() string { return string(r) }

// Resolve always asks the registry, for a digest too; it wants references
// spelled out (what gets pinned), while a pull takes docker's short forms.
// Reason names only failures that are the image's.
func TestResolveChecksDigestsAndReasons(t *testing.T) {
	reg := ocitest.NewRegistry(t, "", "")
	pinned := reg.Push(t, "team/fn:v1", ocitest.Image(t, v1.Config{}, ocitest.Layer(t, ocitest.Entry{Name: "f", Body: []byte("f")})))
	gone := reg.Host + "/team/fn@sha256:" + strings.Repeat("0", 64)
	if _, err := Resolve(ctx(t), gone, Auth{}); !errors.Is(err, ErrNotFound) || Reason(err) != ReasonImageDeleted {
		t.Fatalf("resolving a digest the registry lacks: %v", err)
	}
	if got, err := Resolve(ctx(t), pinned, Auth{}); err != nil || got != pinned {
		t.Fatalf("resolving a digest: %s %v", got, err)
	}
	if _, err := Resolve(ctx(t), "alpine:3", Auth{}); !errors.Is(err, ErrInvalidReference) || Reason(err) != ReasonInvalidImage {
		t.Fatalf("a short reference: %v", err)
	}
	if _, err := (Auth{}).parse("alpine:3", false); err != nil {
		t.Fatalf("a pull's short reference: %v", err)
	}
	reg.Close()
	_, err := Resolve(ctx(t), pinned, Auth{})
	if !errors.Is(err, ErrUnavailable) || Reason(err) != "" || ErrorType(err) != ReasonInvalidImage {
		t.Fatalf("registry down: %v, reason %q, error type %s", err, Reason(err), ErrorType(err))
	}
}

// An image of more layers than overlayfs stacks is refused before any
// layer is fetched, naming the limit, as an invalid image.
func TestTooManyLayersRefused(t *testing.T) {
	reg := ocitest.NewRegistry(t, "", "")
	// One layer MaxLayers+1 times: one blob to push, as many to stack.
	layers := make([]v1.Layer, MaxLayers+1)
	one := ocitest.Layer(t, ocitest.Entry{Name: "f", Body: []byte("f")})
	for i := range layers {
		layers[i] = one
	}
	pinned := reg.Push(t, "many:v1", ocitest.Image(t, v1.Config{}, layers...))
	s := openStore(t, 0)
	_, err := s.Pull(ctx(t), pinned, Auth{})
	if !errors.Is(err, ErrInvalidImage) || Reason(err) != ReasonInvalidImage || !strings.Contains(err.Error(), fmt.Sprintf("%d layers", MaxLayers+1)) || !strings.Contains(err.Error(), fmt.Sprint("at most ", MaxLayers)) {
		t.Fatalf("pulling a %d-layer image: %v", len(layers), err)
	}
	if n := reg.BlobGets(ocitest.Digest(t, layers[0])); n != 0 {
		t.Fatalf("a layer was fetched %d times", n)
	}
	storeEmpty(t, s)
}
