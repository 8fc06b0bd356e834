package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

// Launcher starts and tracks in-process instances.
type Launcher struct {
	baseDir string
	log     hclog.Logger

	mu      sync.Mutex
	seq     int
	handles map[string]*Handle
}

// NewLauncher returns a launcher keeping instance state under baseDir.
func NewLauncher(baseDir string, logger hclog.Logger) *Launcher {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Launcher{baseDir: baseDir, log: logger.Named("local"), handles: map[string]*Handle{}}
}

// Handle is one running instance.
type Handle struct {
	// ID is unique within the launcher ("<function>-<n>").
	ID       string
	Function string
	Version  string
	// Addr is the bound invoke endpoint (loopback host:port).
	Addr string
	// Secret is the invoke secret callers must send (empty: none).
	Secret   string
	StateDir string

	inst *instance.Instance
	l    *Launcher
}

// Status is the instance's environment accounting.
func (h *Handle) Status() invokeapi.Status { return h.inst.Status() }

// ImageFailure is the instance's image pull failure (instance.ImageFailure).
func (h *Handle) ImageFailure() error { return h.inst.ImageFailure() }

// Stop stops the instance (draining in-flight invocations until ctx ends)
// and forgets it.
func (h *Handle) Stop(ctx context.Context) error {
	h.l.mu.Lock()
	delete(h.l.handles, h.ID)
	h.l.mu.Unlock()
	return h.inst.Stop(ctx)
}

// Launch starts an instance for cfg. An empty StateDir gets a fresh
// directory under the base dir; an empty InvokeAddr a loopback port.
func (l *Launcher) Launch(ctx context.Context, cfg *instance.Config) (*Handle, error) {
	if cfg == nil {
		return nil, errors.New("launching instance: nil config")
	}
	c := *cfg
	l.mu.Lock()
	l.seq++
	id := sanitize(c.Function) + "-" + strconv.Itoa(l.seq)
	l.mu.Unlock()
	if c.StateDir == "" {
		c.StateDir = filepath.Join(l.baseDir, id)
	}
	if c.InvokeAddr == "" {
		c.InvokeAddr = "127.0.0.1:0"
	}
	if c.Image != nil && c.Image.CacheDir == "" {
		// Image functions share one layer cache per launcher.
		ic := *c.Image
		dir, err := filepath.Abs(l.ImageCacheDir())
		if err != nil {
			return nil, fmt.Errorf("launching %s: %w", c.Function, err)
		}
		ic.CacheDir = dir
		c.Image = &ic
	}
	if err := os.MkdirAll(c.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("launching %s: %w", c.Function, err)
	}
	inst, err := instance.New(&c, l.log)
	if err != nil {
		return nil, fmt.Errorf("launching %s: %w", c.Function, err)
	}
	if err := inst.Start(ctx); err != nil {
		return nil, fmt.Errorf("launching %s: %w", c.Function, err)
	}
	eff := inst.Config()
	h := &Handle{ID: id, Function: eff.Function, Version: eff.Version, Addr: inst.Addr(), Secret: eff.InvokeSecret, StateDir: eff.StateDir, inst: inst, l: l}
	l.mu.Lock()
	l.handles[id] = h
	l.mu.Unlock()
	l.log.Debug("instance launched", "function", h.Function, "version", h.Version, "instance", id, "addr", h.Addr)
	return h, nil
}

// ImageCacheDir is where image functions' layers are cached when their
// config names no cache: shared by every instance the launcher starts.
func (l *Launcher) ImageCacheDir() string { return filepath.Join(l.baseDir, "images") }

// Get returns the running instance with id.
func (l *Launcher) Get(id string) (*Handle, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.handles[id]
	return h, ok
}

// List returns the running instances ordered by ID.
func (l *Launcher) List() []*Handle {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Handle, 0, len(l.handles))
	for _, h := range l.handles {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// StopAll stops every running instance.
func (l *Launcher) StopAll(ctx context.Context) error {
	var errs []error
	for _, h := range l.List() {
		if err := h.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", h.ID, err))
		}
	}
	return errors.Join(errs...)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
