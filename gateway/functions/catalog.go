package functions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// BaseCatalog is the catalog the overlay wraps (the same contract as the
// versions overlay's).
type BaseCatalog = versions.BaseCatalog

// CatalogConfig configures the overlay.
type CatalogConfig struct {
	// SpecTime says when the base's spec of a function was last written
	// (the spec file's modification time in dev mode). A stored function
	// runs its stored $LATEST unless the base's spec is newer than the
	// store's last write. Nil: the store always wins.
	SpecTime func(*specs.Function) time.Time
	// Refresh is how often Run reloads the store. Default 1s.
	Refresh time.Duration
	// OnChange runs after a refresh that changed what the overlay serves
	// (dev mode replaces the instances). Nil: nothing.
	OnChange func()
}

// Catalog adds the store's functions to a base catalog (dev mode: the
// spec directory). It reads the store only in Refresh, so an invocation
// never waits on it.
type Catalog struct {
	base   BaseCatalog
	store  *Store
	cfg    CatalogConfig
	logger hclog.Logger

	mu      sync.RWMutex // guards serving and signature
	serving map[string]*specs.Function
	// signature names what serving holds: each function and a digest of
	// the spec it serves.
	signature string
}

// NewCatalog returns the overlay; call Refresh (or Run) to load the store.
func NewCatalog(base BaseCatalog, store *Store, cfg CatalogConfig, logger hclog.Logger) *Catalog {
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Catalog{base: base, store: store, cfg: cfg, logger: logger.Named("functions-catalog"), serving: map[string]*specs.Function{}}
}

// Refresh reloads the stored functions that are in service.
func (c *Catalog) Refresh(ctx context.Context) error {
	fns, err := c.store.List(ctx)
	if err != nil {
		return err
	}
	next := make(map[string]*specs.Function, len(fns))
	var sig strings.Builder
	for _, f := range fns {
		if f.Serving == nil {
			continue // never applied: Pending or Failed at create
		}
		if c.cfg.SpecTime != nil {
			if b, err := c.base.Function(ctx, f.Name); err == nil && b.Latest() != nil {
				if c.cfg.SpecTime(b.Latest()).After(f.LastModified) {
					continue // the spec file was written after the API: it wins
				}
			}
		}
		next[f.Name] = f.Serving
		raw, err := specs.Encode(f.Serving)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		sig.WriteString(f.Name + "=" + hex.EncodeToString(sum[:8]) + ";")
	}
	c.mu.Lock()
	changed := c.signature != sig.String()
	c.serving, c.signature = next, sig.String()
	c.mu.Unlock()
	if changed && c.cfg.OnChange != nil {
		c.cfg.OnChange()
	}
	return nil
}

// Run refreshes every cfg.Refresh until ctx is done; a failed refresh keeps
// the previous state.
func (c *Catalog) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Refresh(ctx); err != nil && !errors.Is(err, context.Canceled) {
				c.logger.Warn("reloading managed functions; keeping the previous ones", "error", err)
			}
		}
	}
}

// Overrides reports whether the store's $LATEST of name is the one running.
func (c *Catalog) Overrides(name string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.serving[name]
	return ok
}

func (c *Catalog) merge(f *catalog.Function, s *specs.Function) *catalog.Function {
	out := &catalog.Function{Name: s.Name, Versions: map[string]*specs.Function{}, Aliases: map[string]*specs.Alias{}}
	if f != nil {
		out.Versions = maps.Clone(f.Versions)
		out.Aliases = maps.Clone(f.Aliases)
	}
	out.Versions[catalog.Latest] = s
	return out
}

// Function implements the gateway's catalog.
func (c *Catalog) Function(ctx context.Context, name string) (*catalog.Function, error) {
	c.mu.RLock()
	s := c.serving[name]
	c.mu.RUnlock()
	f, err := c.base.Function(ctx, name)
	if s == nil {
		return f, err
	}
	if err != nil && !errors.Is(err, catalog.ErrFunctionNotFound) {
		return nil, err
	}
	return c.merge(f, s), nil
}

// Functions implements the gateway's catalog.
func (c *Catalog) Functions(ctx context.Context) ([]*catalog.Function, error) {
	fns, err := c.base.Functions(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	serving := maps.Clone(c.serving)
	c.mu.RUnlock()
	out := make([]*catalog.Function, 0, len(fns)+len(serving))
	for _, f := range fns {
		if s, ok := serving[f.Name]; ok {
			out = append(out, c.merge(f, s))
			delete(serving, f.Name)
			continue
		}
		out = append(out, f)
	}
	for _, s := range serving {
		out = append(out, c.merge(nil, s))
	}
	sortFunctions(out)
	return out, nil
}

func sortFunctions(fns []*catalog.Function) {
	sort.Slice(fns, func(i, j int) bool { return fns[i].Name < fns[j].Name })
}
