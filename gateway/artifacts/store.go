package artifacts

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors Put, Get and the handler report.
var (
	// ErrNotFound: no bundle with that digest.
	ErrNotFound = errors.New("bundle not found")
	// ErrBadDigest: the address is not 64 lowercase hex digits.
	ErrBadDigest = errors.New("bundle address must be a sha256 in lowercase hex")
	// ErrChecksumMismatch: the bytes do not hash to the address.
	ErrChecksumMismatch = errors.New("bundle checksum mismatch")
	// ErrTruncated: fewer bytes arrived than the request declared.
	ErrTruncated = errors.New("bundle upload truncated")
	// ErrCorrupt: the bytes are not a readable zip archive.
	ErrCorrupt = errors.New("bundle is not a readable zip archive")
	// ErrUnsafeEntry: an archive entry would escape the extraction root.
	ErrUnsafeEntry = errors.New("unsafe bundle entry")
	// ErrTooLarge: the bundle exceeds MaxBundleBytes.
	ErrTooLarge = errors.New("bundle too large")
	// ErrStoredMismatch: what the object store holds under a bundle's
	// address does not hash to it (replaced or corrupted in the store);
	// it is not served.
	ErrStoredMismatch = errors.New("stored bundle does not match its sha256")
)

// HeaderSHA256 carries a bundle's sha256 (hex) on downloads and uploads.
const HeaderSHA256 = "X-Nimbus-Sha256"

var digestRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidDigest reports whether d is a sha256 in lowercase hex.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// Config configures a Store. Zero values take the defaults noted.
type Config struct {
	// PublicURL is the base URL Nomad clients fetch bundles from
	// (<public_url><sha256>.zip), for the jobs a gateway registers itself.
	// Default: http://<this gateway's advertised address>/nimbus/v1/artifacts/.
	PublicURL string `hcl:"public_url,optional"`
	// Bucket is the JetStream object store bucket. Default "nimbus_artifacts".
	Bucket string `hcl:"bucket,optional"`
	// MaxBundleBytes bounds one bundle (zipped). Default 50 MiB, Lambda's
	// limit for a directly uploaded zip.
	MaxBundleBytes int64 `hcl:"max_bundle_bytes,optional"`
	// Replicas of the bucket's stream (a NATS cluster). Default 1.
	Replicas int `hcl:"replicas,optional"`
	// GCGrace keeps unreferenced bundles younger than this. Default "1h".
	GCGrace string `hcl:"gc_grace,optional"`
	// GCInterval is how often a cluster gateway collects unreferenced
	// bundles (RunGC). Default "10m".
	GCInterval string `hcl:"gc_interval,optional"`
	// SpoolDir holds downloads while their sha256 is verified, before the
	// first byte is served (up to max_bundle_bytes per download in
	// flight). Default: the system's temporary directory.
	SpoolDir string `hcl:"spool_dir,optional"`

	// GCGraceD and GCIntervalD are GCGrace and GCInterval parsed by
	// Validate.
	GCGraceD    time.Duration
	GCIntervalD time.Duration
}

// Defaults fills empty fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "nimbus_artifacts"
	}
	if c.MaxBundleBytes == 0 {
		c.MaxBundleBytes = 50 << 20
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.GCGrace == "" {
		c.GCGrace = "1h"
	}
	if c.GCInterval == "" {
		c.GCInterval = "10m"
	}
}

// Validate checks the fields and parses GCGrace.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxBundleBytes < 0 {
		errs = append(errs, fmt.Errorf("artifacts max_bundle_bytes %d must be positive", c.MaxBundleBytes))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("artifacts replicas %d must be 1–5", c.Replicas))
	}
	d, err := time.ParseDuration(c.GCGrace)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("artifacts gc_grace %q: %w", c.GCGrace, err))
	case d < 0:
		errs = append(errs, fmt.Errorf("artifacts gc_grace %q must not be negative", c.GCGrace))
	default:
		c.GCGraceD = d
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.HasSuffix(u.Path, "/") {
			errs = append(errs, fmt.Errorf("artifacts public_url %q must be an http(s) URL ending in /", c.PublicURL))
		}
	}
	if c.SpoolDir != "" {
		if fi, err := os.Stat(c.SpoolDir); err != nil {
			errs = append(errs, fmt.Errorf("artifacts spool_dir: %w", err))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("artifacts spool_dir %s is not a directory", c.SpoolDir))
		}
	}
	iv, err := time.ParseDuration(c.GCInterval)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("artifacts gc_interval %q: %w", c.GCInterval, err))
	case iv <= 0:
		errs = append(errs, fmt.Errorf("artifacts gc_interval %q must be positive", c.GCInterval))
	default:
		c.GCIntervalD = iv
	}
	return errors.Join(errs...)
}

// Info describes one stored bundle.
type Info struct {
	// SHA256 is the bundle's address (hex).
	SHA256 string `json:"sha256"`
	// Size in bytes.
	Size int64 `json:"size"`
	// Stored is when the bundle was first stored.
	Stored time.Time `json:"stored"`
}

// Store is the artifact store over one JetStream object store bucket.
type Store struct {
	obj    jetstream.ObjectStore
	cfg    Config
	logger hclog.Logger
}

// Open creates (or opens) the bucket on js.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, logger hclog.Logger) (*Store, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      cfg.Bucket,
		Description: "nimbus code and layer bundles by sha256",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("opening object store %s: %w", cfg.Bucket, err)
	}
	return &Store{obj: obj, cfg: cfg, logger: logger.Named("artifacts")}, nil
}

// MaxBundleBytes is the configured bundle limit.
func (s *Store) MaxBundleBytes() int64 { return s.cfg.MaxBundleBytes }

// objectName is the name a bundle is stored under.
func objectName(digest string) string { return digest + ".zip" }

// Check verifies that data is a complete bundle with address digest:
// within the size limit, hashing to digest, and a readable zip archive.
func (s *Store) Check(digest string, data []byte) error {
	if !ValidDigest(digest) {
		return fmt.Errorf("%q: %w", digest, ErrBadDigest)
	}
	if int64(len(data)) > s.cfg.MaxBundleBytes {
		return fmt.Errorf("bundle %s is %d bytes, at most %d allowed: %w", digest, len(data), s.cfg.MaxBundleBytes, ErrTooLarge)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != digest {
		return fmt.Errorf("bundle %s: the %d bytes received hash to %s: %w", digest, len(data), got, ErrChecksumMismatch)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("bundle %s: %w: %v", digest, ErrCorrupt, err)
	}
	for _, f := range zr.File {
		if err := checkEntry(f); err != nil {
			return fmt.Errorf("bundle %s: %w", digest, err)
		}
	}
	return nil
}

// checkEntry refuses entries that would land outside the extraction root
// (absolute, drive-letter or ".." paths) and symlinks: a bundle that would
// be refused at extraction (bundle.Extract) is refused at upload already.
func checkEntry(f *zip.File) error {
	name := strings.ReplaceAll(f.Name, "\\", "/")
	if name == "" || strings.HasPrefix(name, "/") || (len(name) > 1 && name[1] == ':') {
		return fmt.Errorf("entry %q is not a relative path: %w", f.Name, ErrUnsafeEntry)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return fmt.Errorf("entry %q leaves the bundle root: %w", f.Name, ErrUnsafeEntry)
		}
	}
	if f.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("entry %q is a symlink: %w", f.Name, ErrUnsafeEntry)
	}
	return nil
}

// Put stores data under digest after Check; it reports created=false when
// the bundle was already stored (dedupe: nothing is written).
func (s *Store) Put(ctx context.Context, digest string, data []byte) (Info, bool, error) {
	if err := s.Check(digest, data); err != nil {
		return Info{}, false, err
	}
	if info, err := s.Stat(ctx, digest); err == nil {
		return info, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Info{}, false, err
	}
	oi, err := s.obj.Put(ctx, jetstream.ObjectMeta{
		Name:    objectName(digest),
		Headers: nats.Header{HeaderSHA256: []string{digest}},
	}, bytes.NewReader(data))
	if err != nil {
		return Info{}, false, fmt.Errorf("storing bundle %s: %w", digest, err)
	}
	s.logger.Info("bundle stored", "sha256", digest, "size", oi.Size)
	return toInfo(digest, oi), true, nil
}

func toInfo(digest string, oi *jetstream.ObjectInfo) Info {
	return Info{SHA256: digest, Size: int64(oi.Size), Stored: oi.ModTime}
}

// Stat describes a stored bundle or returns ErrNotFound.
func (s *Store) Stat(ctx context.Context, digest string) (Info, error) {
	if !ValidDigest(digest) {
		return Info{}, fmt.Errorf("%q: %w", digest, ErrBadDigest)
	}
	oi, err := s.obj.GetInfo(ctx, objectName(digest))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Info{}, fmt.Errorf("bundle %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("reading bundle %s: %w", digest, err)
	}
	return toInfo(digest, oi), nil
}

// Bundle is a stored bundle's content, read back in full and verified
// against its address before anyone gets a byte of it. Close removes its
// spool file.
type Bundle struct {
	f    *os.File
	size int64
}

// Read reads the verified content.
func (b *Bundle) Read(p []byte) (int, error) { return b.f.Read(p) }

// Seek moves within the verified content.
func (b *Bundle) Seek(off int64, whence int) (int64, error) { return b.f.Seek(off, whence) }

// Size is the content's length.
func (b *Bundle) Size() int64 { return b.size }

// Close releases and removes the spool file.
func (b *Bundle) Close() error {
	err := b.f.Close()
	if rerr := os.Remove(b.f.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// verifyMeta checks the digest the object store recorded for a bundle
// against its address: an object replaced under the same name (by anyone
// with write access to the bucket) carries its own content's digest.
func (s *Store) verifyMeta(digest string, oi *jetstream.ObjectInfo) error {
	want, _ := hex.DecodeString(digest)
	got, err := jetstream.DecodeObjectDigest(oi.Digest)
	if err != nil || !bytes.Equal(got, want) {
		err := fmt.Errorf("bundle %s: the object store records digest %q for it: %w", digest, oi.Digest, ErrStoredMismatch)
		s.logger.Error("stored bundle does not match its address: refusing to serve it", "sha256", digest, "error", err)
		return err
	}
	return nil
}

// Verify checks, without reading the content, that the stored bundle's
// recorded digest is its address (what HEAD and conditional requests
// rely on); Open verifies the content itself.
func (s *Store) Verify(ctx context.Context, digest string) (Info, error) {
	if !ValidDigest(digest) {
		return Info{}, fmt.Errorf("%q: %w", digest, ErrBadDigest)
	}
	oi, err := s.obj.GetInfo(ctx, objectName(digest))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Info{}, fmt.Errorf("bundle %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("reading bundle %s: %w", digest, err)
	}
	if err := s.verifyMeta(digest, oi); err != nil {
		return Info{}, err
	}
	return toInfo(digest, oi), nil
}

// Open reads the bundle in full into a spool file, hashing it on the way,
// and returns it only when its sha256 is digest: content replaced or
// corrupted in the object store fails with ErrStoredMismatch before a byte
// reaches a client (the object store's own digest would be checked only at
// the end, and an attacker who writes the bucket writes that digest too).
// At most MaxBundleBytes are read.
func (s *Store) Open(ctx context.Context, digest string) (*Bundle, Info, error) {
	if !ValidDigest(digest) {
		return nil, Info{}, fmt.Errorf("%q: %w", digest, ErrBadDigest)
	}
	res, err := s.obj.Get(ctx, objectName(digest))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, Info{}, fmt.Errorf("bundle %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("reading bundle %s: %w", digest, err)
	}
	defer res.Close()
	oi, err := res.Info()
	if err != nil {
		return nil, Info{}, fmt.Errorf("reading bundle %s: %w", digest, err)
	}
	if err := s.verifyMeta(digest, oi); err != nil {
		return nil, Info{}, err
	}
	f, err := os.CreateTemp(s.cfg.SpoolDir, "nimbus-artifact-*.zip")
	if err != nil {
		return nil, Info{}, fmt.Errorf("spooling bundle %s: %w", digest, err)
	}
	b := &Bundle{f: f}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(res, s.cfg.MaxBundleBytes+1))
	if err == nil && n > s.cfg.MaxBundleBytes {
		err = fmt.Errorf("more than max_bundle_bytes (%d) stored: %w", s.cfg.MaxBundleBytes, ErrStoredMismatch)
	}
	if err == nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != digest {
			err = fmt.Errorf("its %d bytes hash to %s: %w", n, got, ErrStoredMismatch)
		}
	}
	if errors.Is(err, jetstream.ErrDigestMismatch) {
		err = fmt.Errorf("%w: %w", ErrStoredMismatch, err)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = b.Close()
		err = fmt.Errorf("bundle %s: %w", digest, err)
		if errors.Is(err, ErrStoredMismatch) {
			s.logger.Error("stored bundle does not match its address: refusing to serve it", "sha256", digest, "error", err)
		}
		return nil, Info{}, err
	}
	b.size = n
	info := toInfo(digest, oi)
	info.Size = n
	return b, info, nil
}

// Delete removes a bundle.
func (s *Store) Delete(ctx context.Context, digest string) error {
	if !ValidDigest(digest) {
		return fmt.Errorf("%q: %w", digest, ErrBadDigest)
	}
	err := s.obj.Delete(ctx, objectName(digest))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("bundle %s: %w", digest, ErrNotFound)
	}
	return err
}

// List returns every stored bundle.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	list, err := s.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing bundles: %w", err)
	}
	out := make([]Info, 0, len(list))
	for _, oi := range list {
		d := oi.Name[:max(len(oi.Name)-len(".zip"), 0)]
		if oi.Deleted || !ValidDigest(d) || objectName(d) != oi.Name {
			continue
		}
		out = append(out, toInfo(d, oi))
	}
	return out, nil
}

// Referencer names the bundles something still needs (published versions,
// layer versions, $LATEST jobs).
type Referencer interface {
	References(ctx context.Context) (map[string]bool, error)
}

// GC deletes every bundle no referencer names and that was stored longer
// than the grace period ago, and returns the digests it deleted. Any
// referencer error aborts the collection before anything is deleted.
func (s *Store) GC(ctx context.Context, now time.Time, refs ...Referencer) ([]string, error) {
	keep := map[string]bool{}
	for _, r := range refs {
		m, err := r.References(ctx)
		if err != nil {
			return nil, fmt.Errorf("collecting bundle references: %w", err)
		}
		for d := range m {
			keep[d] = true
		}
	}
	list, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, b := range list {
		if keep[b.SHA256] || now.Sub(b.Stored) < s.cfg.GCGraceD {
			continue
		}
		if err := s.Delete(ctx, b.SHA256); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		s.logger.Info("unreferenced bundle deleted", "sha256", b.SHA256, "size", b.Size)
		deleted = append(deleted, b.SHA256)
	}
	return deleted, errors.Join(errs...)
}

// RunGC collects every interval until ctx is done.
func (s *Store) RunGC(ctx context.Context, interval time.Duration, refs ...Referencer) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if _, err := s.GC(ctx, now, refs...); err != nil {
				s.logger.Error("bundle garbage collection", "error", err)
			}
		}
	}
}
