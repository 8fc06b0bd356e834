package local_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/local"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// TestSpecAliasesRunWhatTheyName: in dev mode, an alias declared in a spec
// runs the published version it names (with its routing), refuses when that
// version is not published, and is overridden by an alias set in the store;
// it never falls back to $LATEST unless it names $LATEST.
func TestSpecAliasesRunWhatTheyName(t *testing.T) {
	ctx := context.Background()
	spec := &specs.Function{Name: "f", MemoryMB: 128, Aliases: []*specs.Alias{
		{Name: "beta", Version: catalog.Latest},
		{Name: "live", Version: "1"},
		{Name: "next", Version: "2"},
		{Name: "split", Version: "1", Routing: map[string]float64{"2": 0.5}},
		{Name: "stored", Version: "2"},
	}}
	c := &cat{s: catalog.NewSnapshot(catalog.FromFile(&specs.File{Functions: []*specs.Function{spec}}))}
	vl, err := versions.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := versions.New(vl, nil)
	v1 := *spec
	v1.MemoryMB = 256
	if _, _, err := store.Publish(ctx, "f", versions.Snapshot{Spec: &v1, CodeSHA256: strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetAlias(ctx, "f", &specs.Alias{Name: "stored", Version: "1"}); err != nil {
		t.Fatal(err)
	}
	overlay := versions.NewCatalog(local.SpecAliases{Base: c}, store, versions.CatalogConfig{Published: true}, nil)
	if err := overlay.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	fn, err := overlay.Function(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	for qualifier, want := range map[string]string{"beta": catalog.Latest, "live": "1", "stored": "1"} {
		res, err := fn.Resolve(qualifier, nil)
		if err != nil || res.Version != want {
			t.Errorf("%s: %+v, %v; want version %s", qualifier, res, err, want)
		}
	}
	if res, err := fn.Resolve("live", nil); err == nil && res.Spec.MemoryMB != 256 {
		t.Errorf("live runs a spec with %d MB, want published version 1's 256", res.Spec.MemoryMB)
	}
	if res, err := fn.Resolve("next", nil); !errors.Is(err, catalog.ErrQualifierNotFound) {
		t.Errorf("next (version 2, not published): %+v, %v; want ErrQualifierNotFound", res, err)
	}
	if res, err := fn.Resolve("split", func() float64 { return 0.1 }); !errors.Is(err, catalog.ErrQualifierNotFound) {
		t.Errorf("split's routed share (version 2, not published): %+v, %v; want ErrQualifierNotFound", res, err)
	}
	if res, err := fn.Resolve("split", func() float64 { return 0.9 }); err != nil || res.Version != "1" {
		t.Errorf("split's primary share: %+v, %v; want version 1", res, err)
	}
	// The snapshot's own functions keep FromFile's aliases.
	base, _ := c.Function(ctx, "f")
	if base.Aliases["live"].Version != catalog.Latest {
		t.Errorf("the base snapshot was changed: live -> %s", base.Aliases["live"].Version)
	}
}
