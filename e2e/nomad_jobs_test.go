package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/autoscaler/policy"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit"
	"github.com/nimbus-fn/nimbus/specs"
)

// provisionedFunction is a function with every scaling feature the
// compiler writes into a policy.
func provisionedFunction() *specs.Function {
	return &specs.Function{
		Name: "orders", Runtime: "provided.al2023", Code: &specs.Code{Dir: "."},
		MemoryMB: 256, Timeout: "10s", EnvironmentsPerInstance: 2,
		Environment: map[string]string{"MODE": "e2e"},
		Secrets:     []*specs.Secret{{Env: "DB_PASSWORD", Path: "nimbus/orders/db", Key: "password"}},
		Provisioned: &specs.ProvisionedConcurrency{
			Min: 1, Max: 6, TargetUtilization: 0.7,
			Schedules: []*specs.Schedule{{Name: "peak", Cron: "0 8 * * *", Duration: "2h", Timezone: "UTC", Min: 4}},
		},
	}
}

// jobVariable is the Nomad Variable a compiled job needs (its invoke secret).
func jobVariable(t *testing.T, job *api.Job) *api.Variable {
	t.Helper()
	v, err := jobs.InvokeVariable(job, []byte("e2e-key"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func compileFor(t *testing.T, fn *specs.Function, version string, rolling ...bool) *api.Job {
	t.Helper()
	job, err := jobs.Compile(fn, jobs.Options{
		Version:         version,
		ServiceProvider: jobs.ProviderNomad,
		ArtifactBaseURL: "http://127.0.0.1:1/bundles",
		CodeChecksum:    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		RollingUpdates:  len(rolling) > 0 && rolling[0],
	})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func strategyConfig(t *testing.T, p map[string]any) (check map[string]any, strategy map[string]any) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("policy does not have the check/strategy shape: %v\n%#v", r, p)
		}
	}()
	checkList := p["check"].([]any)
	if len(checkList) != 1 {
		t.Fatalf("%d checks", len(checkList))
	}
	for name, v := range checkList[0].(map[string]any) {
		if name != policy.CheckName {
			t.Errorf("check named %q, autoscaler/policy expects %q", name, policy.CheckName)
		}
		check = v.([]any)[0].(map[string]any)
	}
	for name, v := range check["strategy"].([]any)[0].(map[string]any) {
		if name != policy.StrategyName {
			t.Errorf("strategy named %q, autoscaler/policy expects %q", name, policy.StrategyName)
		}
		strategy = v.([]any)[0].(map[string]any)
	}
	return check, strategy
}

// The compiler and the autoscaler plugins agree on names, query syntax and
// strategy config keys (jobs may not import autoscaler/policy, so this is
// where the two meet).
func TestCompiledPolicyMatchesAutoscalerContract(t *testing.T) {
	if jobs.APMSource != policy.APMName || jobs.StrategyName != policy.StrategyName ||
		jobs.CheckName != policy.CheckName || jobs.GroupProvisioned != policy.Group {
		t.Fatalf("names differ: jobs %s/%s/%s/%s, policy %s/%s/%s/%s",
			jobs.APMSource, jobs.StrategyName, jobs.CheckName, jobs.GroupProvisioned,
			policy.APMName, policy.StrategyName, policy.CheckName, policy.Group)
	}
	for _, k := range []string{jobs.StrategyTarget, jobs.StrategyMin, jobs.StrategyMax, jobs.StrategySchedules} {
		if !slices.Contains(policy.StrategyKeys, k) {
			t.Errorf("compiler key %q is not a strategy key", k)
		}
	}
	job := compileFor(t, provisionedFunction(), "4")
	g := job.TaskGroups[0]
	check, strategy := strategyConfig(t, g.Scaling.Policy)
	if check["source"] != policy.APMName {
		t.Errorf("source %v", check["source"])
	}
	q, err := policy.ParseQuery(check["query"].(string))
	if err != nil || q.Function != "orders" || q.Version != "4" || q.Metric != policy.MetricUtilization {
		t.Errorf("query %v parses as %+v, %v", check["query"], q, err)
	}
	for k := range strategy {
		if !slices.Contains(policy.StrategyKeys, k) {
			t.Errorf("strategy config key %q would be rejected by the strategy", k)
		}
	}
	windows, err := policy.DecodeSchedules(strategy[policy.KeySchedules].(string))
	if err != nil {
		t.Fatal(err)
	}
	// 4 environments at 2 per instance: the window's floor is 2 instances.
	if len(windows) != 1 || windows[0].Min != 2 || windows[0].Cron != "0 8 * * *" {
		t.Errorf("schedules %+v", windows)
	}
	// Policy min/max and the strategy's min/max are the same instance counts.
	if fmt.Sprint(strategy[policy.KeyMin]) != fmt.Sprint(*g.Scaling.Min) || fmt.Sprint(strategy[policy.KeyMax]) != fmt.Sprint(*g.Scaling.Max) {
		t.Errorf("strategy min/max %v/%v, policy %d/%d", strategy[policy.KeyMin], strategy[policy.KeyMax], *g.Scaling.Min, *g.Scaling.Max)
	}
}

// waitForJobs polls cond until it holds or the deadline passes.
func waitForJobs(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("condition not met within %s", within)
		case <-tick.C:
		}
	}
}

// Against a real Nomad agent: the rendered HCL and JSON validate and plan,
// the job registers, and Nomad reads back our groups, services and scaling
// policy. The nimbus driver is not installed there, so nothing is placed.
func TestNomadAcceptsCompiledJobs(t *testing.T) {
	agent := nomadtest.Start(t, nomadtest.Options{
		SkipMessage: "NOMAD_BINARY is not set: skipping the real-Nomad job tests (set it to a nomad binary to run them)",
	})
	job := compileFor(t, provisionedFunction(), "4")
	dir := t.TempDir()
	hcl, err := jobs.RenderHCL(job)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jobs.RenderJSON(job)
	if err != nil {
		t.Fatal(err)
	}
	hclPath, jsonPath := filepath.Join(dir, "job.nomad.hcl"), filepath.Join(dir, "job.json")
	if err := os.WriteFile(hclPath, hcl, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jsonPath, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := agent.CLI(t, "job", "validate", hclPath); code != 0 {
		t.Fatalf("nomad job validate (HCL) exit %d:\n%s", code, out)
	}
	goldens, err := filepath.Glob(filepath.Join("..", "jobs", "testdata", "*.job.hcl"))
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no golden jobspecs: %v", err)
	}
	for _, g := range goldens {
		if out, code := agent.CLI(t, "job", "validate", g); code != 0 {
			t.Errorf("nomad job validate %s exit %d:\n%s", g, code, out)
		}
	}
	if out, code := agent.CLI(t, "job", "validate", "-json", jsonPath); code != 0 {
		t.Fatalf("nomad job validate -json exit %d:\n%s", code, out)
	}
	// plan exits 1 when the job would change (it is new), 255 on error.
	if out, code := agent.CLI(t, "job", "plan", hclPath); code != 0 && code != 1 {
		t.Fatalf("nomad job plan exit %d:\n%s", code, out)
	}
	// The HCL parses to the same job the JSON describes.
	out, code := agent.CLI(t, "job", "run", "-output", hclPath)
	if code != 0 {
		t.Fatalf("nomad job run -output exit %d:\n%s", code, out)
	}
	var fromHCL struct{ Job *api.Job }
	if err := json.Unmarshal([]byte(out), &fromHCL); err != nil {
		t.Fatalf("decoding nomad job run -output: %v\n%s", err, out)
	}
	if fromHCL.Job.Meta[jobs.MetaSpec] != job.Meta[jobs.MetaSpec] {
		t.Errorf("spec meta differs after nomad parsed the HCL")
	}
	if len(fromHCL.Job.TaskGroups) != 2 || fmt.Sprint(fromHCL.Job.TaskGroups[0].Tasks[0].Config["invoke_secret_file"]) != jobs.InvokeSecretFile ||
		len(fromHCL.Job.TaskGroups[0].Tasks[0].Templates) != len(job.TaskGroups[0].Tasks[0].Templates) {
		t.Errorf("task config differs after nomad parsed the HCL")
	}

	client := agent.Client(t)
	ctx := context.Background()
	s := submit.New(client.Jobs(), client.Variables(), nil)
	plan, err := s.Plan(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Created {
		t.Errorf("plan of a new job says it exists")
	}
	if _, err := s.Register(ctx, job, jobVariable(t, job)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Current(ctx, submit.ScopeOf(job), *job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.TaskGroups) != 2 || *got.TaskGroups[0].Name != jobs.GroupProvisioned || *got.TaskGroups[1].Name != jobs.GroupOnDemand {
		t.Fatalf("groups read back: %d", len(got.TaskGroups))
	}
	svc := got.TaskGroups[0].Services[0]
	if svc.Name != "nimbus-orders" || svc.Provider != jobs.ProviderNomad || !slices.Contains(svc.Tags, "version=4") {
		t.Errorf("service read back %+v", svc)
	}
	// Nomad stores the scaling policy; the autoscaler reads it from here.
	var pol *api.ScalingPolicy
	stubs, _, err := client.Scaling().ListPolicies(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stubs {
		if st.Target["Job"] == *job.ID && st.Target["Group"] == jobs.GroupProvisioned {
			pol, _, err = client.Scaling().GetPolicy(st.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if pol == nil {
		t.Fatal("no scaling policy registered for the provisioned group")
	}
	if !*pol.Enabled || *pol.Min != 1 || *pol.Max != 3 {
		t.Errorf("policy enabled=%v min=%d max=%d", *pol.Enabled, *pol.Min, *pol.Max)
	}
	_, strategy := strategyConfig(t, pol.Policy)
	if _, err := policy.DecodeSchedules(fmt.Sprint(strategy[policy.KeySchedules])); err != nil {
		t.Errorf("schedules after Nomad's round trip: %v", err)
	}

	// The gateway's scale path and a redeploy keeping its count.
	if _, err := s.Scale(ctx, submit.ScopeOf(job), *job.ID, jobs.GroupOnDemand, 2, "e2e"); err != nil {
		t.Fatal(err)
	}
	again := compileFor(t, provisionedFunction(), "4")
	res, err := s.Register(ctx, again, jobVariable(t, again))
	if err != nil {
		t.Fatal(err)
	}
	if res.PreservedCounts[jobs.GroupOnDemand] != 2 {
		t.Errorf("redeploy kept %v", res.PreservedCounts)
	}
	if v, _, err := client.Variables().Read(jobs.VariablePath(*job.ID), &api.QueryOptions{Namespace: *job.Namespace}); err != nil ||
		v.Items[jobs.VariableInvokeSecret] != jobVariable(t, job).Items[jobs.VariableInvokeSecret] {
		t.Fatalf("the job's variable in Nomad: %v %v", v, err)
	}
	if _, err := s.Deregister(ctx, submit.ScopeOf(job), *job.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Variables().Read(jobs.VariablePath(*job.ID), &api.QueryOptions{Namespace: *job.Namespace}); !errors.Is(err, api.ErrVariablePathNotFound) {
		t.Errorf("the job's variable after deregister: %v, want not found", err)
	}
	if _, err := s.Current(ctx, submit.ScopeOf(job), *job.ID); !strings.Contains(fmt.Sprint(err), "not found") {
		t.Errorf("job after purge: %v", err)
	}

	// Nomad's own validation accepts the compiled job across the spec's
	// ranges (memory, environments, timeouts, concurrency, providers, rollouts).
	zero := 0
	for i, v := range []struct {
		mem, envs   int
		timeout     string
		pc          *specs.ProvisionedConcurrency
		reserved    *int
		rolling     bool
		consulCheck bool
	}{
		{128, 1, "1s", nil, nil, false, false},
		{10240, 1, "900s", nil, nil, true, true},
		{128, 64, "15m0s", &specs.ProvisionedConcurrency{Min: 64, Max: 640}, nil, false, true},
		{1769, 8, "30s", &specs.ProvisionedConcurrency{Min: 0, Max: 10}, &zero, true, false},
		{512, 3, "5s", &specs.ProvisionedConcurrency{Min: 5, Max: 5}, nil, false, false},
	} {
		fn := provisionedFunction()
		fn.Name = fmt.Sprintf("matrix-%d", i)
		fn.MemoryMB, fn.EnvironmentsPerInstance, fn.Timeout = v.mem, v.envs, v.timeout
		fn.Provisioned, fn.ReservedConcurrency = v.pc, v.reserved
		provider := jobs.ProviderNomad
		if v.consulCheck {
			provider = jobs.ProviderConsul
		}
		j, err := jobs.Compile(fn, jobs.Options{
			ServiceProvider: provider, RollingUpdates: v.rolling,
			ArtifactBaseURL: "http://127.0.0.1:1/b",
			CodeChecksum:    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		})
		if err != nil {
			t.Fatal(err)
		}
		resp, _, err := client.Jobs().Validate(j, nil)
		if err != nil {
			t.Fatalf("validating %s: %v", fn.Name, err)
		}
		if len(resp.ValidationErrors) > 0 || resp.Error != "" {
			t.Errorf("Nomad rejects %s (%+v): %v %s", fn.Name, v, resp.ValidationErrors, resp.Error)
		}
	}

	// `nomad job run` takes the rendered output unchanged, HCL and JSON.
	for _, tc := range []struct {
		version string
		json    bool
	}{{"6", false}, {"7", true}} {
		j := compileFor(t, provisionedFunction(), tc.version)
		var out []byte
		args := []string{"job", "run", "-detach"}
		if tc.json {
			out, err = jobs.RenderJSON(j)
			args = append(args, "-json")
		} else {
			out, err = jobs.RenderHCL(j)
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "run-"+tc.version)
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
		if text, code := agent.CLI(t, append(args, p)...); code != 0 {
			t.Fatalf("nomad %v exit %d:\n%s", args, code, text)
		}
		back, err := s.Current(ctx, submit.ScopeOf(j), *j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if back.Meta[jobs.MetaSpec] != j.Meta[jobs.MetaSpec] || back.Meta[jobs.MetaVersion] != tc.version {
			t.Errorf("job %s registered by nomad job run lost its meta", *j.ID)
		}
	}

	// Why deployments are off by default: while one is active (here it
	// never ends, nothing can be placed), Nomad refuses to scale the job.
	rolling := compileFor(t, provisionedFunction(), "5", true)
	if _, err := s.Register(ctx, rolling, jobVariable(t, rolling)); err != nil {
		t.Fatal(err)
	}
	// The scheduler creates the deployment when it processes the
	// registration's evaluation; wait for it.
	waitForJobs(t, 30*time.Second, func() bool {
		d, _, err := client.Jobs().LatestDeployment(*rolling.ID, nil)
		return err == nil && d != nil && d.Status == "running"
	})
	_, err = s.Scale(ctx, submit.ScopeOf(rolling), *rolling.ID, jobs.GroupOnDemand, 1, "e2e")
	if err == nil || !strings.Contains(err.Error(), "active deployment") {
		t.Errorf("scaling during a rolling deployment: %v, want Nomad's active-deployment refusal", err)
	}
}
