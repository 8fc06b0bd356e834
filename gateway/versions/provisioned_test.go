package versions

import (
	"context"
	"errors"
	"testing"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/specs"
)

// Provisioned concurrency configs round-trip through the store, and the
// overlay provisions exactly the version each names (an alias's primary
// version), never $LATEST or the other versions.
func TestProvisionedConfigsReachTheVersionTheyName(t *testing.T) {
	ctx := context.Background()
	b, _ := NewLocal(t.TempDir())
	st := New(b, nil)
	base := staticCatalog{catalog.NewSnapshot(catalog.FromFile(&specs.File{Functions: []*specs.Function{spec(128)}}))}
	mustPublish(t, st, "fn", Snapshot{Spec: spec(256), CodeSHA256: sha('a')}, 1, true)
	mustPublish(t, st, "fn", Snapshot{Spec: spec(512), CodeSHA256: sha('b')}, 2, true)
	mustPublish(t, st, "fn", Snapshot{Spec: spec(1024), CodeSHA256: sha('c')}, 3, true)
	if err := st.SetAlias(ctx, "fn", &specs.Alias{Name: "live", Version: "2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutProvisioned(ctx, "fn", "$LATEST", 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("$LATEST: %v, want ErrInvalid", err)
	}
	if _, err := st.PutProvisioned(ctx, "fn", "1", 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("0: %v, want ErrInvalid", err)
	}
	if _, err := st.Provisioned(ctx, "fn", "1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before put: %v, want ErrNotFound", err)
	}
	for q, n := range map[string]int{"1": 2, "live": 3} {
		if _, err := st.PutProvisioned(ctx, "fn", q, n); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := st.PutProvisioned(ctx, "fn", "1", 4) // replaces
	if err != nil || pc.Requested != 4 {
		t.Fatalf("replace: %+v %v", pc, err)
	}
	list, err := st.ProvisionedConfigs(ctx, "fn")
	if err != nil || len(list) != 2 || list[0].Qualifier != "1" || list[0].Requested != 4 || list[1].Qualifier != "live" || list[0].LastModified.IsZero() {
		t.Fatalf("list: %+v %v", list, err)
	}

	c := NewCatalog(base, st, CatalogConfig{Published: true}, nil)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := c.Function(ctx, "fn")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{catalog.Latest: 0, "1": 4, "2": 3, "3": 0}
	for v, n := range want {
		got := 0
		if p := f.Versions[v].Provisioned; p != nil {
			got = p.Min
			if p.Max != n {
				t.Fatalf("version %s: max %d, want %d", v, p.Max, n)
			}
		}
		if got != n {
			t.Fatalf("version %s provisioned %d, want %d", v, got, n)
		}
	}
	// The store's snapshot itself is untouched.
	if v, _ := st.Version(ctx, "fn", 1); v.Spec.Provisioned != nil {
		t.Fatalf("the published snapshot changed: %+v", v.Spec.Provisioned)
	}

	// A cluster registers the versions' jobs from the same specs.
	pvs, err := st.ProvisionedVersions(ctx, "fn")
	if err != nil || len(pvs) != 3 {
		t.Fatalf("provisioned versions: %d %v", len(pvs), err)
	}
	for _, pv := range pvs {
		got, v := 0, pv.Version
		if p := pv.Spec.Provisioned; p != nil {
			got = p.Min
		}
		if n := want[v.Name()]; got != n || pv.Spec.MemoryMB != f.Versions[v.Name()].MemoryMB || v.Spec.Provisioned != nil {
			t.Fatalf("provisioned version %s: %d environments (%d MB; published %+v), want %d", v.Name(), got, pv.Spec.MemoryMB, v.Spec.Provisioned, n)
		}
	}
	if err := st.DeleteProvisioned(ctx, "fn", "1"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteProvisioned(ctx, "fn", "1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f, _ = c.Function(ctx, "fn")
	if f.Versions["1"].Provisioned != nil || f.Versions["2"].Provisioned == nil {
		t.Fatalf("after delete: v1 %+v, v2 %+v", f.Versions["1"].Provisioned, f.Versions["2"].Provisioned)
	}
}
