package apply

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
	"github.com/nimbus-fn/nimbus/specs"
)

// A provisioned concurrency config's floor reaches only the provisioned
// group: the job's meta still describes the published spec (so Nomad
// replaces no running instance), an unchanged floor registers nothing, a
// changed one registers the job again. Against a double of exactly the
// jobs and variables endpoints used.
func TestApplyFloor(t *testing.T) {
	testApplyFloor(t, submittest.New(t).Client(t))
}

// The same against a real agent (NOMAD_BINARY): what Nomad reads back of
// the scaling policy compares equal, so a pass over an unchanged floor
// does not register the job again.
func TestApplyFloorAgainstAgent(t *testing.T) {
	a := nomadtest.Start(t, nomadtest.Options{SkipMessage: "NOMAD_BINARY is not set: skipping ApplyFloor against a real Nomad agent"})
	nc, err := api.NewClient(&api.Config{Address: a.Addr})
	if err != nil {
		t.Fatal(err)
	}
	testApplyFloor(t, nc)
}

func testApplyFloor(t *testing.T, nc *api.Client) {
	ctx := context.Background()
	a := &Applier{Submitter: submit.New(nc.Jobs(), nc.Variables(), nil), Key: []byte("0123456789abcdef0123")}
	sum := strings.Repeat("a", 64)
	fn := &specs.Function{Name: "floor", Runtime: "provided.al2023", EnvironmentsPerInstance: 2,
		Code: &specs.Code{URL: "http://gw.example/_nimbus/artifacts/" + sum + ".zip", Checksum: "sha256:" + sum}}
	id := jobs.JobID("floor", "1")
	apply := func(floor *specs.ProvisionedConcurrency) *api.Job {
		t.Helper()
		if err := a.ApplyFloor(ctx, fn, floor, "1", "version-1"); err != nil {
			t.Fatal(err)
		}
		j, _, err := nc.Jobs().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	provisioned := func(j *api.Job) (count int, lo, hi int64) {
		g := group(j, jobs.GroupProvisioned)
		return *g.Count, *g.Scaling.Min, *g.Scaling.Max
	}
	j0 := apply(nil)
	if c, lo, hi := provisioned(j0); c != 0 || lo != 0 || hi != 0 {
		t.Fatalf("no floor: count %d in [%d,%d]", c, lo, hi)
	}
	if j := apply(nil); *j.JobModifyIndex != *j0.JobModifyIndex {
		t.Fatal("an unchanged job was registered again")
	}
	floor := &specs.ProvisionedConcurrency{Min: 3, Max: 3, TargetUtilization: 0.7}
	j1 := apply(floor)
	if *j1.JobModifyIndex == *j0.JobModifyIndex {
		t.Fatal("a raised floor did not register the job again")
	}
	if c, lo, hi := provisioned(j1); c != 2 || lo != 2 || hi != 2 {
		t.Fatalf("3 environments at 2 per instance: count %d in [%d,%d], want 2 in [2,2]", c, lo, hi)
	}
	if j1.Meta[jobs.MetaSpec] != j0.Meta[jobs.MetaSpec] || j1.Meta[MetaRevision] != j0.Meta[MetaRevision] {
		t.Fatalf("the floor changed the job's meta:\n%v\n%v", j0.Meta, j1.Meta)
	}
	if j := apply(floor); *j.JobModifyIndex != *j1.JobModifyIndex {
		t.Fatal("an unchanged floor registered the job again")
	}
	j2 := apply(nil)
	if c, lo, hi := provisioned(j2); c != 0 || lo != 0 || hi != 0 {
		t.Fatalf("floor removed: count %d in [%d,%d]", c, lo, hi)
	}
}
