package esmapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/gateway/versions"
)

// StorePrefix is where API-created mappings live in the backend: one entry
// per mapping at StorePrefix+<uuid>.
const StorePrefix = "nimbus/mappings/"

// Items of a stored mapping.
const (
	itemMapping      = "mapping"       // JSON of sources.Mapping, Origin "api"
	itemState        = "state"         // the state the API last gave it: Creating or Updating
	itemLastModified = "last_modified" // RFC 3339 with nanoseconds, UTC
)

// Store errors.
var (
	// ErrNotFound: no stored mapping has that UUID.
	ErrNotFound = errors.New("event-source mapping not found")
	// ErrExists: a stored mapping already has that UUID.
	ErrExists = errors.New("event-source mapping already exists")
	// ErrContention: an update kept losing check-and-set races.
	ErrContention = errors.New("event-source mapping changed concurrently too often")
)

// maxCASAttempts bounds Update's and Delete's read-modify-write retries.
const maxCASAttempts = 16

// Store keeps API-created event-source mappings in a versions.Backend
// (Nomad Variables in a cluster, a directory in dev mode). Every write is a
// check-and-set, so gateways sharing the backend never lose each other's
// changes. It is safe for concurrent use.
type Store struct {
	b   versions.Backend
	now func() time.Time
}

var _ sources.Lister = (*Store)(nil)

// NewStore returns a store on b.
func NewStore(b versions.Backend) *Store {
	return &Store{b: b, now: time.Now}
}

func storePath(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/\\.") {
		return "", fmt.Errorf("mapping %q: %w", id, ErrNotFound)
	}
	return StorePrefix + id, nil
}

// stored is one decoded entry.
type stored struct {
	m     sources.Mapping
	state string
	index uint64
}

func (s *Store) load(ctx context.Context, id string) (stored, error) {
	p, err := storePath(id)
	if err != nil {
		return stored{}, err
	}
	e, err := s.b.Get(ctx, p)
	if errors.Is(err, versions.ErrNotFound) {
		return stored{}, fmt.Errorf("mapping %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return stored{}, fmt.Errorf("reading mapping %s: %w", id, err)
	}
	var m sources.Mapping
	if err := json.Unmarshal([]byte(e.Items[itemMapping]), &m); err != nil {
		return stored{}, fmt.Errorf("decoding mapping %s: %w", id, err)
	}
	if m.Spec == nil {
		return stored{}, fmt.Errorf("decoding mapping %s: no settings", id)
	}
	return stored{m: m, state: e.Items[itemState], index: e.Index}, nil
}

func (s *Store) items(m sources.Mapping, state string) (map[string]string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding mapping %s: %w", m.UUID, err)
	}
	return map[string]string{
		itemMapping:      string(b),
		itemState:        state,
		itemLastModified: m.LastModified.UTC().Format(time.RFC3339Nano),
	}, nil
}

func (s *Store) stamp(m *sources.Mapping) {
	m.Origin = sources.OriginAPI
	m.LastModified = s.now().UTC().Truncate(time.Millisecond)
}

// Create stores a new mapping (Origin "api", LastModified now, state
// Creating). m.UUID must be set and unused (ErrExists otherwise).
func (s *Store) Create(ctx context.Context, m sources.Mapping) error {
	_, err := s.create(ctx, m)
	return err
}

func (s *Store) create(ctx context.Context, m sources.Mapping) (sources.Mapping, error) {
	if m.Spec == nil {
		return m, fmt.Errorf("mapping %s has no settings", m.UUID)
	}
	p, err := storePath(m.UUID)
	if err != nil {
		return m, fmt.Errorf("mapping UUID %q is not a valid path segment", m.UUID)
	}
	s.stamp(&m)
	items, err := s.items(m, sources.StateCreating)
	if err != nil {
		return m, err
	}
	if _, err := s.b.Put(ctx, p, items, 0); err != nil {
		if errors.Is(err, versions.ErrConflict) {
			return m, fmt.Errorf("mapping %s: %w", m.UUID, ErrExists)
		}
		return m, fmt.Errorf("storing mapping %s: %w", m.UUID, err)
	}
	return m, nil
}

// Get returns the stored mapping id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (sources.Mapping, error) {
	st, err := s.load(ctx, id)
	return st.m, err
}

// List returns every stored mapping, sorted by UUID.
func (s *Store) List(ctx context.Context) ([]sources.Mapping, error) {
	sts, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]sources.Mapping, len(sts))
	for i, st := range sts {
		out[i] = st.m
	}
	return out, nil
}

func (s *Store) list(ctx context.Context) ([]stored, error) {
	paths, err := s.b.List(ctx, StorePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing mappings: %w", err)
	}
	out := make([]stored, 0, len(paths))
	for _, p := range paths {
		id := strings.TrimPrefix(p, StorePrefix)
		if strings.Contains(id, "/") {
			continue // not ours
		}
		st, err := s.load(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Mappings implements sources.Lister: the stored (API-created) mappings.
func (s *Store) Mappings(ctx context.Context) ([]sources.Mapping, error) {
	return s.List(ctx)
}

// Update applies change to mapping id and stores the result with a
// check-and-set, re-reading and re-applying change when another writer got
// there first. change sees a copy (its Spec a copy too) and may return an
// error to abort, which Update returns as is. UUID and Origin cannot
// change; LastModified becomes now and the state Updating.
func (s *Store) Update(ctx context.Context, id string, change func(*sources.Mapping) error) (sources.Mapping, error) {
	p, err := storePath(id)
	if err != nil {
		return sources.Mapping{}, err
	}
	for range maxCASAttempts {
		st, err := s.load(ctx, id)
		if err != nil {
			return sources.Mapping{}, err
		}
		m := st.m
		spec := *m.Spec
		m.Spec = &spec
		if err := change(&m); err != nil {
			return sources.Mapping{}, err
		}
		m.UUID = id
		s.stamp(&m)
		items, err := s.items(m, sources.StateUpdating)
		if err != nil {
			return sources.Mapping{}, err
		}
		_, err = s.b.Put(ctx, p, items, st.index)
		if errors.Is(err, versions.ErrConflict) {
			continue
		}
		if err != nil {
			return sources.Mapping{}, fmt.Errorf("storing mapping %s: %w", id, err)
		}
		return m, nil
	}
	return sources.Mapping{}, fmt.Errorf("updating mapping %s: %w", id, ErrContention)
}

// Delete removes mapping id and returns what it held (ErrNotFound when
// there is none).
func (s *Store) Delete(ctx context.Context, id string) (sources.Mapping, error) {
	p, err := storePath(id)
	if err != nil {
		return sources.Mapping{}, err
	}
	for range maxCASAttempts {
		st, err := s.load(ctx, id)
		if err != nil {
			return sources.Mapping{}, err
		}
		err = s.b.Delete(ctx, p, st.index)
		switch {
		case errors.Is(err, versions.ErrConflict):
			continue
		case errors.Is(err, versions.ErrNotFound):
			return sources.Mapping{}, fmt.Errorf("mapping %s: %w", id, ErrNotFound)
		case err != nil:
			return sources.Mapping{}, fmt.Errorf("deleting mapping %s: %w", id, err)
		}
		return st.m, nil
	}
	return sources.Mapping{}, fmt.Errorf("deleting mapping %s: %w", id, ErrContention)
}

// Lister lists every mapping the engine should run: the ones the
// functions' specs declare and the ones created through the API.
type Lister struct {
	// Specs lists the spec-declared mappings, typically
	// sources.FromFunctions over the catalog's functions. Nil: none.
	Specs func(ctx context.Context) ([]sources.Mapping, error)
	// Store holds the API-created mappings. Nil: none.
	Store *Store
}

var _ sources.Lister = (*Lister)(nil)

// Mappings implements sources.Lister.
func (l *Lister) Mappings(ctx context.Context) ([]sources.Mapping, error) {
	var out []sources.Mapping
	if l.Specs != nil {
		ms, err := l.Specs(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing spec mappings: %w", err)
		}
		out = append(out, ms...)
	}
	if l.Store != nil {
		ms, err := l.Store.Mappings(ctx)
		if err != nil {
			// The spec mappings still run; the engine stops nothing on a
			// partial list (see sources.Lister).
			return out, fmt.Errorf("listing API mappings: %w", err)
		}
		out = append(out, ms...)
	}
	return out, nil
}
