package versions

import (
	"context"
	"testing"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/specs"
)

type staticCatalog struct{ snap *catalog.Snapshot }

func (s staticCatalog) Function(_ context.Context, name string) (*catalog.Function, error) {
	return s.snap.Function(name)
}

func (s staticCatalog) Functions(context.Context) ([]*catalog.Function, error) {
	return s.snap.Functions(), nil
}

func TestCatalogOverlay(t *testing.T) {
	ctx := context.Background()
	b, _ := NewLocal(t.TempDir())
	st := New(b, nil)
	latest := spec(128)
	latest.Aliases = []*specs.Alias{{Name: "live", Version: "1"}, {Name: "spec-only", Version: "1"}}
	base := staticCatalog{catalog.NewSnapshot(catalog.FromFile(&specs.File{Functions: []*specs.Function{latest}}))}
	mustPublish(t, st, "fn", Snapshot{Spec: spec(256), CodeSHA256: sha('a')}, 1, true)
	mustPublish(t, st, "fn", Snapshot{Spec: spec(512), CodeSHA256: sha('b')}, 2, true)
	if err := st.SetAlias(ctx, "fn", &specs.Alias{Name: "live", Version: "1", Routing: map[string]float64{"2": 0.25}}); err != nil {
		t.Fatal(err)
	}

	for _, published := range []bool{true, false} {
		c := NewCatalog(base, st, CatalogConfig{Published: published}, nil)
		if err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		f, err := c.Function(ctx, "fn")
		if err != nil {
			t.Fatal(err)
		}
		if a := f.Aliases["live"]; a.Version != "1" || a.Routing["2"] != 0.25 {
			t.Fatalf("published=%v: store alias should win: %+v", published, a)
		}
		if _, ok := f.Aliases["spec-only"]; !ok {
			t.Fatalf("published=%v: spec-declared alias lost", published)
		}
		_, has1 := f.Versions["1"]
		if has1 != published || f.Versions[catalog.Latest] == nil {
			t.Fatalf("published=%v: versions %v", published, f.VersionNames())
		}
		if published {
			// Weighted resolution through the gateway's own Resolve.
			r, err := f.Resolve("live", func() float64 { return 0.1 })
			if err != nil || r.Version != "2" || r.Spec.MemoryMB != 512 {
				t.Fatalf("pick 0.1: %+v %v", r, err)
			}
			r, err = f.Resolve("live", func() float64 { return 0.9 })
			if err != nil || r.Version != "1" || r.Spec.MemoryMB != 256 {
				t.Fatalf("pick 0.9: %+v %v", r, err)
			}
		}
		// The base snapshot is not modified by the overlay.
		bf, _ := base.Function(ctx, "fn")
		if len(bf.Versions) != 1 || bf.Aliases["live"].Routing != nil {
			t.Fatalf("base catalog mutated: %v %+v", bf.VersionNames(), bf.Aliases["live"])
		}
	}
	c := NewCatalog(base, st, CatalogConfig{Published: true}, nil)
	if f, _ := c.Function(ctx, "fn"); len(f.Versions) != 1 {
		t.Fatal("before the first Refresh the overlay adds nothing")
	}
	if _, err := c.Function(ctx, "nope"); err == nil {
		t.Fatal("unknown function resolved")
	}
}
