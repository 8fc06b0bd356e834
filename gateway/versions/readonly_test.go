package versions

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/nimbus-fn/nimbus/specs"
)

// A store written through one backend reads the same through a ReadOnly
// view of the same variables (what a cluster gateway gets from its
// catalog's variable watch).
func TestReadOnlyViewOfVariables(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, _ := NewLocal(dir)
	w := New(l, nil)
	mustPublish(t, w, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('a')}, 1, true)
	mustPublish(t, w, "fn", Snapshot{Spec: spec(256), CodeSHA256: sha('b')}, 2, true)
	live := &specs.Alias{Name: "live", Version: "1", Routing: map[string]float64{"2": 0.5}}
	if err := w.SetAlias(ctx, "fn", live); err != nil {
		t.Fatal(err)
	}
	// Copy every variable as the Nomad catalog would hold it.
	var mu sync.Mutex
	vars := map[string]map[string]string{}
	paths, _ := l.List(ctx, Prefix)
	for _, p := range paths {
		e, _ := l.Get(ctx, p)
		vars[p] = e.Items
	}
	r := New(NewReadOnly(func() map[string]map[string]string { mu.Lock(); defer mu.Unlock(); return vars }), nil)
	a, err := r.Alias(ctx, "fn", "live")
	if err != nil || !reflect.DeepEqual(a, live) {
		t.Fatalf("alias through the view: %+v %v", a, err)
	}
	vs, err := r.Versions(ctx, "fn")
	if err != nil || len(vs) != 2 || vs[1].Spec.MemoryMB != 256 {
		t.Fatalf("versions through the view: %v %v", vs, err)
	}
	if err := r.SetAlias(ctx, "fn", &specs.Alias{Name: "x", Version: "1"}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write through the view: %v", err)
	}
	if _, _, err := r.Publish(ctx, "fn", Snapshot{Spec: spec(64), CodeSHA256: sha('c')}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("publish through the view: %v", err)
	}
}
