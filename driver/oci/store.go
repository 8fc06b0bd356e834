package oci

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
)

// Store is a content-addressed cache of unpacked image layers in one
// directory, shared by every process on the client that opens it (the
// instances of every function). Its layout:
//
//	layers/sha256-<hex>/       a layer, unpacked (overlayfs form), read-only by convention
//	layers/sha256-<hex>.size   its size in bytes; its mtime is the layer's last use
//	locks/sha256-<hex>         flock: exclusive while the layer is unpacked or
//	                           evicted, shared while an image holding it is in use
//	images/<repo>-sha256-<hex>.json   a pulled manifest's layers and start config
//	tmp/                       unpacks in progress (renamed into layers/ when verified)
//
// Pins are flocks, so pins held by other processes protect a layer from
// this one's eviction and a dying process drops its pins.
type Store struct {
	dir      string
	maxBytes int64
	// gcMu keeps this process's evictions one at a time.
	gcMu sync.Mutex
	// pullLimit bounds the layers one Pull downloads at once.
	pullLimit int
}

// Open opens (creating it) the store in dir, bounded to maxBytes of
// layers (0 or less: unbounded). Unpacks left half done by a crash are removed.
func Open(dir string, maxBytes int64) (*Store, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("image cache dir %q must be an absolute path", dir)
	}
	for _, d := range []string{"layers", "locks", "images", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o711); err != nil {
			return nil, fmt.Errorf("opening image cache: %w", err)
		}
	}
	// The layers are bound into environments as their root: the path to
	// them must be searchable by the functions' users.
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, fmt.Errorf("opening image cache: %w", err)
	}
	s := &Store{dir: dir, maxBytes: maxBytes, pullLimit: 3}
	s.cleanTmp()
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// cleanTmp removes unpacks no live process is writing (an unpack holds its
// layer's lock exclusively; a leftover's lock is free).
func (s *Store) cleanTmp() {
	ents, _ := os.ReadDir(filepath.Join(s.dir, "tmp"))
	for _, e := range ents {
		key, _, _ := strings.Cut(e.Name(), ".")
		lk, err := s.tryLock(key, syscall.LOCK_EX)
		if err != nil {
			continue
		}
		_ = os.RemoveAll(filepath.Join(s.dir, "tmp", e.Name()))
		lk.Close()
	}
}

// layerMeta is one layer of a pulled image.
type layerMeta struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diff_id"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

// imageMeta is what a pull keeps of a manifest (by its digest).
type imageMeta struct {
	Repository string      `json:"repository"`
	Digest     string      `json:"digest"`
	Layers     []layerMeta `json:"layers"`
	Config     ImageConfig `json:"config"`
}

func keyOf(digest string) string { return strings.Replace(digest, ":", "-", 1) }

// imageKey names a pulled manifest by repository and digest: a digest
// cached from one repository is not served for another, whose access the
// registry has not granted.
func imageKey(repo, digest string) string {
	h := sha256.Sum256([]byte(repo))
	return hex.EncodeToString(h[:8]) + "-" + keyOf(digest)
}

func (s *Store) layerDir(key string) string  { return filepath.Join(s.dir, "layers", key) }
func (s *Store) sizeFile(key string) string  { return filepath.Join(s.dir, "layers", key+".size") }
func (s *Store) lockFile(key string) string  { return filepath.Join(s.dir, "locks", key) }
func (s *Store) imageFile(key string) string { return filepath.Join(s.dir, "images", key+".json") }

// Pull makes ref's image available: layers already in the store are used
// as they are, missing ones are downloaded, verified and unpacked. The
// image's layers stay pinned until Release. A digest reference whose
// manifest was pulled before needs no registry at all.
func (s *Store) Pull(ctx context.Context, ref string, auth Auth) (*Image, error) {
	r, err := auth.parse(ref, false)
	if err != nil {
		return nil, err
	}
	meta, err := s.manifest(ctx, r, ref, auth)
	if err != nil {
		return nil, err
	}
	img := &Image{
		Ref:    r.Context().Name() + "@" + meta.Digest,
		Digest: meta.Digest,
		Config: meta.Config,
		Layers: make([]string, len(meta.Layers)),
		keys:   make([]string, len(meta.Layers)),
	}
	pins := make([]*os.File, len(meta.Layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.pullLimit)
	var fetch func() (http.RoundTripper, error)
	var once sync.Once
	var rt http.RoundTripper
	var rtErr error
	fetch = func() (http.RoundTripper, error) {
		once.Do(func() { rt, rtErr = s.transport(gctx, r, auth) })
		return rt, rtErr
	}
	for i, l := range meta.Layers {
		key := keyOf(l.Digest)
		img.keys[i] = key
		img.Layers[i] = s.layerDir(key)
		g.Go(func() error {
			pin, err := s.ensureLayer(gctx, r, i, l, fetch)
			if err != nil {
				return err
			}
			pins[i] = pin
			return nil
		})
	}
	err = g.Wait()
	if err != nil {
		closeAll(pins)
		return nil, err
	}
	img.pins = pins
	for _, k := range img.keys {
		if b, err := os.ReadFile(s.sizeFile(k)); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			img.Size += n
		}
	}
	s.GC()
	return img, nil
}

// Acquire pins img's layers once more (Release undoes one Pull or
// Acquire). It fails if a layer is gone from the store.
func (s *Store) Acquire(img *Image) (*Image, error) {
	cp := &Image{Ref: img.Ref, Digest: img.Digest, Layers: img.Layers, Config: img.Config, Size: img.Size, keys: img.keys}
	cp.pins = make([]*os.File, len(img.keys))
	for i, k := range img.keys {
		lk, err := s.lock(k, syscall.LOCK_SH)
		if err == nil {
			if _, serr := os.Stat(s.layerDir(k)); serr != nil {
				lk.Close()
				err = fmt.Errorf("layer %s is no longer in the image cache", k)
			}
		}
		if err != nil {
			closeAll(cp.pins)
			return nil, err
		}
		cp.pins[i] = lk
	}
	return cp, nil
}

// Release unpins img's layers (once) and evicts what the size bound asks.
func (s *Store) Release(img *Image) {
	if img == nil {
		return
	}
	img.mu.Lock()
	pins := img.pins
	img.pins = nil
	img.mu.Unlock()
	if pins == nil {
		return
	}
	s.touch(img.keys)
	closeAll(pins)
	s.GC()
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

func (s *Store) touch(keys []string) {
	now := time.Now()
	for _, k := range keys {
		_ = os.Chtimes(s.sizeFile(k), now, now)
	}
}

// manifest returns the image's layers and config: from the store for a
// digest reference pulled before, else from the registry (an index is
// resolved to this platform's image).
func (s *Store) manifest(ctx context.Context, r name.Reference, ref string, auth Auth) (*imageMeta, error) {
	if d, ok := r.(name.Digest); ok {
		if b, err := os.ReadFile(s.imageFile(imageKey(d.Context().Name(), d.DigestStr()))); err == nil {
			var m imageMeta
			if json.Unmarshal(b, &m) == nil && m.Digest == d.DigestStr() && m.Repository == d.Context().Name() {
				return &m, nil
			}
		}
	}
	opts, err := remoteOptions(ctx, r, auth)
	if err != nil {
		return nil, err
	}
	opts = append(opts, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	img, err := remote.Image(r, opts...)
	if err != nil {
		return nil, classify(ref, err)
	}
	dg, err := img.Digest()
	if err != nil {
		return nil, classify(ref, err)
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, classify(ref, err)
	}
	cf, err := img.ConfigFile() // verified against the manifest's config digest
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading its config: %v", ErrInvalidImage, ref, err)
	}
	if cf.OS != "" && cf.OS != "linux" {
		return nil, fmt.Errorf("%w: %s is for %s, not linux", ErrInvalidImage, ref, cf.OS)
	}
	if cf.Architecture != "" && cf.Architecture != runtime.GOARCH {
		return nil, fmt.Errorf("%w: %s is for %s, this client is %s", ErrInvalidImage, ref, cf.Architecture, runtime.GOARCH)
	}
	if len(mf.Layers) > MaxLayers {
		return nil, fmt.Errorf("%w: %s has %d layers; an image function's root stacks at most %d (overlayfs's limit): squash some layers", ErrInvalidImage, ref, len(mf.Layers), MaxLayers)
	}
	if len(cf.RootFS.DiffIDs) != len(mf.Layers) {
		return nil, fmt.Errorf("%w: %s: %d layers but %d diff ids", ErrInvalidImage, ref, len(mf.Layers), len(cf.RootFS.DiffIDs))
	}
	m := &imageMeta{
		Repository: r.Context().Name(),
		Digest:     dg.String(),
		Config: ImageConfig{
			Entrypoint: cf.Config.Entrypoint,
			Cmd:        cf.Config.Cmd,
			Env:        cf.Config.Env,
			WorkingDir: cf.Config.WorkingDir,
			User:       cf.Config.User,
		},
	}
	for i, l := range mf.Layers {
		if l.Digest.Algorithm != "sha256" || cf.RootFS.DiffIDs[i].Algorithm != "sha256" {
			return nil, fmt.Errorf("%w: %s: layer %d is not addressed by sha256", ErrInvalidImage, ref, i)
		}
		m.Layers = append(m.Layers, layerMeta{Digest: l.Digest.String(), DiffID: cf.RootFS.DiffIDs[i].String(), Size: l.Size, MediaType: string(l.MediaType)})
	}
	b, _ := json.Marshal(m)
	_ = writeAtomic(s.imageFile(imageKey(m.Repository, m.Digest)), b, filepath.Join(s.dir, "tmp"))
	return m, nil
}

// transport is an authenticated round tripper for r's repository (pull scope).
func (s *Store) transport(ctx context.Context, r name.Reference, auth Auth) (http.RoundTripper, error) {
	a, err := auth.authenticator(r.Context().RegistryStr())
	if err != nil {
		return nil, err
	}
	rt, err := transport.NewWithContext(ctx, r.Context().Registry, a, http.DefaultTransport, []string{r.Context().Scope(transport.PullScope)})
	if err != nil {
		return nil, classify(r.String(), err)
	}
	return rt, nil
}

// ensureLayer returns a shared lock on layer l, unpacking it first if the
// store lacks it. Concurrent callers for one layer (in this process or
// another) wait on its exclusive lock, and then find it in place.
func (s *Store) ensureLayer(ctx context.Context, r name.Reference, idx int, l layerMeta, rt func() (http.RoundTripper, error)) (*os.File, error) {
	key := keyOf(l.Digest)
	for attempt := 0; attempt < 3; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Fast path: the layer is there; pin it next to its other users
		// (an exclusive lock would wait for them all to release).
		lk, err := s.lock(key, syscall.LOCK_SH)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(s.layerDir(key)); err == nil {
			now := time.Now()
			_ = os.Chtimes(s.sizeFile(key), now, now)
			return lk, nil
		}
		lk.Close()
		lk, err = s.lock(key, syscall.LOCK_EX)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(s.layerDir(key)); err != nil {
			if err := s.fetchLayer(ctx, r, idx, l, rt); err != nil {
				lk.Close()
				return nil, err
			}
		}
		// Downgrade to shared: not atomic, so an eviction may slip in
		// between; check again under the shared lock.
		if err := syscall.Flock(int(lk.Fd()), syscall.LOCK_SH); err != nil {
			lk.Close()
			return nil, fmt.Errorf("pinning layer %s: %w", l.Digest, err)
		}
		if _, err := os.Stat(s.layerDir(key)); err == nil {
			now := time.Now()
			_ = os.Chtimes(s.sizeFile(key), now, now)
			return lk, nil
		}
		lk.Close()
	}
	return nil, fmt.Errorf("layer %s was evicted while being pinned, three times", l.Digest)
}

// fetchLayer downloads, verifies and unpacks layer l into the store. The
// caller holds its exclusive lock. Nothing is left behind on failure.
func (s *Store) fetchLayer(ctx context.Context, r name.Reference, idx int, l layerMeta, getRT func() (http.RoundTripper, error)) error {
	rt, err := getRT()
	if err != nil {
		return err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", r.Context().Scheme(), r.Context().RegistryStr(), r.Context().RepositoryStr(), l.Digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return classify(r.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return classify(r.String(), transport.CheckError(resp, http.StatusOK))
	}
	key := keyOf(l.Digest)
	tmp := filepath.Join(s.dir, "tmp", key+"."+randHex())
	size, err := unpackLayer(resp.Body, tmp, l.Digest, l.DiffID)
	if err != nil {
		_ = os.RemoveAll(tmp)
		if errors.Is(err, ErrInvalidImage) {
			return fmt.Errorf("%s: layer %d (%s): %w", r.String(), idx, l.Digest, err)
		}
		return fmt.Errorf("%w: %s: layer %d (%s): %v", ErrUnavailable, r.String(), idx, l.Digest, err)
	}
	if err := os.WriteFile(s.sizeFile(key), []byte(strconv.FormatInt(size, 10)), 0o644); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("recording layer %s: %w", l.Digest, err)
	}
	if err := os.Rename(tmp, s.layerDir(key)); err != nil {
		_ = os.RemoveAll(tmp)
		_ = os.Remove(s.sizeFile(key))
		return fmt.Errorf("storing layer %s: %w", l.Digest, err)
	}
	return nil
}

// lock opens key's lock file and takes how (blocking).
func (s *Store) lock(key string, how int) (*os.File, error) {
	f, err := os.OpenFile(s.lockFile(key), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking layer %s: %w", key, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking layer %s: %w", key, err)
	}
	return f, nil
}

// tryLock is lock without waiting.
func (s *Store) tryLock(key string, how int) (*os.File, error) {
	return s.lock(key, how|syscall.LOCK_NB)
}

// Usage is the bytes of layers in the store.
func (s *Store) Usage() int64 {
	var total int64
	for _, e := range s.entries() {
		total += e.size
	}
	return total
}

type entry struct {
	key  string
	size int64
	used time.Time
}

func (s *Store) entries() []entry {
	ents, _ := os.ReadDir(filepath.Join(s.dir, "layers"))
	var out []entry
	for _, e := range ents {
		key, ok := strings.CutSuffix(e.Name(), ".size")
		if !ok {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, "layers", e.Name()))
		if err != nil {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		out = append(out, entry{key: key, size: n, used: fi.ModTime()})
	}
	return out
}

// GC evicts the least recently used layers no image in use pins until
// the store is within its size (Pull and Release call it).
func (s *Store) GC() {
	if s.maxBytes <= 0 {
		return
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	ents := s.entries()
	var total int64
	for _, e := range ents {
		total += e.size
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].used.Before(ents[j].used) })
	for _, e := range ents {
		if total <= s.maxBytes {
			return
		}
		lk, err := s.tryLock(e.key, syscall.LOCK_EX)
		if err != nil {
			continue // pinned, or being unpacked
		}
		if s.evict(e.key) == nil {
			total -= e.size
		}
		lk.Close()
	}
}

// evict removes a layer; the caller holds its exclusive lock.
func (s *Store) evict(key string) error {
	trash := filepath.Join(s.dir, "tmp", key+".evict-"+randHex())
	if err := os.Rename(s.layerDir(key), trash); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Remove(s.sizeFile(key)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.RemoveAll(trash)
}

func randHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeAtomic writes b to path through a temporary file in tmpDir.
func writeAtomic(path string, b []byte, tmpDir string) error {
	f, err := os.CreateTemp(tmpDir, "meta.*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
