package versions

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/nomad/api"
)

// VariablesAPI is the part of Nomad's variables API the Nomad backend
// uses (*api.Variables).
type VariablesAPI interface {
	Read(path string, q *api.QueryOptions) (*api.Variable, *api.QueryMeta, error)
	CheckedCreate(v *api.Variable, q *api.WriteOptions) (*api.Variable, *api.WriteMeta, error)
	CheckedUpdate(v *api.Variable, q *api.WriteOptions) (*api.Variable, *api.WriteMeta, error)
	CheckedDelete(path string, checkIndex uint64, q *api.WriteOptions) (*api.WriteMeta, error)
	PrefixList(prefix string, q *api.QueryOptions) ([]*api.VariableMetadata, *api.QueryMeta, error)
}

var _ VariablesAPI = (*api.Variables)(nil)

// Nomad is the cluster Backend: Nomad Variables, with Nomad's own
// check-and-set (?cas=<modify index>).
type Nomad struct {
	vars      VariablesAPI
	namespace string
}

var _ Backend = (*Nomad)(nil)

// NewNomad returns the backend for one namespace ("" = the client's).
func NewNomad(vars VariablesAPI, namespace string) *Nomad {
	return &Nomad{vars: vars, namespace: namespace}
}

func (n *Nomad) q(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{Namespace: n.namespace}).WithContext(ctx)
}

func (n *Nomad) w(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{Namespace: n.namespace}).WithContext(ctx)
}

// Get implements Backend.
func (n *Nomad) Get(ctx context.Context, path string) (Entry, error) {
	v, _, err := n.vars.Read(path, n.q(ctx))
	if errors.Is(err, api.ErrVariablePathNotFound) {
		return Entry{}, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("reading variable %s: %w", path, err)
	}
	return Entry{Items: map[string]string(v.Items), Index: v.ModifyIndex}, nil
}

func conflict(err error) bool {
	var c api.ErrCASConflict
	return errors.As(err, &c)
}

// Put implements Backend.
func (n *Nomad) Put(ctx context.Context, path string, items map[string]string, cas uint64) (uint64, error) {
	v := &api.Variable{Namespace: n.namespace, Path: path, Items: api.VariableItems(items), ModifyIndex: cas}
	var out *api.Variable
	var err error
	if cas == 0 {
		out, _, err = n.vars.CheckedCreate(v, n.w(ctx))
	} else {
		out, _, err = n.vars.CheckedUpdate(v, n.w(ctx))
	}
	if conflict(err) {
		return 0, fmt.Errorf("variable %s: %w", path, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("writing variable %s: %w", path, err)
	}
	return out.ModifyIndex, nil
}

// Delete implements Backend.
func (n *Nomad) Delete(ctx context.Context, path string, cas uint64) error {
	_, err := n.vars.CheckedDelete(path, cas, n.w(ctx))
	if conflict(err) {
		// Nomad answers a conflict for a missing variable too; tell them apart.
		if _, gerr := n.Get(ctx, path); errors.Is(gerr, ErrNotFound) {
			return gerr
		}
		return fmt.Errorf("variable %s: %w", path, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("deleting variable %s: %w", path, err)
	}
	return nil
}

// List implements Backend.
func (n *Nomad) List(ctx context.Context, prefix string) ([]string, error) {
	list, _, err := n.vars.PrefixList(prefix, n.q(ctx))
	if err != nil {
		return nil, fmt.Errorf("listing variables under %s: %w", prefix, err)
	}
	out := make([]string, 0, len(list))
	for _, m := range list {
		out = append(out, m.Path)
	}
	sort.Strings(out)
	return out, nil
}
