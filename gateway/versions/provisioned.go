package versions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/specs"
)

// ProvisionedConfig is Lambda's provisioned concurrency config of one
// qualifier (a published version or an alias): how many execution
// environments the version it names keeps initialised. The catalog
// overlay gives that version's spec a provisioned_concurrency block with
// this floor, so the instances run where the version's other instances do.
type ProvisionedConfig struct {
	Function  string
	Qualifier string
	// Requested is ProvisionedConcurrentExecutions.
	Requested    int
	LastModified time.Time
}

func provisionedPath(fn, qualifier string) string {
	return fnPath(fn) + "/provisioned/" + qualifier
}

// PutProvisioned writes the config of fn's qualifier (created or replaced).
func (s *Store) PutProvisioned(ctx context.Context, fn, qualifier string, requested int) (*ProvisionedConfig, error) {
	if err := checkName("function", fn); err != nil {
		return nil, err
	}
	if err := checkName("qualifier", qualifier); err != nil {
		return nil, err
	}
	if requested < 1 {
		return nil, fmt.Errorf("provisioned concurrency of %s:%s must be at least 1: %w", fn, qualifier, ErrInvalid)
	}
	p := provisionedPath(fn, qualifier)
	c := &ProvisionedConfig{Function: fn, Qualifier: qualifier, Requested: requested, LastModified: s.now().UTC().Truncate(time.Millisecond)}
	items := map[string]string{
		"requested":     strconv.Itoa(requested),
		"last_modified": c.LastModified.Format(time.RFC3339Nano),
	}
	for range 10 {
		var cas uint64
		e, err := s.b.Get(ctx, p)
		switch {
		case err == nil:
			cas = e.Index
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		if _, err = s.b.Put(ctx, p, items, cas); err == nil {
			return c, nil
		} else if !errors.Is(err, ErrConflict) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("provisioned concurrency of %s:%s: %w", fn, qualifier, ErrConflict)
}

func decodeProvisioned(fn, qualifier string, e Entry) (*ProvisionedConfig, error) {
	n, err := strconv.Atoi(e.Items["requested"])
	if err != nil {
		return nil, fmt.Errorf("provisioned concurrency of %s:%s: bad requested %q", fn, qualifier, e.Items["requested"])
	}
	c := &ProvisionedConfig{Function: fn, Qualifier: qualifier, Requested: n}
	c.LastModified, _ = time.Parse(time.RFC3339Nano, e.Items["last_modified"])
	return c, nil
}

// Provisioned returns the config of fn's qualifier (ErrNotFound if none).
func (s *Store) Provisioned(ctx context.Context, fn, qualifier string) (*ProvisionedConfig, error) {
	if checkName("function", fn) != nil || checkName("qualifier", qualifier) != nil {
		return nil, fmt.Errorf("provisioned concurrency of %s:%s: %w", fn, qualifier, ErrNotFound)
	}
	e, err := s.b.Get(ctx, provisionedPath(fn, qualifier))
	if err != nil {
		return nil, fmt.Errorf("provisioned concurrency of %s:%s: %w", fn, qualifier, err)
	}
	return decodeProvisioned(fn, qualifier, e)
}

// ProvisionedConfigs returns fn's configs sorted by qualifier.
func (s *Store) ProvisionedConfigs(ctx context.Context, fn string) ([]*ProvisionedConfig, error) {
	base := fnPath(fn) + "/provisioned/"
	paths, err := s.b.List(ctx, base)
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*ProvisionedConfig
	for _, p := range paths {
		q := strings.TrimPrefix(p, base)
		c, err := s.Provisioned(ctx, fn, q)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteProvisioned removes the config of fn's qualifier (ErrNotFound if none).
func (s *Store) DeleteProvisioned(ctx context.Context, fn, qualifier string) error {
	if checkName("function", fn) != nil || checkName("qualifier", qualifier) != nil {
		return fmt.Errorf("provisioned concurrency of %s:%s: %w", fn, qualifier, ErrNotFound)
	}
	p := provisionedPath(fn, qualifier)
	e, err := s.b.Get(ctx, p)
	if err != nil {
		return fmt.Errorf("provisioned concurrency of %s:%s: %w", fn, qualifier, err)
	}
	return s.b.Delete(ctx, p, e.Index)
}

// ProvisionedVersion is a published version and the spec a cluster runs
// it with.
type ProvisionedVersion struct {
	// Version is as published (its Spec is the snapshot, untouched).
	Version *Version
	// Spec is Version.Spec with the provisioned concurrency config that
	// names the version (directly, or through an alias of the store as its
	// primary version) applied by Provision, as the catalog overlay gives
	// it; Version.Spec itself when no config names it.
	Spec *specs.Function
}

// ProvisionedVersions returns fn's published versions, oldest first, with
// the specs they run with.
func (s *Store) ProvisionedVersions(ctx context.Context, fn string) ([]ProvisionedVersion, error) {
	vs, err := s.Versions(ctx, fn)
	if err != nil {
		return nil, err
	}
	pcs, err := s.ProvisionedConfigs(ctx, fn)
	if err != nil {
		return nil, err
	}
	var floors map[string]int
	if len(pcs) > 0 {
		as, err := s.Aliases(ctx, fn)
		if err != nil {
			return nil, err
		}
		aliases := make(map[string]string, len(as))
		for _, a := range as {
			aliases[a.Name] = a.Version
		}
		configs := make(map[string]int, len(pcs))
		for _, pc := range pcs {
			configs[pc.Qualifier] = pc.Requested
		}
		floors = provisionedByVersion(configs, func(q string) (string, bool) {
			v, ok := aliases[q]
			return v, ok
		})
	}
	out := make([]ProvisionedVersion, len(vs))
	for i, v := range vs {
		out[i] = ProvisionedVersion{Version: v, Spec: v.Spec}
		if n, ok := floors[v.Name()]; ok && v.Spec != nil {
			out[i].Spec = Provision(v.Spec, n)
		}
	}
	return out, nil
}
