package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/gateway/versions/versionstest"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
	"github.com/nimbus-fn/nimbus/specs"
)

// A cluster gateway puts a version's provisioned concurrency config into
// its job and reports what Nomad runs of it: the put re-registers
// nimbus-<fn>-1 with the provisioned group's floor (instances, rounded
// up), the status counts running allocations of that group in
// environments, a failed allocation or placement is the reason, and the delete drops
// the floor to 0. Doubles of exactly the Nomad endpoints used (jobs and
// allocations from submittest, variables from versionstest).
func TestClusterProvisionedConcurrency(t *testing.T) {
	jobsDouble := submittest.New(t)
	vars := versionstest.New(t)
	target, _ := url.Parse(jobsDouble.URL)
	mux := http.NewServeMux()
	mux.Handle("/v1/var/", vars)
	mux.Handle("/v1/vars", vars)
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	nomad := httptest.NewServer(mux)
	defer nomad.Close()
	nc, err := api.NewClient(&api.Config{Address: nomad.URL})
	if err != nil {
		t.Fatal(err)
	}
	backend := versions.NewNomad(nc.Variables(), "")
	cfg := &config.Config{Nomad: &config.NomadConfig{Address: nomad.URL}, InvokeKeyBytes: []byte("0123456789abcdef0123"),
		Region: "us-east-1", AccountID: "000000000000", Artifacts: &artifacts.Config{PublicURL: "http://gw.example:8080/_nimbus/artifacts/"}}
	source := gatewaytest.NewSource()
	deps, run := clusterManagement(cfg, nc, backend, source, "gw:8080", hclog.NewNullLogger())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sum := strings.Repeat("a", 64)
	spec := &specs.Function{Name: "echo", Runtime: "provided.al2023", EnvironmentsPerInstance: 2,
		Code: &specs.Code{URL: "http://gw.example:8080/_nimbus/artifacts/" + sum + ".zip", Checksum: "sha256:" + sum}}
	if _, err := functions.NewStore(backend).Create(ctx, &functions.Function{Name: "echo", Spec: spec, CodeSHA256: sum, State: functions.StateActive}); err != nil {
		t.Fatal(err)
	}
	vstore := versions.New(backend, nil)
	if _, _, err := vstore.Publish(ctx, "echo", versions.Snapshot{Spec: spec, CodeSHA256: sum}); err != nil {
		t.Fatal(err)
	}
	run(ctx)

	group := func(name string) *api.TaskGroup {
		j := jobsDouble.Job("default", "nimbus-echo-1")
		if j == nil {
			return nil
		}
		for _, g := range j.TaskGroups {
			if *g.Name == name {
				return g
			}
		}
		return nil
	}
	floor := func() int {
		if g := group(jobs.GroupProvisioned); g != nil && g.Count != nil && g.Scaling != nil && g.Scaling.Min != nil && int64(*g.Count) == *g.Scaling.Min {
			return *g.Count
		}
		return -1
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return floor() == 0 }, "version 1's job registered without a floor (%d)", floor())

	// Put 3 environments at 2 per instance: a floor of 2 instances.
	if _, err := vstore.PutProvisioned(ctx, "echo", "1", 3); err != nil {
		t.Fatal(err)
	}
	deps.Applied()
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return floor() == 2 }, "the floor follows the config (%d)", floor())
	if g := group(jobs.GroupProvisioned); *g.Scaling.Max != 2 {
		t.Fatalf("provisioned scaling max %d, want 2", *g.Scaling.Max)
	}

	status := func() (int, error) { return deps.Provisioned(ctx, "echo", "1") }
	if n, err := status(); n != 0 || err != nil {
		t.Fatalf("nothing runs yet: %d %v", n, err)
	}
	alloc := func(id, group, client string, task string) *api.AllocationListStub {
		return &api.AllocationListStub{ID: id, TaskGroup: group, DesiredStatus: "run", ClientStatus: client,
			TaskStates: map[string]*api.TaskState{"fn": {State: task, Events: []*api.TaskEvent{{Type: "Started", Time: 1}}}}}
	}
	jobsDouble.SetAllocations("default", "nimbus-echo-1", []*api.AllocationListStub{
		alloc("a1", jobs.GroupProvisioned, "running", "running"),
		alloc("a2", jobs.GroupProvisioned, "pending", "pending"),
		alloc("a3", jobs.GroupOnDemand, "running", "running"),
	})
	if n, err := status(); n != 0 || err != nil {
		t.Fatalf("a running instance that has not passed its health check: %d %v, want 0 environments", n, err)
	}
	healthy := func(ids ...string) {
		var list []discovery.Instance
		for _, id := range ids {
			list = append(list, discovery.Instance{ID: "_nomad-task-" + id, Address: "127.0.0.1:1", Function: "echo", Version: "1", Group: discovery.GroupProvisioned})
		}
		list = append(list, discovery.Instance{ID: "_nomad-task-a3", Address: "127.0.0.1:1", Function: "echo", Version: "1", Group: discovery.GroupOnDemand})
		source.Set("echo", "1", list...)
	}
	healthy("a1")
	if n, err := status(); n != 2 || err != nil {
		t.Fatalf("one of two instances runs: %d %v, want 2 environments", n, err)
	}
	jobsDouble.SetAllocations("default", "nimbus-echo-1", []*api.AllocationListStub{
		alloc("a1", jobs.GroupProvisioned, "running", "running"),
		alloc("a2", jobs.GroupProvisioned, "running", "running"),
	})
	if n, err := status(); n != 2 || err != nil {
		t.Fatalf("both instances run, one healthy: %d %v, want 2 environments", n, err)
	}
	healthy("a1", "a2")
	if n, err := status(); n != 4 || err != nil {
		t.Fatalf("both instances run: %d %v, want 4 environments", n, err)
	}
	failed := alloc("deadbeef-1", jobs.GroupProvisioned, "failed", "dead")
	failed.TaskStates["fn"].Events = append(failed.TaskStates["fn"].Events, &api.TaskEvent{Type: "Driver Failure", DisplayMessage: "bootstrap not found", Time: 2})
	replaced := alloc("cafe0000-2", jobs.GroupProvisioned, "failed", "dead")
	replaced.NextAllocation = "a2"
	jobsDouble.SetAllocations("default", "nimbus-echo-1", []*api.AllocationListStub{
		alloc("a1", jobs.GroupProvisioned, "running", "running"), failed, replaced,
	})
	if n, err := status(); n != 2 || err == nil || !strings.Contains(err.Error(), "bootstrap not found") || strings.Contains(err.Error(), "cafe0000") {
		t.Fatalf("a failed instance: %d %v", n, err)
	}

	// A placement the scheduler could not make fails the config while its
	// blocked evaluation waits; a later evaluation that placed it does not.
	jobsDouble.SetAllocations("default", "nimbus-echo-1", []*api.AllocationListStub{alloc("a1", jobs.GroupProvisioned, "running", "running")})
	noRoom := &api.Evaluation{ID: "e1", Status: "complete", CreateIndex: 10, BlockedEval: "e2",
		FailedTGAllocs: map[string]*api.AllocationMetric{jobs.GroupProvisioned: {NodesEvaluated: 1, DimensionExhausted: map[string]int{"memory": 1}}}}
	blocked := &api.Evaluation{ID: "e2", Status: "blocked", CreateIndex: 11}
	jobsDouble.SetEvaluations("default", "nimbus-echo-1", []*api.Evaluation{blocked, noRoom})
	if n, err := status(); n != 2 || err == nil || !strings.Contains(err.Error(), `placement failed: exhausted "memory" on 1 nodes`) {
		t.Fatalf("an unplaceable instance: %d %v", n, err)
	}
	jobsDouble.SetEvaluations("default", "nimbus-echo-1", []*api.Evaluation{{ID: "e2", Status: "complete", CreateIndex: 11}, noRoom})
	if n, err := status(); n != 2 || err != nil {
		t.Fatalf("placed after all: %d %v", n, err)
	}

	// Delete: the floor goes back to 0 and the running count follows.
	if err := vstore.DeleteProvisioned(ctx, "echo", "1"); err != nil {
		t.Fatal(err)
	}
	deps.Applied()
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return floor() == 0 }, "the floor after the delete (%d)", floor())
	if g := group(jobs.GroupProvisioned); *g.Scaling.Max != 0 {
		t.Fatalf("provisioned scaling max %d after the delete, want 0", *g.Scaling.Max)
	}
	if u := jobsDouble.Unexpected(); len(u) > 0 {
		t.Fatalf("unexpected Nomad calls: %+v", u)
	}
}
