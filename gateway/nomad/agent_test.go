package nomad

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/specs"
)

// These tests run the adapters against a real Nomad agent (`nomad agent
// -dev`, which enables raw_exec) when NOMAD_BINARY is set; the httptest
// double covers the same calls otherwise.

// startNomadAgent runs a dev agent on loopback and returns a client once the
// agent has a leader and its client node is ready.
func startNomadAgent(t *testing.T) *api.Client {
	t.Helper()
	a := nomadtest.Start(t, nomadtest.Options{
		SkipMessage:  "NOMAD_BINARY is not set: the Nomad adapters are tested against the httptest double only (set it to a nomad binary to run them against a dev agent)",
		WaitForNode:  true,
		ReadyTimeout: 90 * time.Second,
	})
	return a.Client(t)
}

// agentJob is a function job shaped as the compiler shapes it (meta, the two
// groups, the invoke service with function/version/group tags), with a
// raw_exec task standing in for the nimbus driver. Without rolling, groups
// have no deployments (update max_parallel = 0), as the compiler's default.
func agentJob(t *testing.T, fn *specs.Function, version string, rolling bool) *api.Job {
	id, _ := DefaultJobID(fn.Name, version)
	job := &api.Job{
		ID: &id, Name: &id, Type: new("service"), Datacenters: []string{"dc1"},
		Meta: map[string]string{MetaFunction: fn.Name, MetaVersion: version, MetaSpec: specJSON(t, fn)},
	}
	update := &api.UpdateStrategy{MaxParallel: new(0)}
	if rolling {
		update = &api.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(time.Minute), HealthyDeadline: new(2 * time.Minute)}
	}
	for _, g := range []string{discovery.GroupProvisioned, discovery.GroupOnDemand} {
		job.TaskGroups = append(job.TaskGroups, &api.TaskGroup{
			Name:     new(g),
			Count:    new(0),
			Update:   update,
			Networks: []*api.NetworkResource{{DynamicPorts: []api.Port{{Label: "invoke"}}}},
			Services: []*api.Service{{
				Name: "nimbus-" + fn.Name, PortLabel: "invoke", Provider: "nomad",
				Tags: []string{"function=" + fn.Name, "version=" + version, "group=" + g},
			}},
			Tasks: []*api.Task{{
				Name: "function", Driver: "raw_exec",
				Config:      map[string]any{"command": "/bin/sleep", "args": []string{"600"}},
				Resources:   &api.Resources{CPU: new(50), MemoryMB: new(32)},
				KillTimeout: new(time.Second),
			}},
		})
	}
	return job
}

func TestAdaptersAgainstNomadAgent(t *testing.T) {
	client := startNomadAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	fn := &specs.Function{Name: "hello", MemoryMB: 256, URL: &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"},
		Aliases: []*specs.Alias{{Name: "live", Version: "1"}}}
	if _, _, err := client.Jobs().Register(agentJob(t, fn, LatestVersion, false), nil); err != nil {
		t.Fatalf("registering the job: %v", err)
	}

	// Catalog: the job's meta becomes a function; later versions and
	// variables arrive through blocking queries.
	cat, err := NewCatalog(client.Jobs(), client.Variables(), CatalogConfig{}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCatalog(t, cat)
	hello, err := cat.Function(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if l := hello.Latest(); l == nil || l.MemoryMB != 256 || hello.URL() == nil {
		t.Fatalf("hello from Nomad job meta: %+v", hello)
	}
	if _, _, err := client.Jobs().Register(agentJob(t, &specs.Function{Name: "hello"}, "1", true), nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "version 1 in the catalog", func() bool {
		f, err := cat.Snapshot().Function("hello")
		if err != nil {
			return false
		}
		r, err := f.Resolve("live", nil)
		return err == nil && r.Version == "1"
	})
	if _, _, err := client.Variables().Create(&api.Variable{Path: "nimbus/hello/aliases", Items: api.VariableItems{"live": "1"}}, nil); err != nil {
		t.Fatalf("writing a variable: %v", err)
	}
	eventually(t, 30*time.Second, "the variable in the catalog", func() bool {
		v, ok := cat.Variable("nimbus/hello/aliases")
		return ok && v["live"] == "1"
	})

	// Scaler and Discovery: the on-demand group's count drives real
	// allocations whose Nomad service registrations come and go.
	s, err := NewScaler(client.Jobs(), ScalerConfig{GatewayID: "gw-agent-test", JobID: cat.JobID}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDiscovery(client.Services(), DiscoveryConfig{}, gatewaytest.Logger(t))
	defer d.Close()
	gatewaytest.CapacityContract(t, struct {
		*Scaler
		*Discovery
	}{s, d}, "hello", LatestVersion, 90*time.Second)

	// The check-and-set the gateways share counts with: a write at an
	// index another gateway's write moved past is refused.
	at, err := s.Count(ctx, "hello", LatestVersion)
	if err != nil || at.Count != 0 {
		t.Fatalf("on-demand count %+v, %v", at, err)
	}
	other, err := NewScaler(client.Jobs(), ScalerConfig{GatewayID: "gw-agent-other", JobID: cat.JobID}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetIf(ctx, "hello", LatestVersion, 1, at); err != nil {
		t.Fatalf("check-and-set at the current index: %v", err)
	}
	if err := s.SetIf(ctx, "hello", LatestVersion, 2, at); !errors.Is(err, ErrConflict) {
		t.Fatalf("check-and-set at a stale index: %v, want ErrConflict", err)
	}
	if at, err = s.Count(ctx, "hello", LatestVersion); err != nil || at.Count != 1 {
		t.Fatalf("on-demand count %+v, %v; want 1", at, err)
	}
	if err := other.SetIf(ctx, "hello", LatestVersion, 0, at); err != nil {
		t.Fatalf("check-and-set back to 0: %v", err)
	}

	st, err := s.Status(ctx, "hello", LatestVersion)
	if err != nil || st.Desired != 0 {
		t.Fatalf("on-demand scale status %+v, %v", st, err)
	}
	var reasons []string
	for _, e := range st.Events {
		if e.Meta[ScaleMetaGateway] == "gw-agent-test" {
			reasons = append(reasons, fmt.Sprint(e.Meta[ScaleMetaReason]))
		}
	}
	if len(reasons) != 3 {
		t.Fatalf("scaling events by this gateway: %v (events %+v)", reasons, st.Events)
	}
	// A version compiled with rolling updates cannot be scaled while its
	// deployment runs; the error says so in a way callers can test.
	if err := s.OnDemand(ctx, "hello", "1", 1); err != nil {
		t.Fatalf("first scale of version 1: %v", err)
	}
	eventually(t, 30*time.Second, "version 1's deployment to start", func() bool {
		dep, _, err := client.Jobs().LatestDeployment("nimbus-hello-1", nil)
		return err == nil && dep != nil && dep.Status == "running"
	})
	if err := s.OnDemand(ctx, "hello", "1", 2); !errors.Is(err, ErrDeploymentActive) {
		t.Fatalf("scaling during a deployment: %v, want ErrDeploymentActive", err)
	}

	// The provisioned group, owned by the autoscaler, was never touched.
	job, _, err := client.Jobs().Info("nimbus-hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range job.TaskGroups {
		if *g.Name == discovery.GroupProvisioned && *g.Count != 0 {
			t.Fatalf("provisioned count changed to %d", *g.Count)
		}
	}
}
