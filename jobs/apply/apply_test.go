package apply_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/apply"
	"github.com/nimbus-fn/nimbus/jobs/submit"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
	"github.com/nimbus-fn/nimbus/specs"
)

func spec(t *testing.T, memory int) *specs.Function {
	t.Helper()
	fn, err := specs.Decode([]byte(`{"name":"fn","runtime":"provided.al2023","memory_mb":` + strconv.Itoa(memory) +
		`,"code":{"url":"http://gw/nimbus/v1/artifacts/` + strings.Repeat("a", 64) + `.zip","checksum":"sha256:` + strings.Repeat("a", 64) + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return fn
}

// racingJobs registers a competing version of the job right after the
// applier reads it, once: the applier's registration then carries a stale
// check-index.
type racingJobs struct {
	submit.Jobs
	once  sync.Once
	other func()
}

func (r *racingJobs) Info(id string, q *api.QueryOptions) (*api.Job, *api.QueryMeta, error) {
	j, m, err := r.Jobs.Info(id, q)
	r.once.Do(r.other)
	return j, m, err
}

func registrations(s *submittest.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == "PUT" && r.Path == "/v1/jobs" || r.Method == "POST" && r.Path == "/v1/jobs" {
			n++
		}
	}
	return n
}

func newApplier(t *testing.T, jobsAPI submit.Jobs, c *api.Client) *apply.Applier {
	return &apply.Applier{
		Submitter: submit.New(jobsAPI, c.Variables(), nil),
		Options:   jobs.Options{AWSRegion: "us-east-1", AccountID: "123456789012"},
		Key:       []byte("cluster-key"),
	}
}

func TestApplyRegistersOnceAndWritesTheSecret(t *testing.T) {
	nomad := submittest.New(t)
	c := nomad.Client(t)
	a := newApplier(t, c.Jobs(), c)
	ctx := context.Background()
	if err := a.Apply(ctx, spec(t, 128), jobs.LatestVersion, "rev-1"); err != nil {
		t.Fatal(err)
	}
	job := nomad.Job("default", "nimbus-fn")
	if job == nil || job.Meta[apply.MetaRevision] != "rev-1" {
		t.Fatalf("registered job %v", job)
	}
	if v := nomad.Variable("default", jobs.VariablePath("nimbus-fn")); v == nil || v.Items[jobs.VariableInvokeSecret] == "" {
		t.Fatalf("the job's invoke secret variable is missing: %v", v)
	}
	before := registrations(nomad)
	// The same revision again (another gateway, a controller pass): no
	// registration.
	if err := a.Apply(ctx, spec(t, 128), jobs.LatestVersion, "rev-1"); err != nil {
		t.Fatal(err)
	}
	if registrations(nomad) != before {
		t.Fatal("applying a registered revision registered the job again")
	}
	if err := a.Apply(ctx, spec(t, 256), jobs.LatestVersion, "rev-2"); err != nil {
		t.Fatal(err)
	}
	if got := nomad.Job("default", "nimbus-fn").Meta[apply.MetaRevision]; got != "rev-2" {
		t.Fatalf("revision after the update %q", got)
	}
}

// TestApplyRetriesAStaleCheckIndex: another gateway registers between this
// one's read and write; Nomad refuses the stale index and the applier
// re-reads, then registers its own revision over the newer job.
func TestApplyRetriesAStaleCheckIndex(t *testing.T) {
	nomad := submittest.New(t)
	c := nomad.Client(t)
	ctx := context.Background()
	other := newApplier(t, c.Jobs(), c)
	if err := other.Apply(ctx, spec(t, 128), jobs.LatestVersion, "rev-1"); err != nil {
		t.Fatal(err)
	}
	racing := &racingJobs{Jobs: c.Jobs(), other: func() {
		if err := other.Apply(ctx, spec(t, 512), jobs.LatestVersion, "rev-other"); err != nil {
			t.Errorf("the competing registration: %v", err)
		}
	}}
	a := newApplier(t, racing, c)
	before := registrations(nomad)
	if err := a.Apply(ctx, spec(t, 256), jobs.LatestVersion, "rev-2"); err != nil {
		t.Fatalf("apply after losing a check-and-set: %v", err)
	}
	// The competitor's registration, this applier's refused one, and its
	// retry.
	if got := registrations(nomad) - before; got != 3 {
		t.Fatalf("%d registrations, want 3 (competitor, refused, retried)", got)
	}
	if got := nomad.Job("default", "nimbus-fn").Meta[apply.MetaRevision]; got != "rev-2" {
		t.Fatalf("revision %q after the retry", got)
	}
}

// TestApplyStopsWhenAnotherGatewayRegisteredTheRevision: two gateways
// apply the same revision; the one that loses the race finds it there and
// registers nothing.
func TestApplyStopsWhenAnotherGatewayRegisteredTheRevision(t *testing.T) {
	nomad := submittest.New(t)
	c := nomad.Client(t)
	ctx := context.Background()
	other := newApplier(t, c.Jobs(), c)
	racing := &racingJobs{Jobs: c.Jobs(), other: func() {
		if err := other.Apply(ctx, spec(t, 256), jobs.LatestVersion, "rev-1"); err != nil {
			t.Errorf("the competing registration: %v", err)
		}
	}}
	a := newApplier(t, racing, c)
	if err := a.Apply(ctx, spec(t, 256), jobs.LatestVersion, "rev-1"); err != nil {
		t.Fatal(err)
	}
	// The competitor's create, this applier's refused create (index 0, the
	// job exists now), and nothing more.
	if got := registrations(nomad); got != 2 {
		t.Fatalf("%d registrations, want 2", got)
	}
}

func TestRemoveDeregistersAndPurges(t *testing.T) {
	nomad := submittest.New(t)
	c := nomad.Client(t)
	a := newApplier(t, c.Jobs(), c)
	ctx := context.Background()
	if err := a.Apply(ctx, spec(t, 128), jobs.LatestVersion, "rev-1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, spec(t, 128), "1", "version-1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(ctx, "fn", []string{jobs.LatestVersion, "1", "2"}); err != nil {
		t.Fatalf("remove (version 2 has no job): %v", err)
	}
	for _, id := range []string{"nimbus-fn", "nimbus-fn-1"} {
		if nomad.Job("default", id) != nil {
			t.Errorf("job %s still registered", id)
		}
		if nomad.Variable("default", jobs.VariablePath(id)) != nil {
			t.Errorf("variable of %s still there", id)
		}
	}
}
