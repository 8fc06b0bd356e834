package catalog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/specs"
)

func fn() *catalog.Function {
	return &catalog.Function{
		Name: "f",
		Versions: map[string]*specs.Function{
			catalog.Latest: {Name: "f"}, "1": {Name: "f"}, "2": {Name: "f"}, "10": {Name: "f"},
		},
		Aliases: map[string]*specs.Alias{
			"prod":   {Name: "prod", Version: "1", Routing: map[string]float64{"2": 0.25}},
			"stable": {Name: "stable", Version: "10"},
			"broken": {Name: "broken", Version: "7"},
		},
	}
}

func TestResolve(t *testing.T) {
	f := fn()
	cases := []struct {
		q    string
		pick float64
		want string
	}{
		{"", 0, catalog.Latest}, {"$LATEST", 0, catalog.Latest}, {"2", 0, "2"},
		{"stable", 0, "10"}, {"prod", 0.1, "2"}, {"prod", 0.25, "1"}, {"prod", 0.9, "1"},
	}
	for _, c := range cases {
		res, err := f.Resolve(c.q, func() float64 { return c.pick })
		if err != nil || res.Version != c.want {
			t.Errorf("Resolve(%q, %v) = %v, %v; want %s", c.q, c.pick, res, err, c.want)
		}
	}
	for _, q := range []string{"3", "nope", "broken"} {
		if _, err := f.Resolve(q, nil); !errors.Is(err, catalog.ErrQualifierNotFound) {
			t.Errorf("Resolve(%q) = %v, want ErrQualifierNotFound", q, err)
		}
	}
	if got := f.VersionNames(); len(got) != 4 || got[0] != catalog.Latest || got[1] != "1" || got[2] != "2" || got[3] != "10" {
		t.Errorf("VersionNames = %v", got)
	}
}

func TestFromFileAliasesRunLatest(t *testing.T) {
	fns := catalog.FromFile(&specs.File{Functions: []*specs.Function{{Name: "f",
		Aliases: []*specs.Alias{{Name: "live", Version: "1", Routing: map[string]float64{"2": 0.1}}}}}})
	res, err := fns[0].Resolve("live", func() float64 { return 0 })
	if err != nil || res.Version != catalog.Latest {
		t.Fatalf("local alias resolved to %v, %v; want $LATEST", res, err)
	}
}

func TestSnapshotReservedTotal(t *testing.T) {
	two, three := 2, 3
	s := catalog.NewSnapshot([]*catalog.Function{
		{Name: "a", Versions: map[string]*specs.Function{catalog.Latest: {Name: "a", ReservedConcurrency: &two}}},
		{Name: "b", Versions: map[string]*specs.Function{catalog.Latest: {Name: "b", ReservedConcurrency: &three}}},
		{Name: "c", Versions: map[string]*specs.Function{catalog.Latest: {Name: "c"}}},
	})
	if s.ReservedTotal != 5 {
		t.Fatalf("reserved total %d", s.ReservedTotal)
	}
	if _, err := s.Function("zz"); !errors.Is(err, catalog.ErrFunctionNotFound) {
		t.Fatalf("missing function: %v", err)
	}
}

func load(path string) (*specs.File, error) {
	f, diags := specs.Load(path, nil)
	if diags.HasErrors() {
		return nil, hcl.Diagnostics(diags)
	}
	return f, nil
}

const specA = `function "hello" {
  runtime = "provided.al2023"
  code { dir = "." }
}
`

const specB = `function "hello" {
  runtime = "provided.al2023"
  memory_mb = 256
  code { dir = "." }
}
function "other" {
  runtime = "provided.al2023"
  code { dir = "." }
}
`

func TestLocalReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nimbus.hcl")
	if err := os.WriteFile(file, []byte(specA), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := catalog.NewLocal(dir, load, nil)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan *catalog.Snapshot, 4)
	l.Watch(func(s *catalog.Snapshot) { reloaded <- s })
	f, err := l.Function(context.Background(), "hello")
	if err != nil || f.Latest().MemoryMB != 128 {
		t.Fatalf("initial load: %v %+v", err, f)
	}
	if l.Poll() {
		t.Fatal("poll without change reloaded")
	}
	write := func(src string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		// Distinct mtimes even on coarse-grained filesystems.
		if err := os.Chtimes(file, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(specB, time.Now().Add(time.Second))
	if !l.Poll() {
		t.Fatal("change not picked up")
	}
	s := <-reloaded
	if fns := s.Functions(); len(fns) != 2 {
		t.Fatalf("after reload: %d functions", len(fns))
	}
	if f, _ := l.Function(context.Background(), "hello"); f.Latest().MemoryMB != 256 {
		t.Fatalf("memory after reload = %d", f.Latest().MemoryMB)
	}
	write(`function "broken" {`, time.Now().Add(2*time.Second))
	if l.Poll() {
		t.Fatal("a broken spec must not replace the catalog")
	}
	if l.LastError() == nil {
		t.Fatal("load error not reported")
	}
	if fns, _ := l.Functions(context.Background()); len(fns) != 2 {
		t.Fatalf("previous snapshot lost: %d functions", len(fns))
	}
}

func TestLocalWatchAlsoTriggersReload(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), []byte(specA), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := catalog.NewLocal(dir, load, nil)
	if err != nil {
		t.Fatal(err)
	}
	code := "a"
	l.WatchAlso(func(*catalog.Snapshot) string { return code })
	runs := 0
	l.Watch(func(*catalog.Snapshot) { runs++ })
	if l.Poll() {
		t.Fatal("reload without change")
	}
	code = "b"
	if !l.Poll() || runs != 1 {
		t.Fatalf("code stamp change: reloaded watchers %d times, want 1", runs)
	}
	if l.Poll() {
		t.Fatal("second poll after the same change reloaded again")
	}
}

func TestLocalCatalogContract(t *testing.T) {
	gatewaytest.CatalogContract(t, func(t *testing.T, fns []*specs.Function) gatewaytest.Catalog {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := catalog.NewLocal(dir, func(string) (*specs.File, error) { return &specs.File{Functions: fns}, nil }, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}
