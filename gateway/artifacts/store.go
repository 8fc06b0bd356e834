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
)

// HeaderSHA256 carries a bundle's sha256 (hex) on downloads and uploads.
const HeaderSHA256 = "X-Nimbus-Sha256"

var digestRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidDigest reports whether d is a sha256 in lowercase hex.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// Config configures a Store. Zero values take the defaults noted.
type Config struct {
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

// Open returns the bundle's content. A reader that reaches the end fails
// with an error if the stored chunks do not match JetStream's digest.
func (s *Store) Open(ctx context.Context, digest string) (io.ReadCloser, Info, error) {
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
	oi, err := res.Info()
	if err != nil {
		res.Close()
		return nil, Info{}, fmt.Errorf("reading bundle %s: %w", digest, err)
	}
	return res, toInfo(digest, oi), nil
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
