package versions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/nimbus-fn/nimbus/specs"
)

// Local is the dev-mode Backend: one JSON file per entry under a
// directory. A flock on <dir>/.lock serialises writers across processes
// (the CLI and `nimbus dev` share the directory); files are replaced by
// rename, so readers never see half an entry.
type Local struct {
	dir string
	mu  sync.Mutex // serialises this process's writers before the flock
}

var _ Backend = (*Local)(nil)

// NewLocal opens (creating) the store directory.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating version store %s: %w", dir, err)
	}
	return &Local{dir: dir}, nil
}

// UnpackedDir is where dev mode keeps a bundle's unpacked files: the code
// of a published version or a layer version, by the bundle's sha256. The
// CLI writes it when publishing; the dev launcher runs code and mounts
// layers from it.
func (l *Local) UnpackedDir(sha256 string) string {
	return filepath.Join(l.dir, "unpacked", sha256)
}

type localFile struct {
	Index uint64            `json:"index"`
	Items map[string]string `json:"items"`
}

func (l *Local) file(path string) (string, error) {
	clean := filepath.ToSlash(filepath.Clean(path))
	if clean != path || strings.HasPrefix(path, "/") || strings.Contains(path, "..") || path == "" {
		return "", fmt.Errorf("store path %q is not clean", path)
	}
	return filepath.Join(l.dir, filepath.FromSlash(path)+".json"), nil
}

func (l *Local) read(path string) (localFile, error) {
	name, err := l.file(path)
	if err != nil {
		return localFile{}, err
	}
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return localFile{}, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	if err != nil {
		return localFile{}, fmt.Errorf("reading %s: %w", path, err)
	}
	var f localFile
	if err := json.Unmarshal(b, &f); err != nil {
		return localFile{}, fmt.Errorf("decoding %s: %w", path, err)
	}
	return f, nil
}

// Get implements Backend.
func (l *Local) Get(_ context.Context, path string) (Entry, error) {
	f, err := l.read(path)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Items: f.Items, Index: f.Index}, nil
}

// lock takes the in-process and the cross-process lock.
func (l *Local) lock() (func(), error) {
	l.mu.Lock()
	f, err := os.OpenFile(filepath.Join(l.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("opening the store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		l.mu.Unlock()
		return nil, fmt.Errorf("locking the store: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		l.mu.Unlock()
	}, nil
}

func (l *Local) current(path string) (uint64, bool, error) {
	f, err := l.read(path)
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return f.Index, true, nil
}

// Put implements Backend.
func (l *Local) Put(_ context.Context, path string, items map[string]string, cas uint64) (uint64, error) {
	name, err := l.file(path)
	if err != nil {
		return 0, err
	}
	unlock, err := l.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	idx, exists, err := l.current(path)
	if err != nil {
		return 0, err
	}
	if (cas == 0 && exists) || (cas != 0 && (!exists || idx != cas)) {
		return 0, fmt.Errorf("%s at index %d, not %d: %w", path, idx, cas, ErrConflict)
	}
	next := idx + 1
	b, err := json.Marshal(localFile{Index: next, Items: items})
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return next, nil
}

// Delete implements Backend.
func (l *Local) Delete(_ context.Context, path string, cas uint64) error {
	name, err := l.file(path)
	if err != nil {
		return err
	}
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	idx, exists, err := l.current(path)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	if idx != cas {
		return fmt.Errorf("%s at index %d, not %d: %w", path, idx, cas, ErrConflict)
	}
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("deleting %s: %w", path, err)
	}
	return nil
}

// List implements Backend.
func (l *Local) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(l.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(l.dir, p)
		if err != nil {
			return err
		}
		path := strings.TrimSuffix(filepath.ToSlash(rel), ".json")
		if strings.HasPrefix(path, prefix) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	sort.Strings(out)
	return out, nil
}

// LayerDirs resolves a function's layer references (pinned "name:n" in a
// published version, "name" = newest for $LATEST) to the unpacked layer
// directories, in order, for the instance's LayerDirs: what the dev
// launcher mounts.
func (l *Local) LayerDirs(ctx context.Context, s *Store, fn *specs.Function) ([]string, error) {
	lvs, err := s.ResolveLayers(ctx, fn.Runtime, fn.Layers)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(lvs))
	for _, lv := range lvs {
		d := l.UnpackedDir(lv.CodeSHA256)
		if _, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("layer %s:%d is not unpacked in %s (publish it again with nimbus layer publish): %w", lv.Layer, lv.Number, l.dir, err)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}
