package versions

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/nimbus-fn/nimbus/specs"
)

// runContract is the one suite every backend passes.
func runContract(t *testing.T, newStore func(t *testing.T) *Store) {
	t.Run("publish", func(t *testing.T) { testPublish(t, newStore(t)) })
	t.Run("concurrent publish", func(t *testing.T) { testConcurrentPublish(t, newStore(t)) })
	t.Run("aliases", func(t *testing.T) { testAliases(t, newStore(t)) })
	t.Run("delete version", func(t *testing.T) { testDeleteVersion(t, newStore(t)) })
	t.Run("layers", func(t *testing.T) { testLayers(t, newStore(t)) })
	t.Run("alias revisions", func(t *testing.T) { testAliasRevisions(t, newStore(t)) })
	t.Run("layer metadata and deletes", func(t *testing.T) { testLayerDeletes(t, newStore(t)) })
	t.Run("references", func(t *testing.T) { testReferences(t, newStore(t)) })
	t.Run("rollouts", func(t *testing.T) { testRollouts(t, newStore(t)) })
}

func sha(c byte) string { return strings.Repeat(string(c), 64) }

func spec(mem int) *specs.Function {
	return &specs.Function{Name: "fn", Runtime: "provided.al2023", Code: &specs.Code{Dir: "."}, MemoryMB: mem, Timeout: "3s",
		EphemeralStorageMB: 512, EnvironmentsPerInstance: 1, Environment: map[string]string{"A": "1"}}
}

func mustPublish(t *testing.T, s *Store, fn string, snap Snapshot, wantN int, wantCreated bool) *Version {
	t.Helper()
	v, created, err := s.Publish(context.Background(), fn, snap)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if v.Number != wantN || created != wantCreated {
		t.Fatalf("publish gave version %d created=%v; want %d created=%v", v.Number, created, wantN, wantCreated)
	}
	return v
}

func testPublish(t *testing.T, s *Store) {
	ctx := context.Background()
	v1 := mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('a'), Description: "first"}, 1, true)
	// Unchanged $LATEST: the existing version, whatever the new description.
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('a'), Description: "again"}, 1, false)
	// The code location is not configuration: same checksum, same version.
	moved := spec(128)
	moved.Code = &specs.Code{Dir: "elsewhere"}
	mustPublish(t, s, "fn", Snapshot{Spec: moved, CodeSHA256: sha('a')}, 1, false)
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('b')}, 2, true)
	mustPublish(t, s, "fn", Snapshot{Spec: spec(256), CodeSHA256: sha('b')}, 3, true)
	// Back to an older state is still a new version (only the newest counts).
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('a')}, 4, true)
	mustPublish(t, s, "other", Snapshot{Spec: spec(128), CodeSHA256: sha('a')}, 1, true)

	vs, err := s.Versions(ctx, "fn")
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, v := range vs {
		nums = append(nums, v.Number)
	}
	if !reflect.DeepEqual(nums, []int{1, 2, 3, 4}) {
		t.Fatalf("versions %v", nums)
	}
	got, err := s.Version(ctx, "fn", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec, spec(128)) || got.Description != "first" || got.CodeSHA256 != sha('a') || !got.Created.Equal(v1.Created) {
		t.Fatalf("version 1 read back as %+v (spec %+v)", got, got.Spec)
	}
	if vs[2].Spec.MemoryMB != 256 {
		t.Fatalf("version 3 memory %d", vs[2].Spec.MemoryMB)
	}
	if _, err := s.Version(ctx, "fn", 9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing version: %v", err)
	}
	fns, err := s.Functions(ctx)
	if err != nil || !reflect.DeepEqual(fns, []string{"fn", "other"}) {
		t.Fatalf("functions %v %v", fns, err)
	}
	for _, bad := range []struct {
		fn   string
		snap Snapshot
	}{
		{"bad/name", Snapshot{Spec: spec(128), CodeSHA256: sha('a')}},
		{"fn", Snapshot{Spec: spec(128), CodeSHA256: "nothex"}},
		{"fn", Snapshot{CodeSHA256: sha('a')}},
		{"fn", Snapshot{Spec: &specs.Function{Name: "fn", Layers: []string{"a", "b", "c", "d", "e", "f"}}, CodeSHA256: sha('a')}},
	} {
		if _, _, err := s.Publish(ctx, bad.fn, bad.snap); !errors.Is(err, ErrInvalid) {
			t.Errorf("publish %q %+v: %v, want ErrInvalid", bad.fn, bad.snap, err)
		}
	}
}

func testConcurrentPublish(t *testing.T, s *Store) {
	const n = 6
	var wg sync.WaitGroup
	got := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, err := s.Publish(context.Background(), "race", Snapshot{Spec: spec(128 + i), CodeSHA256: sha('c')})
			if err == nil {
				got[i] = v.Number
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("publisher %d: %v", i, errs[i])
		}
		if seen[got[i]] {
			t.Fatalf("two publishers got version %d: %v", got[i], got)
		}
		seen[got[i]] = true
	}
	vs, err := s.Versions(context.Background(), "race")
	if err != nil || len(vs) != n {
		t.Fatalf("%d versions stored (%v), want %d", len(vs), err, n)
	}
}

func testAliases(t *testing.T, s *Store) {
	ctx := context.Background()
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('a')}, 1, true)
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('b')}, 2, true)
	for _, a := range []*specs.Alias{
		{Name: "123", Version: "1"},
		{Name: "bad name", Version: "1"},
		{Name: "live", Version: "$LATEST"},
		{Name: "live", Version: "other"},
		{Name: "live", Version: "1", Routing: map[string]float64{"1": 0.5}},
		{Name: "live", Version: "1", Routing: map[string]float64{"2": 1.5}},
		{Name: "live", Version: "1", Routing: map[string]float64{"2": -0.1}},
		{Name: "live", Version: "1", Routing: map[string]float64{"2": 0.1, "3": 0.1}},
	} {
		if err := s.SetAlias(ctx, "fn", a); !errors.Is(err, ErrInvalid) {
			t.Errorf("alias %+v: %v, want ErrInvalid", a, err)
		}
	}
	long := &specs.Alias{Name: strings.Repeat("a", 128), Version: "1"}
	if err := s.SetAlias(ctx, "fn", long); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "128 characters") {
		t.Errorf("alias whose variable path is too long: %v", err)
	}
	if err := s.SetAlias(ctx, "fn", &specs.Alias{Name: strings.Repeat("a", 100), Version: "1"}); err != nil {
		t.Errorf("100-character alias: %v", err)
	}
	if err := s.DeleteAlias(ctx, "fn", strings.Repeat("a", 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAlias(ctx, "fn", &specs.Alias{Name: "live", Version: "7"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("alias to a missing version: %v", err)
	}
	if err := s.SetAlias(ctx, "fn", &specs.Alias{Name: "live", Version: "1", Routing: map[string]float64{"9": 0.1}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("alias routing to a missing version: %v", err)
	}
	live := &specs.Alias{Name: "live", Version: "1", Description: "canary", Routing: map[string]float64{"2": 0.1}}
	if err := s.SetAlias(ctx, "fn", live); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAlias(ctx, "fn", &specs.Alias{Name: "beta", Version: "2"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Alias(ctx, "fn", "live")
	if err != nil || !reflect.DeepEqual(got, live) {
		t.Fatalf("alias read back %+v, %v", got, err)
	}
	shifted := &specs.Alias{Name: "live", Version: "2"}
	if err := s.SetAlias(ctx, "fn", shifted); err != nil {
		t.Fatal(err)
	}
	all, err := s.Aliases(ctx, "fn")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "beta" || !reflect.DeepEqual(all[1], shifted) {
		t.Fatalf("aliases %+v", all)
	}
	if err := s.DeleteAlias(ctx, "fn", "beta"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Alias(ctx, "fn", "beta"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted alias: %v", err)
	}
	if err := s.DeleteAlias(ctx, "fn", "beta"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
}

func testDeleteVersion(t *testing.T, s *Store) {
	ctx := context.Background()
	for i, c := range []byte("abc") {
		mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha(c)}, i+1, true)
	}
	if err := s.SetAlias(ctx, "fn", &specs.Alias{Name: "live", Version: "1", Routing: map[string]float64{"2": 0.2}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2} {
		if err := s.DeleteVersion(ctx, "fn", n); !errors.Is(err, ErrVersionInUse) {
			t.Errorf("deleting version %d an alias uses: %v", n, err)
		}
	}
	if err := s.DeleteVersion(ctx, "fn", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVersion(ctx, "fn", 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	if err := s.SetAlias(ctx, "fn", &specs.Alias{Name: "live", Version: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVersion(ctx, "fn", 2); err != nil {
		t.Fatalf("version 2 no longer routed to: %v", err)
	}
	// Numbers are never reused, even after deletes; and the newest existing
	// version is not what an unchanged publish compares against once the
	// newest number was deleted.
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('c')}, 4, true)
	vs, _ := s.Versions(ctx, "fn")
	if len(vs) != 2 || vs[0].Number != 1 || vs[1].Number != 4 {
		t.Fatalf("versions after deletes: %+v", vs)
	}
}

func testLayers(t *testing.T, s *Store) {
	ctx := context.Background()
	l1, created, err := s.PublishLayer(ctx, "deps", LayerSnapshot{CodeSHA256: sha('1'), Size: 10, CompatibleRuntimes: []string{"python3"}})
	if err != nil || !created || l1.Number != 1 {
		t.Fatalf("first layer: %+v %v %v", l1, created, err)
	}
	again, created, err := s.PublishLayer(ctx, "deps", LayerSnapshot{CodeSHA256: sha('1'), Size: 10, CompatibleRuntimes: []string{"python3"}})
	if err != nil || created || again.Number != 1 {
		t.Fatalf("unchanged layer: %+v %v %v", again, created, err)
	}
	l2, created, err := s.PublishLayer(ctx, "deps", LayerSnapshot{CodeSHA256: sha('2'), Size: 20, Description: "v2", CompatibleRuntimes: []string{"python3"}})
	if err != nil || !created || l2.Number != 2 {
		t.Fatalf("second layer: %+v %v %v", l2, created, err)
	}
	if _, _, err := s.PublishLayer(ctx, "tools", LayerSnapshot{CodeSHA256: sha('3'), Size: 5}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ResolveLayers(ctx, "python3.12", []string{"deps:1", "tools", "deps"})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, lv := range got {
		refs = append(refs, fmt.Sprintf("%s:%d:%s", lv.Layer, lv.Number, lv.CodeSHA256[:1]))
	}
	if !reflect.DeepEqual(refs, []string{"deps:1:1", "tools:1:3", "deps:2:2"}) {
		t.Fatalf("resolved %v", refs)
	}
	if got[2].Description != "v2" || got[2].Size != 20 || !reflect.DeepEqual(got[2].CompatibleRuntimes, []string{"python3"}) {
		t.Fatalf("layer version read back %+v", got[2])
	}
	if _, err := s.ResolveLayers(ctx, "nodejs20.x", []string{"deps"}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "python3") {
		t.Errorf("incompatible runtime: %v", err)
	}
	if _, err := s.ResolveLayers(ctx, "python3.12", []string{"tools", "tools", "tools", "tools", "tools", "tools"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("six layers: %v", err)
	}
	if _, err := s.ResolveLayers(ctx, "python3.12", []string{"deps:7"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing layer version: %v", err)
	}
	if _, err := s.ResolveLayers(ctx, "python3.12", []string{"nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing layer: %v", err)
	}
}

func testReferences(t *testing.T, s *Store) {
	ctx := context.Background()
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('a')}, 1, true)
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('b')}, 2, true)
	if _, _, err := s.PublishLayer(ctx, "deps", LayerSnapshot{CodeSHA256: sha('c'), Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVersion(ctx, "fn", 1); err != nil {
		t.Fatal(err)
	}
	refs, err := s.References(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(refs, map[string]bool{sha('b'): true, sha('c'): true}) {
		t.Fatalf("references %v", refs)
	}
}

func testAliasRevisions(t *testing.T, s *Store) {
	ctx := context.Background()
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('a')}, 1, true)
	mustPublish(t, s, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('b')}, 2, true)
	live := &specs.Alias{Name: "live", Version: "1"}
	if _, err := s.WriteAlias(ctx, "fn", live, AliasCondition{Update: true}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("updating an absent alias: %v", err)
	}
	first, err := s.WriteAlias(ctx, "fn", live, AliasCondition{Create: true})
	if err != nil || first.RevisionID == "" || !reflect.DeepEqual(first.Alias, live) {
		t.Fatalf("create: %+v %v", first, err)
	}
	if _, err := s.WriteAlias(ctx, "fn", live, AliasCondition{Create: true}); !errors.Is(err, ErrExists) {
		t.Fatalf("creating twice: %v", err)
	}
	read, err := s.AliasEntry(ctx, "fn", "live")
	if err != nil || read.RevisionID != first.RevisionID {
		t.Fatalf("read back %+v %v, want revision %s", read, err, first.RevisionID)
	}
	canary := &specs.Alias{Name: "live", Version: "1", Routing: map[string]float64{"2": 0.25}}
	second, err := s.WriteAlias(ctx, "fn", canary, AliasCondition{Update: true, RevisionID: first.RevisionID})
	if err != nil || second.RevisionID == first.RevisionID {
		t.Fatalf("update at the current revision: %+v %v", second, err)
	}
	if _, err := s.WriteAlias(ctx, "fn", live, AliasCondition{Update: true, RevisionID: first.RevisionID}); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("update at a stale revision: %v", err)
	}
	// An unconditional write (the CLI's SetAlias) changes the revision too.
	if err := s.SetAlias(ctx, "fn", live); err != nil {
		t.Fatal(err)
	}
	all, err := s.AliasEntries(ctx, "fn")
	if err != nil || len(all) != 1 || all[0].RevisionID == second.RevisionID || all[0].Routing != nil {
		t.Fatalf("aliases %+v %v", all, err)
	}
}

func testLayerDeletes(t *testing.T, s *Store) {
	ctx := context.Background()
	snap := LayerSnapshot{CodeSHA256: sha('1'), Size: 10, CompatibleRuntimes: []string{"python3.12"},
		CompatibleArchitectures: []string{"x86_64"}, LicenseInfo: "MIT"}
	l1, _, err := s.PublishLayer(ctx, "deps", snap)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.LayerVersion(ctx, "deps", 1)
	if err != nil || got.LicenseInfo != "MIT" || !reflect.DeepEqual(got.CompatibleArchitectures, []string{"x86_64"}) || got.Deleted {
		t.Fatalf("read back %+v %v", got, err)
	}
	// Another license is another version.
	snap.LicenseInfo = "Apache-2.0"
	if l2, created, err := s.PublishLayer(ctx, "deps", snap); err != nil || !created || l2.Number != 2 {
		t.Fatalf("new license: %+v %v %v", l2, created, err)
	}
	if _, _, err := s.PublishLayer(ctx, "aaa", LayerSnapshot{CodeSHA256: sha('2'), Size: 1}); err != nil {
		t.Fatal(err)
	}
	names, err := s.Layers(ctx)
	if err != nil || !reflect.DeepEqual(names, []string{"aaa", "deps"}) {
		t.Fatalf("layers %v %v", names, err)
	}
	if err := s.DeleteLayerVersion(ctx, "deps", l1.Number); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 9} {
		if err := s.DeleteLayerVersion(ctx, "deps", n); err != nil {
			t.Fatalf("deleting version %d again or absent: %v", n, err)
		}
	}
	vs, err := s.LayerVersions(ctx, "deps")
	if err != nil || len(vs) != 1 || vs[0].Number != 2 {
		t.Fatalf("versions after delete %+v %v", vs, err)
	}
	// A version that pinned deps:1 still resolves it; "deps" is the newest left.
	got, err = s.LayerVersion(ctx, "deps", 1)
	if err != nil || !got.Deleted {
		t.Fatalf("deleted version read back %+v %v", got, err)
	}
	res, err := s.ResolveLayers(ctx, "python3.12", []string{"deps:1", "deps"})
	if err != nil || res[0].Number != 1 || res[1].Number != 2 {
		t.Fatalf("resolved %+v %v", res, err)
	}
	// Republishing the deleted content is a new number.
	snap.LicenseInfo = "MIT"
	if l3, created, err := s.PublishLayer(ctx, "deps", snap); err != nil || !created || l3.Number != 3 {
		t.Fatalf("republish: %+v %v %v", l3, created, err)
	}
}
