package esmapi_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/nimbus-fn/nimbus/gateway/esmapi"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

func natsMapping(t *testing.T, id, fn, stream string) sources.Mapping {
	t.Helper()
	es := &specs.EventSource{Type: specs.SourceNATS, Enabled: true, Stream: stream}
	if err := specs.CheckEventSource(fn, es); err != nil {
		t.Fatal(err)
	}
	return sources.Mapping{UUID: id, Function: fn, Spec: es}
}

// TestStoreCheckAndSet: two stores on one directory (two gateways) update
// one mapping concurrently; every change survives because each write is a
// check-and-set retried on conflict.
func TestStoreCheckAndSet(t *testing.T) {
	dir := t.TempDir()
	var stores []*esmapi.Store
	for range 2 {
		b, err := versions.NewLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, esmapi.NewStore(b))
	}
	ctx := context.Background()
	const id = "0f0e0d0c-0000-4000-8000-000000000001"
	if err := stores[0].Create(ctx, natsMapping(t, id, "orders", "ORDERS")); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].Create(ctx, natsMapping(t, id, "orders", "OTHER")); !errors.Is(err, esmapi.ErrExists) {
		t.Fatalf("second create with the same UUID: %v, want ErrExists", err)
	}
	const writers = 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			_, err := stores[i%2].Update(ctx, id, func(m *sources.Mapping) error {
				m.Spec.BatchSize++
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("update: %v", err)
		}
	}
	m, err := stores[1].Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.BatchSize != 10+writers || m.Spec.Stream != "ORDERS" || m.Origin != sources.OriginAPI || m.LastModified.IsZero() {
		t.Errorf("after %d concurrent increments: batch size %d stream %q origin %q modified %v",
			writers, m.Spec.BatchSize, m.Spec.Stream, m.Origin, m.LastModified)
	}

	// A change that fails leaves the entry alone and comes back as is.
	refuse := errors.New("refused")
	if _, err := stores[0].Update(ctx, id, func(m *sources.Mapping) error { m.Spec.BatchSize = 1; return refuse }); !errors.Is(err, refuse) {
		t.Errorf("refused update: %v", err)
	}
	if m, _ := stores[0].Get(ctx, id); m.Spec.BatchSize != 10+writers {
		t.Errorf("refused update changed batch size to %d", m.Spec.BatchSize)
	}

	if _, err := stores[0].Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, call := range []func() error{
		func() error { _, err := stores[1].Get(ctx, id); return err },
		func() error { _, err := stores[1].Delete(ctx, id); return err },
		func() error {
			_, err := stores[1].Update(ctx, id, func(*sources.Mapping) error { return nil })
			return err
		},
		func() error { _, err := stores[1].Get(ctx, "../escape"); return err },
	} {
		if err := call(); !errors.Is(err, esmapi.ErrNotFound) {
			t.Errorf("after delete: %v, want ErrNotFound", err)
		}
	}
}

// TestLister merges spec-declared and stored mappings, and reports a
// failing spec listing instead of hiding it.
func TestLister(t *testing.T) {
	b, err := versions.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := esmapi.NewStore(b)
	ctx := context.Background()
	ids := []string{"00000000-0000-4000-8000-00000000000b", "00000000-0000-4000-8000-00000000000a"}
	for i, id := range ids {
		if err := st.Create(ctx, natsMapping(t, id, "orders", []string{"B", "A"}[i])); err != nil {
			t.Fatal(err)
		}
	}
	spec := natsMapping(t, sources.SpecUUID("declared", "feed"), "declared", "FEED")
	spec.Origin, spec.Name = sources.OriginSpec, "feed"
	l := &esmapi.Lister{Store: st, Specs: func(context.Context) ([]sources.Mapping, error) { return []sources.Mapping{spec}, nil }}
	ms, err := l.Mappings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Origin+":"+m.Spec.Stream+":"+m.UUID)
	}
	want := []string{"spec:FEED:" + spec.UUID, "api:A:" + ids[1], "api:B:" + ids[0]}
	if len(got) != len(want) {
		t.Fatalf("Mappings = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Mappings[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	broken := errors.New("catalog down")
	l.Specs = func(context.Context) ([]sources.Mapping, error) { return nil, broken }
	if _, err := l.Mappings(ctx); !errors.Is(err, broken) {
		t.Errorf("failing spec listing: %v", err)
	}
}
