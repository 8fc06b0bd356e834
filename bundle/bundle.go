package bundle

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Errors Extract and Zip wrap.
var (
	// ErrUnsafePath: an entry or symlink would reach outside its root.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrTooLarge: the archive unpacks beyond the limits.
	ErrTooLarge = errors.New("bundle too large")
	// ErrUnsupported: a file kind a bundle cannot hold (device, socket,
	// pipe, symlinked directory).
	ErrUnsupported = errors.New("unsupported file")
)

// Defaults for Limits.
const (
	// DefaultMaxUnzippedBytes is Lambda's limit on unzipped code and layers.
	DefaultMaxUnzippedBytes = 250 << 20
	// DefaultMaxEntries bounds the number of entries in one archive.
	DefaultMaxEntries = 100_000
)

// epoch is every entry's modification time: the earliest time a zip's DOS
// timestamp can hold.
var epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

type entry struct {
	name string // slash-separated, relative; directories end in "/"
	path string // file to read (symlinks resolved); empty for directories
	exec bool
}

// Zip writes the tree under dir to w as a deterministic zip archive and
// returns the archive's sha256 in hex. Symlinks to files inside dir are
// stored as the files they point to; symlinks leaving dir are refused, as
// are symlinked directories and special files.
func Zip(dir string, w io.Writer) (string, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("zipping %s: %w", dir, err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return "", fmt.Errorf("zipping %s: %w", dir, err)
	}
	entries, err := collect(root)
	if err != nil {
		return "", fmt.Errorf("zipping %s: %w", dir, err)
	}
	h := sha256.New()
	zw := zip.NewWriter(io.MultiWriter(w, h))
	for _, e := range entries {
		if err := add(zw, e); err != nil {
			return "", fmt.Errorf("zipping %s: %s: %w", dir, e.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("zipping %s: %w", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func collect(root string) ([]entry, error) {
	var entries []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir():
			entries = append(entries, entry{name: name + "/"})
			return nil
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			entries = append(entries, entry{name: name, path: p, exec: info.Mode()&0o111 != 0})
			return nil
		case t&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if r, err := filepath.Rel(root, target); err != nil || !filepath.IsLocal(r) {
				return fmt.Errorf("%s: symlink points outside the bundle (%s): %w", name, target, ErrUnsafePath)
			}
			info, err := os.Stat(target)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if !info.Mode().IsRegular() {
				return fmt.Errorf("%s: symlink to a %s: %w", name, kind(info.Mode()), ErrUnsupported)
			}
			entries = append(entries, entry{name: name, path: target, exec: info.Mode()&0o111 != 0})
			return nil
		default:
			return fmt.Errorf("%s: %s: %w", name, kind(t), ErrUnsupported)
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return "special file"
	}
}

func add(zw *zip.Writer, e entry) error {
	fh := &zip.FileHeader{Name: e.name, Modified: epoch}
	switch {
	case e.path == "":
		fh.SetMode(fs.ModeDir | 0o755)
		_, err := zw.CreateHeader(fh)
		return err
	case e.exec:
		fh.SetMode(0o755)
	default:
		fh.SetMode(0o644)
	}
	fh.Method = zip.Deflate
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	dst, err := zw.CreateHeader(fh)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, f)
	return err
}

// Limits bound what Extract unpacks.
type Limits struct {
	// MaxUnzippedBytes is the most file content one archive may unpack to.
	// Default: 250 MiB (Lambda's limit).
	MaxUnzippedBytes int64
	// MaxEntries is the most entries one archive may hold. Default: 100000.
	MaxEntries int
}

func (l Limits) withDefaults() Limits {
	if l.MaxUnzippedBytes <= 0 {
		l.MaxUnzippedBytes = DefaultMaxUnzippedBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// Extract unpacks the zip archive at zipPath into dest (created if
// missing). Every entry must be a relative path that stays inside dest;
// symlink entries are refused; file modes become 0644 or 0755. The sizes
// counted are the bytes actually written, not what the headers claim. On
// error dest may hold a partial tree; the caller removes it.
func Extract(zipPath, dest string, limits Limits) error {
	limits = limits.withDefaults()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", zipPath, err)
	}
	defer zr.Close()
	if len(zr.File) > limits.MaxEntries {
		return fmt.Errorf("extracting %s: %d entries, at most %d allowed: %w", zipPath, len(zr.File), limits.MaxEntries, ErrTooLarge)
	}
	var declared uint64
	for _, f := range zr.File {
		if err := checkName(f.Name); err != nil {
			return fmt.Errorf("extracting %s: %w", zipPath, err)
		}
		if f.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("extracting %s: entry %q is a symlink: %w", zipPath, f.Name, ErrUnsafePath)
		}
		declared += f.UncompressedSize64
	}
	if declared > uint64(limits.MaxUnzippedBytes) {
		return fmt.Errorf("extracting %s: unpacks to %d bytes, at most %d allowed: %w", zipPath, declared, limits.MaxUnzippedBytes, ErrTooLarge)
	}
	root, err := filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", zipPath, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("extracting %s: %w", zipPath, err)
	}
	remaining := limits.MaxUnzippedBytes
	for _, f := range zr.File {
		n, err := extractOne(f, root, remaining)
		if err != nil {
			return fmt.Errorf("extracting %s: %s: %w", zipPath, f.Name, err)
		}
		remaining -= n
	}
	return nil
}

// checkName accepts only relative, slash-separated names that stay below
// the root.
func checkName(name string) error {
	trimmed := strings.TrimSuffix(name, "/")
	switch {
	case trimmed == "":
		return fmt.Errorf("empty entry name: %w", ErrUnsafePath)
	case strings.ContainsAny(name, "\\\x00"):
		return fmt.Errorf("entry %q has a backslash or NUL: %w", name, ErrUnsafePath)
	case !filepath.IsLocal(filepath.FromSlash(trimmed)):
		return fmt.Errorf("entry %q is absolute or leaves the destination: %w", name, ErrUnsafePath)
	}
	for _, part := range strings.Split(trimmed, "/") {
		if part == ".." {
			return fmt.Errorf("entry %q has a .. element: %w", name, ErrUnsafePath)
		}
	}
	return nil
}

func extractOne(f *zip.File, root string, remaining int64) (int64, error) {
	target := filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(f.Name, "/")))
	if rel, err := filepath.Rel(root, target); err != nil || !filepath.IsLocal(rel) {
		return 0, fmt.Errorf("resolves outside the destination: %w", ErrUnsafePath)
	}
	if f.Mode().IsDir() || strings.HasSuffix(f.Name, "/") {
		return 0, os.MkdirAll(target, 0o755)
	}
	if !f.Mode().IsRegular() {
		return 0, fmt.Errorf("%s entry: %w", kind(f.Mode()), ErrUnsupported)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return 0, err
	}
	mode := fs.FileMode(0o644)
	if f.Mode()&0o111 != 0 {
		mode = 0o755
	}
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	// O_NOFOLLOW: never write through a symlink that something else placed.
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|noFollow, mode)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(rc, remaining+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if n > remaining {
		return n, fmt.Errorf("unpacks beyond the size limit: %w", ErrTooLarge)
	}
	return n, os.Chmod(target, mode)
}
