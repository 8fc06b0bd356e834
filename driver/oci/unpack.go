package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Whiteout markers of the OCI layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// unpackLayer streams one layer blob into dir (created), verifying the
// blob against digest and its uncompressed tar against diffID. It returns
// the bytes the layer takes. Errors about the content wrap ErrInvalidImage.
func unpackLayer(blob io.Reader, dir, digest, diffID string) (int64, error) {
	compressed := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(blob, compressed), 1<<16)
	magic, _ := br.Peek(4)
	var raw io.Reader = br
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("%w: gzip: %v", ErrInvalidImage, err)
		}
		defer zr.Close()
		raw = zr
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("%w: zstd: %v", ErrInvalidImage, err)
		}
		defer zr.Close()
		raw = zr
	}
	uncompressed := sha256.New()
	tr := io.TeeReader(raw, uncompressed)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, err
	}
	size, untarErr := untar(tr, dir)
	// Hash everything, the tar's padding and the stream's tail included,
	// before judging: a corrupt blob shows as a digest mismatch first.
	_, drainErr := io.Copy(io.Discard, tr)
	_, _ = io.Copy(io.Discard, br)
	if got := "sha256:" + hex.EncodeToString(compressed.Sum(nil)); got != digest {
		return 0, fmt.Errorf("%w: content does not match its digest (got %s)", ErrInvalidImage, got)
	}
	if untarErr != nil {
		return 0, untarErr
	}
	if drainErr != nil {
		return 0, fmt.Errorf("%w: decompressing: %v", ErrInvalidImage, drainErr)
	}
	if got := "sha256:" + hex.EncodeToString(uncompressed.Sum(nil)); got != diffID {
		return 0, fmt.Errorf("%w: uncompressed content does not match its diff id %s (got %s)", ErrInvalidImage, diffID, got)
	}
	return size, nil
}

// untar writes a layer's entries under dir in overlayfs form. Every path
// is resolved inside dir through os.Root, so ".." and symlinks (absolute
// or relative) that lead out of it are refused.
func untar(r io.Reader, dir string) (int64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	const block = 4096
	var size int64
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirTimes []dirTime
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%w: reading tar: %v", ErrInvalidImage, err)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return 0, err
		}
		if name == "." {
			if h.Typeflag == tar.TypeDir {
				_ = root.Chmod(".", fs.FileMode(h.Mode&0o7777))
			}
			continue
		}
		parent, base := path.Split(name)
		parent = strings.TrimSuffix(parent, "/")
		if parent == "" {
			parent = "."
		}
		if parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return 0, refused(h.Name, err)
			}
		}
		size += block
		switch {
		case base == whiteoutOpaque:
			if err := setOpaque(root, parent); err != nil {
				return 0, refused(h.Name, err)
			}
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			target := path.Join(parent, strings.TrimPrefix(base, whiteoutPrefix))
			if err := whiteout(root, target); err != nil {
				return 0, refused(h.Name, err)
			}
			continue
		}
		mode := fs.FileMode(h.Mode & 0o777)
		if h.Mode&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if h.Mode&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		if h.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if fi, err := root.Lstat(name); err == nil && !fi.IsDir() {
				if err := root.RemoveAll(name); err != nil {
					return 0, refused(h.Name, err)
				}
			}
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return 0, refused(h.Name, err)
			}
			dirTimes = append(dirTimes, dirTime{name, h.ModTime})
		case tar.TypeReg: // (the reader reports the old TypeRegA as TypeReg)
			if err := replace(root, name); err != nil {
				return 0, refused(h.Name, err)
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return 0, refused(h.Name, err)
			}
			n, err := io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return 0, fmt.Errorf("writing %s: %w", h.Name, err)
			}
			size += (n + block - 1) / block * block
		case tar.TypeSymlink:
			if err := replace(root, name); err != nil {
				return 0, refused(h.Name, err)
			}
			// The target is not followed here: it is resolved inside the
			// environment's root when the function runs.
			if err := root.Symlink(h.Linkname, name); err != nil {
				return 0, refused(h.Name, err)
			}
		case tar.TypeLink:
			old, err := cleanName(h.Linkname)
			if err != nil {
				return 0, err
			}
			if err := replace(root, name); err != nil {
				return 0, refused(h.Name, err)
			}
			if err := root.Link(old, name); err != nil {
				return 0, fmt.Errorf("%w: hard link %s to %s: the target must be an earlier entry of the same layer (%v)", ErrInvalidImage, h.Name, h.Linkname, err)
			}
			continue // shares the target's owner, mode and times
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			// Device nodes and FIFOs never reach an environment (its /dev
			// is the sandbox's own).
			continue
		default:
			continue // PAX/GNU headers the reader already applied; unknown kinds
		}
		if err := root.Lchown(name, h.Uid, h.Gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			return 0, refused(h.Name, err)
		}
		if h.Typeflag != tar.TypeSymlink {
			if err := root.Chmod(name, mode); err != nil {
				return 0, refused(h.Name, err)
			}
			if h.Typeflag != tar.TypeDir {
				_ = root.Chtimes(name, h.ModTime, h.ModTime)
			}
		}
	}
	// Directories' times last: writing into them moved their mtimes.
	for i := len(dirTimes) - 1; i >= 0; i-- {
		_ = root.Chtimes(dirTimes[i].name, dirTimes[i].t, dirTimes[i].t)
	}
	return size, nil
}

// cleanName makes a tar entry's name relative to the layer's root and
// refuses one that leaves it.
func cleanName(n string) (string, error) {
	c := path.Clean("/" + n)
	if strings.Contains(n, "\x00") {
		return "", fmt.Errorf("%w: entry %q has a NUL byte", ErrInvalidImage, n)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: entry %q leaves the layer's root", ErrInvalidImage, n)
		}
	}
	if c == "/" {
		return ".", nil
	}
	return strings.TrimPrefix(c, "/"), nil
}

func refused(n string, err error) error {
	return fmt.Errorf("%w: entry %q: %v", ErrInvalidImage, n, err)
}

// replace removes what a later entry of the same layer overwrites (a
// directory stays only for a directory).
func replace(root *os.Root, name string) error {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return root.RemoveAll(name)
	}
	return root.Remove(name)
}

// whiteout hides target of the lower layers: a 0/0 character device.
func whiteout(root *os.Root, target string) error {
	if err := replace(root, target); err != nil {
		return err
	}
	dir, base := path.Split(target)
	if dir == "" {
		dir = "."
	}
	d, err := root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Mknodat(int(d.Fd()), base, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("creating whiteout %s (needs CAP_MKNOD): %w", target, err)
	}
	return nil
}

// setOpaque marks dir so the lower layers' contents of it are hidden.
func setOpaque(root *os.Root, dir string) error {
	if fi, err := root.Lstat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("opaque marker in %s, which is not a directory", dir)
	}
	d, err := root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Fsetxattr(int(d.Fd()), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("marking %s opaque (needs CAP_SYS_ADMIN): %w", dir, err)
	}
	return nil
}
