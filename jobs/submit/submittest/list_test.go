package submittest

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// The job listing answers as Nomad's does to the gateway's catalog: meta
// only when asked, filtered by prefix, and with ?index= a blocking query
// that answers once a registration or deregistration passed the index, or
// after ?wait= with the same index.
func TestJobListingBlocks(t *testing.T) {
	s := New(t)
	jobs := s.Client(t).Jobs()
	withMeta := &api.JobListOptions{Fields: &api.JobListFields{Meta: true}}
	s.Put(&api.Job{ID: new("nimbus-a"), Meta: map[string]string{"k": "v"}, TaskGroups: []*api.TaskGroup{{Name: new("g"), Count: new(0)}}})
	s.Put(&api.Job{ID: new("other")})

	list, meta, err := jobs.ListOptions(withMeta, &api.QueryOptions{Prefix: "nimbus-"})
	if err != nil || len(list) != 1 || list[0].ID != "nimbus-a" || list[0].Meta["k"] != "v" || list[0].Status != "pending" {
		t.Fatalf("listing: %v %+v", err, list)
	}
	if plain, _, err := jobs.List(&api.QueryOptions{Prefix: "nimbus-"}); err != nil || len(plain) != 1 || plain[0].Meta != nil {
		t.Fatalf("listing without meta=true: %v %+v", err, plain)
	}

	// Nothing changes: the wait runs out and the index stays.
	_, same, err := jobs.ListOptions(withMeta, &api.QueryOptions{Prefix: "nimbus-", WaitIndex: meta.LastIndex, WaitTime: 50 * time.Millisecond})
	if err != nil || same.LastIndex != meta.LastIndex {
		t.Fatalf("an unchanged listing: %v, index %d, want %d", err, same.LastIndex, meta.LastIndex)
	}

	type answer struct {
		list []*api.JobListStub
		meta *api.QueryMeta
		err  error
	}
	blocked := make(chan answer, 1)
	go func() {
		l, m, err := jobs.ListOptions(withMeta, &api.QueryOptions{Prefix: "nimbus-", WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		blocked <- answer{l, m, err}
	}()
	select {
	case a := <-blocked:
		t.Fatalf("the blocking listing answered before any change: %+v", a)
	case <-time.After(100 * time.Millisecond):
	}
	if _, _, err := jobs.Deregister("nimbus-a", true, nil); err != nil {
		t.Fatal(err)
	}
	a := <-blocked
	if a.err != nil || len(a.list) != 0 || a.meta.LastIndex <= meta.LastIndex {
		t.Fatalf("after the purge: %v %+v index %d (was %d)", a.err, a.list, a.meta.LastIndex, meta.LastIndex)
	}
}
