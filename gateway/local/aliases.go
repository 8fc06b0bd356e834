package local

import (
	"context"
	"maps"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/specs"
)

// SpecAliases is dev mode's base catalog over the spec directory's (where
// catalog.FromFile points every alias a spec declares at $LATEST): it gives
// each declared alias back the versions the spec names. Under the version
// store's overlay (versions.Catalog with Published), an alias whose versions
// are published runs them, as after a deploy, and one naming a version that
// is not published resolves to nothing (the Invoke API answers
// ResourceNotFoundException) instead of running $LATEST in silence.
// Aliases set in the store still win over declared ones.
type SpecAliases struct {
	Base Catalog
}

// Function implements the overlay's base catalog.
func (s SpecAliases) Function(ctx context.Context, name string) (*catalog.Function, error) {
	f, err := s.Base.Function(ctx, name)
	if err != nil {
		return nil, err
	}
	return declaredAliases(f), nil
}

// Functions implements the overlay's base catalog.
func (s SpecAliases) Functions(ctx context.Context) ([]*catalog.Function, error) {
	fns, err := s.Base.Functions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*catalog.Function, len(fns))
	for i, f := range fns {
		out[i] = declaredAliases(f)
	}
	return out, nil
}

// declaredAliases returns f with the aliases its $LATEST spec declares, as
// declared. f itself (shared by a snapshot) is not changed.
func declaredAliases(f *catalog.Function) *catalog.Function {
	latest := f.Versions[catalog.Latest]
	if latest == nil || len(latest.Aliases) == 0 {
		return f
	}
	out := *f
	out.Aliases = maps.Clone(f.Aliases)
	if out.Aliases == nil {
		out.Aliases = map[string]*specs.Alias{}
	}
	for _, a := range latest.Aliases {
		out.Aliases[a.Name] = a
	}
	return &out
}
