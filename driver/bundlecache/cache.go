// Package bundlecache keeps function code and layer bundles (zip archives
// named by their sha256) unpacked on a Nomad client, so a task that starts
// again — a scale-out from zero, a restart, a second allocation of the same
// version — finds its code on disk instead of downloading and unpacking it.
//
// Layout under the cache directory:
//
//	<sha256>/content   the unpacked bundle (read-only for functions)
//	<sha256>/size      its size in bytes; its mtime is the entry's last use
//	.incoming/         downloads and unpacks in progress (removed on error)
//
// An entry is installed by renaming a fully verified, fully unpacked
// directory into place, so a reader never sees half an entry; two
// processes racing for the same bundle both download it and the second
// rename loses harmlessly.
//
// Pinning: Get returns a Pin holding a shared flock on the entry's
// directory. The lock belongs to the open file, so handing the Pin's file
// to a child process (exec.Cmd.ExtraFiles) keeps the entry pinned for as
// long as that process lives, even if the process that fetched it exits.
// Collect evicts least-recently-used entries while the cache is over its
// size, skipping every entry it cannot lock exclusively.
//
// It imports bundle (a leaf) and the standard library.
package bundlecache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nimbus-fn/nimbus/bundle"
)

// ErrDigestMismatch is returned when a download does not hash to the sha256
// it was asked for.
var ErrDigestMismatch = errors.New("bundle does not match its sha256")

// DefaultMaxDownloadBytes bounds one download (a zipped bundle). Lambda's
// limit for a zip is 50 MB uploaded directly; code from a URL may be
// larger, so the bound is the unzipped limit.
const DefaultMaxDownloadBytes = bundle.DefaultMaxUnzippedBytes

// Source is one bundle to fetch: an http(s) URL and the hex sha256 of the
// archive it serves.
type Source struct {
	URL    string
	SHA256 string
}

// Validate checks the URL's scheme and the digest's form.
func (s Source) Validate() error {
	if !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") {
		return fmt.Errorf("bundle URL %q: only http and https are fetched by the driver", s.URL)
	}
	if len(s.SHA256) != 64 {
		return fmt.Errorf("bundle sha256 %q: want 64 hex digits", s.SHA256)
	}
	if _, err := hex.DecodeString(s.SHA256); err != nil {
		return fmt.Errorf("bundle sha256 %q: want 64 hex digits", s.SHA256)
	}
	return nil
}

// Cache is one cache directory. Its methods are safe for concurrent use,
// and several processes may share the directory.
type Cache struct {
	dir      string
	maxBytes int64
	client   *http.Client
	limits   bundle.Limits

	mu       sync.Mutex
	inflight map[string]*fetch
}

type fetch struct {
	done chan struct{}
	err  error
}

// Options tune a Cache; zero values take defaults.
type Options struct {
	// MaxBytes is the size Collect trims the cache to. Zero: no trimming.
	MaxBytes int64
	// Client does the downloads. Default: a client with a 30 s header timeout.
	Client *http.Client
	// Limits bound what one bundle unpacks to. Default: bundle's defaults.
	Limits bundle.Limits
}

// Open creates (if needed) and opens the cache directory.
func Open(dir string, opts Options) (*Cache, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("bundle cache dir %q must be an absolute path", dir)
	}
	// Functions run as other users and read their code from here: every
	// directory on the way must be searchable.
	if err := os.MkdirAll(filepath.Join(dir, ".incoming"), 0o755); err != nil {
		return nil, fmt.Errorf("creating bundle cache: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating bundle cache: %w", err)
	}
	c := &Cache{dir: dir, maxBytes: opts.MaxBytes, client: opts.Client, limits: opts.Limits, inflight: map[string]*fetch{}}
	if c.client == nil {
		c.client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
		}}
	}
	return c, nil
}

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.dir }

// Pin keeps one entry from being collected while it is open.
type Pin struct {
	// Dir is the unpacked bundle.
	Dir string
	// Fetched is true when this call downloaded the bundle.
	Fetched bool
	f       *os.File
}

// File is the locked directory handle; pass it to a child process to move
// the pin there.
func (p *Pin) File() *os.File { return p.f }

// Close releases this process's hold on the entry.
func (p *Pin) Close() error {
	if p == nil || p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}

// Get returns the unpacked bundle, downloading it first if the cache lacks
// it, pinned until the Pin (and every copy of its file) is closed.
func (c *Cache) Get(ctx context.Context, src Source) (*Pin, error) {
	if err := src.Validate(); err != nil {
		return nil, err
	}
	sum := strings.ToLower(src.SHA256)
	fetched := false
	for attempt := 0; ; attempt++ {
		pin, err := c.pin(sum)
		if err == nil {
			pin.Fetched = fetched
			return pin, nil
		}
		if !errors.Is(err, os.ErrNotExist) || attempt == 3 {
			return nil, err
		}
		if err := c.fetchOnce(ctx, sum, src.URL); err != nil {
			return nil, err
		}
		fetched = true
	}
}

// pin locks an installed entry shared and marks it used. ErrNotExist means
// it is not installed (or was collected while we locked it).
func (c *Cache) pin(sum string) (*Pin, error) {
	entry := filepath.Join(c.dir, sum)
	f, err := os.Open(entry)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_SH); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking bundle %s: %w", sum, err)
	}
	// Collect renames an entry away before deleting it: if the path no
	// longer names the directory we locked, we locked a dying entry.
	held, err1 := f.Stat()
	now, err2 := os.Stat(entry)
	if err1 != nil || err2 != nil || !os.SameFile(held, now) {
		_ = f.Close()
		return nil, os.ErrNotExist
	}
	t := time.Now()
	_ = os.Chtimes(filepath.Join(entry, "size"), t, t)
	return &Pin{Dir: filepath.Join(entry, "content"), f: f}, nil
}

// fetchOnce downloads and installs one bundle, once per process at a time.
func (c *Cache) fetchOnce(ctx context.Context, sum, url string) error {
	c.mu.Lock()
	if f, ok := c.inflight[sum]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight[sum] = f
	c.mu.Unlock()

	f.err = c.install(ctx, sum, url)
	c.mu.Lock()
	delete(c.inflight, sum)
	c.mu.Unlock()
	close(f.done)
	return f.err
}

func (c *Cache) install(ctx context.Context, sum, url string) (err error) {
	work, err := os.MkdirTemp(filepath.Join(c.dir, ".incoming"), sum+"-")
	if err != nil {
		return fmt.Errorf("bundle %s: %w", sum, err)
	}
	defer func() {
		if work != "" {
			_ = os.RemoveAll(work)
		}
	}()
	archive := work + ".zip"
	defer os.Remove(archive)
	if err := c.download(ctx, url, sum, archive); err != nil {
		return err
	}
	content := filepath.Join(work, "content")
	if err := bundle.Extract(archive, content, c.limits); err != nil {
		return fmt.Errorf("bundle %s from %s: %w", sum, url, err)
	}
	size, err := treeSize(content)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", sum, err)
	}
	if err := os.WriteFile(filepath.Join(work, "size"), []byte(strconv.FormatInt(size, 10)), 0o644); err != nil {
		return fmt.Errorf("bundle %s: %w", sum, err)
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return fmt.Errorf("bundle %s: %w", sum, err)
	}
	if err := os.Rename(work, filepath.Join(c.dir, sum)); err != nil {
		if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
			return nil // another process installed it first
		}
		return fmt.Errorf("installing bundle %s: %w", sum, err)
	}
	work = ""
	return nil
}

// download streams url into path, hashing as it goes.
func (c *Cache) download(ctx context.Context, url, sum, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", sum, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("downloading bundle %s: %w", sum, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading bundle %s from %s: %s", sum, url, resp.Status)
	}
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", sum, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(resp.Body, DefaultMaxDownloadBytes+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading bundle %s from %s: %w", sum, url, err)
	}
	if n > DefaultMaxDownloadBytes {
		return fmt.Errorf("downloading bundle %s from %s: larger than %d bytes: %w", sum, url, int64(DefaultMaxDownloadBytes), bundle.ErrTooLarge)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("downloading bundle from %s: got sha256 %s, want %s: %w", url, got, sum, ErrDigestMismatch)
	}
	return nil
}

// Entry is one installed bundle as Collect sees it.
type Entry struct {
	SHA256   string
	Bytes    int64
	LastUsed time.Time
}

// Entries lists the installed bundles, least recently used first.
func (c *Cache) Entries() ([]Entry, error) {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		if !de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		p := filepath.Join(c.dir, de.Name(), "size")
		b, err := os.ReadFile(p)
		if err != nil {
			continue // half-collected; Collect's rename makes this rare
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		out = append(out, Entry{SHA256: de.Name(), Bytes: n, LastUsed: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.Before(out[j].LastUsed) })
	return out, nil
}

// Collect removes least-recently-used entries no one has pinned until the
// cache is at most MaxBytes, and leftovers of interrupted downloads older
// than an hour. It returns the bytes freed.
func (c *Cache) Collect() (int64, error) {
	c.sweepIncoming(time.Hour)
	if c.maxBytes <= 0 {
		return 0, nil
	}
	entries, err := c.Entries()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, e := range entries {
		total += e.Bytes
	}
	var freed int64
	for _, e := range entries {
		if total <= c.maxBytes {
			break
		}
		if c.evict(e.SHA256) {
			total -= e.Bytes
			freed += e.Bytes
		}
	}
	return freed, nil
}

// evict removes one entry if no one holds it.
func (c *Cache) evict(sum string) bool {
	entry := filepath.Join(c.dir, sum)
	f, err := os.Open(entry)
	if err != nil {
		return false
	}
	defer f.Close()
	if flock(f, syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return false // pinned
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	doomed := filepath.Join(c.dir, ".incoming", "evicted-"+sum+"-"+hex.EncodeToString(b[:]))
	if os.Rename(entry, doomed) != nil {
		return false
	}
	_ = os.RemoveAll(doomed)
	return true
}

func (c *Cache) sweepIncoming(age time.Duration) {
	dir := filepath.Join(c.dir, ".incoming")
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > age {
			_ = os.RemoveAll(filepath.Join(dir, de.Name()))
		}
	}
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func treeSize(root string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
