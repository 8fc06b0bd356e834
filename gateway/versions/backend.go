package versions

import (
	"context"
	"errors"
)

// Backend errors.
var (
	// ErrNotFound: no entry at that path.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the entry's modify index is not the one given.
	ErrConflict = errors.New("check-and-set conflict")
)

// Entry is one stored item set and its modify index.
type Entry struct {
	Items map[string]string
	Index uint64
}

// Backend is the storage a Store runs on. Paths are slash-separated.
type Backend interface {
	// Get returns the entry at path or ErrNotFound.
	Get(ctx context.Context, path string) (Entry, error)
	// Put writes items at path if the entry's modify index is cas (0: only
	// if absent) and returns the new index; otherwise ErrConflict.
	Put(ctx context.Context, path string, items map[string]string, cas uint64) (uint64, error)
	// Delete removes the entry at path if its index is cas; ErrConflict
	// otherwise, ErrNotFound if absent.
	Delete(ctx context.Context, path string, cas uint64) error
	// List returns the paths under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}
