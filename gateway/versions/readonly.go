package versions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrReadOnly: a write to a ReadOnly backend.
var ErrReadOnly = errors.New("read-only version store")

// ReadOnly is a Backend over a snapshot of variables someone else keeps
// current — the cluster catalog's blocking-query view of the Nomad
// Variables under nimbus/ (gateway/nomad Catalog.Variables) — so a
// gateway's Catalog overlay reads aliases and versions without any request
// of its own. Writes fail with ErrReadOnly; the CLI writes through Nomad.
type ReadOnly struct {
	read func() map[string]map[string]string
}

var _ Backend = (*ReadOnly)(nil)

// NewReadOnly returns a backend that calls read for every lookup; read
// returns path → items and must not be modified by the caller afterwards.
func NewReadOnly(read func() map[string]map[string]string) *ReadOnly {
	return &ReadOnly{read: read}
}

// Get implements Backend. The index is always 1: nothing CASes here.
func (r *ReadOnly) Get(_ context.Context, path string) (Entry, error) {
	items, ok := r.read()[path]
	if !ok {
		return Entry{}, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	return Entry{Items: items, Index: 1}, nil
}

// Put implements Backend.
func (r *ReadOnly) Put(context.Context, string, map[string]string, uint64) (uint64, error) {
	return 0, ErrReadOnly
}

// Delete implements Backend.
func (r *ReadOnly) Delete(context.Context, string, uint64) error { return ErrReadOnly }

// List implements Backend.
func (r *ReadOnly) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	for p := range r.read() {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}
