package versions

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/specs"
)

// BaseCatalog is the catalog the overlay wraps (catalog.Local in dev mode,
// the Nomad catalog in a cluster).
type BaseCatalog interface {
	Function(ctx context.Context, name string) (*catalog.Function, error)
	Functions(ctx context.Context) ([]*catalog.Function, error)
}

// CatalogConfig configures the overlay.
type CatalogConfig struct {
	// Published adds the store's published versions as runnable versions
	// (dev mode, where no job carries them; a cluster's catalog has them
	// from the nimbus-<fn>-<n> jobs). Default false.
	Published bool
	// Refresh is how often Run reloads the store. Default 1s.
	Refresh time.Duration
}

// Catalog overlays the store on a base catalog: the store's aliases win
// over spec-declared ones of the same name, and with Published the store's
// versions are added. It reads the store only in Refresh (Run calls it
// every Refresh), so an invocation never waits on the store.
type Catalog struct {
	base   BaseCatalog
	store  *Store
	cfg    CatalogConfig
	logger hclog.Logger

	mu    sync.RWMutex // guards state
	state map[string]*overlay
}

type overlay struct {
	versions map[string]*specs.Function
	aliases  map[string]*specs.Alias
	// provisioned maps qualifiers to their provisioned concurrency
	// (PutProvisionedConcurrencyConfig).
	provisioned map[string]int
}

// NewCatalog returns the overlay; call Refresh (or Run) to load the store.
func NewCatalog(base BaseCatalog, store *Store, cfg CatalogConfig, logger hclog.Logger) *Catalog {
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Catalog{base: base, store: store, cfg: cfg, logger: logger.Named("versions-catalog"), state: map[string]*overlay{}}
}

// Refresh reloads every function's versions and aliases from the store.
func (c *Catalog) Refresh(ctx context.Context) error {
	fns, err := c.store.Functions(ctx)
	if err != nil {
		return err
	}
	next := make(map[string]*overlay, len(fns))
	for _, fn := range fns {
		o := &overlay{versions: map[string]*specs.Function{}, aliases: map[string]*specs.Alias{}}
		if c.cfg.Published {
			vs, err := c.store.Versions(ctx, fn)
			if err != nil {
				return err
			}
			for _, v := range vs {
				o.versions[strconv.Itoa(v.Number)] = v.Spec
			}
		}
		as, err := c.store.Aliases(ctx, fn)
		if err != nil {
			return err
		}
		for _, a := range as {
			o.aliases[a.Name] = a
		}
		pcs, err := c.store.ProvisionedConfigs(ctx, fn)
		if err != nil {
			return err
		}
		for _, pc := range pcs {
			if o.provisioned == nil {
				o.provisioned = map[string]int{}
			}
			o.provisioned[pc.Qualifier] = pc.Requested
		}
		next[fn] = o
	}
	c.mu.Lock()
	c.state = next
	c.mu.Unlock()
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
				c.logger.Warn("reloading versions and aliases; keeping the previous ones", "error", err)
			}
		}
	}
}

func (c *Catalog) merge(f *catalog.Function) *catalog.Function {
	c.mu.RLock()
	o := c.state[f.Name]
	c.mu.RUnlock()
	if o == nil {
		return f
	}
	out := &catalog.Function{Name: f.Name, Versions: maps.Clone(f.Versions), Aliases: maps.Clone(f.Aliases)}
	if out.Versions == nil {
		out.Versions = map[string]*specs.Function{}
	}
	if out.Aliases == nil {
		out.Aliases = map[string]*specs.Alias{}
	}
	for n, s := range o.versions {
		if _, ok := out.Versions[n]; !ok {
			out.Versions[n] = s
		}
	}
	maps.Copy(out.Aliases, o.aliases)
	applyProvisioned(out, o.provisioned)
	return out
}

// applyProvisioned gives the version each provisioned config names (an
// alias: its primary version) a provisioned_concurrency block with the
// config's floor, on a copy of its spec. $LATEST is never provisioned
// this way (the API refuses it, as Lambda does).
func applyProvisioned(f *catalog.Function, configs map[string]int) {
	for v, n := range provisionedByVersion(configs, func(q string) (string, bool) {
		a, ok := f.Aliases[q]
		if !ok {
			return "", false
		}
		return a.Version, true
	}) {
		if s, ok := f.Versions[v]; ok && s != nil {
			f.Versions[v] = Provision(s, n)
		}
	}
}

// provisionedByVersion maps configs (qualifier → requested) to the
// versions they provision: a qualifier aliasVersion knows is an alias and
// provisions its primary version. $LATEST is left out.
func provisionedByVersion(configs map[string]int, aliasVersion func(q string) (string, bool)) map[string]int {
	out := map[string]int{}
	for q, n := range configs {
		v := q
		if av, ok := aliasVersion(q); ok {
			v = av
		}
		if v == catalog.Latest {
			continue
		}
		out[v] = n
	}
	return out
}

// Provision returns a copy of spec whose provisioned_concurrency block
// keeps requested execution environments initialised (min = max =
// requested; the spec's own target utilisation is kept). spec is not
// modified.
func Provision(spec *specs.Function, requested int) *specs.Function {
	cp := *spec
	pc := &specs.ProvisionedConcurrency{Min: requested, Max: requested, TargetUtilization: 0.7}
	if spec.Provisioned != nil {
		pc.TargetUtilization = spec.Provisioned.TargetUtilization
	}
	cp.Provisioned = pc
	return &cp
}

// Function implements the gateway's catalog.
func (c *Catalog) Function(ctx context.Context, name string) (*catalog.Function, error) {
	f, err := c.base.Function(ctx, name)
	if err != nil {
		return nil, err
	}
	return c.merge(f), nil
}

// Functions implements the gateway's catalog.
func (c *Catalog) Functions(ctx context.Context) ([]*catalog.Function, error) {
	fns, err := c.base.Functions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*catalog.Function, len(fns))
	for i, f := range fns {
		out[i] = c.merge(f)
	}
	return out, nil
}
