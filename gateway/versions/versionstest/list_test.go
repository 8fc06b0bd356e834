package versionstest

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// A listing with an index blocks as Nomad's does: it answers once a write
// or a delete passed the index, or after the wait with the same index.
func TestListingBlocks(t *testing.T) {
	_, v := variables(t)
	created, _, err := v.CheckedCreate(&api.Variable{Path: "nimbus/x", Items: api.VariableItems{"a": "1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	list, meta, err := v.PrefixList("nimbus/", nil)
	if err != nil || len(list) != 1 {
		t.Fatalf("listing: %v %+v", err, list)
	}
	if _, same, err := v.PrefixList("nimbus/", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 50 * time.Millisecond}); err != nil || same.LastIndex != meta.LastIndex {
		t.Fatalf("an unchanged listing: %v %+v", err, same)
	}
	type answer struct {
		list []*api.VariableMetadata
		meta *api.QueryMeta
		err  error
	}
	blocked := make(chan answer, 1)
	go func() {
		l, m, err := v.PrefixList("nimbus/", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		blocked <- answer{l, m, err}
	}()
	select {
	case a := <-blocked:
		t.Fatalf("the blocking listing answered before any change: %+v", a)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := v.CheckedDelete(created.Path, created.ModifyIndex, nil); err != nil {
		t.Fatal(err)
	}
	a := <-blocked
	if a.err != nil || len(a.list) != 0 || a.meta.LastIndex <= meta.LastIndex {
		t.Fatalf("after the delete: %v %+v index %d (was %d)", a.err, a.list, a.meta.LastIndex, meta.LastIndex)
	}
}
