package submit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
	"github.com/nimbus-fn/nimbus/specs"
)

func compiled(t *testing.T, namespace string, provisioned int) *api.Job {
	t.Helper()
	fn := &specs.Function{
		Name: "hello", Runtime: "provided.al2023", Code: &specs.Code{Dir: "."},
		MemoryMB: 128, Timeout: "3s", EnvironmentsPerInstance: 1,
	}
	if provisioned > 0 {
		fn.Provisioned = &specs.ProvisionedConcurrency{Min: provisioned, Max: provisioned * 4}
	}
	if namespace != "" {
		fn.Placement = &specs.Placement{Namespace: namespace}
	}
	job, err := jobs.Compile(fn, jobs.Options{
		ArtifactBaseURL: "http://artifacts.test",
		CodeChecksum:    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
	})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func newSubmitter(t *testing.T) (*submit.Submitter, *submittest.Server) {
	t.Helper()
	srv := submittest.New(t)
	t.Cleanup(func() {
		if u := srv.Unexpected(); len(u) > 0 {
			t.Errorf("requests to endpoints the submitter should not use: %+v", u)
		}
	})
	c := srv.Client(t)
	return submit.New(c.Jobs(), c.Variables(), hclog.NewNullLogger()), srv
}

// testKey is the cluster key the tests' invoke secrets derive from.
const testKey = "submit-test-key"

// register registers job with its variable, as deploy does.
func register(ctx context.Context, t *testing.T, s *submit.Submitter, job *api.Job) (*submit.Result, error) {
	t.Helper()
	v, err := jobs.InvokeVariable(job, []byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	return s.Register(ctx, job, v)
}

func counts(j *api.Job) map[string]int {
	out := map[string]int{}
	for _, g := range j.TaskGroups {
		out[*g.Name] = *g.Count
	}
	return out
}

func TestRegisterNewJob(t *testing.T) {
	s, srv := newSubmitter(t)
	ctx := context.Background()
	job := compiled(t, "fns", 2)
	res, err := register(ctx, t, s, job)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.JobID != "nimbus-hello" || res.EvalID == "" || len(res.PreservedCounts) != 0 {
		t.Errorf("result %+v", res)
	}
	// Info, then the job's variable (read, check-and-set create), and only
	// then the job: no task may start before its secret exists.
	reqs := srv.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want info, variable read, variable write, register: %v", len(reqs), paths(reqs))
	}
	if reqs[0].Method != http.MethodGet || reqs[0].Path != "/v1/job/nimbus-hello" || reqs[0].Query.Get("namespace") != "fns" || reqs[0].Query.Get("region") != "global" {
		t.Errorf("info request %s %s?%s", reqs[0].Method, reqs[0].Path, reqs[0].Query.Encode())
	}
	if reqs[1].Method != http.MethodGet || reqs[1].Path != "/v1/var/nomad/jobs/nimbus-hello" || reqs[1].Query.Get("namespace") != "fns" {
		t.Errorf("variable read %s %s?%s", reqs[1].Method, reqs[1].Path, reqs[1].Query.Encode())
	}
	if reqs[2].Method != http.MethodPut || reqs[2].Path != "/v1/var/nomad/jobs/nimbus-hello" || reqs[2].Query.Get("cas") != "0" || reqs[2].Query.Get("namespace") != "fns" {
		t.Errorf("variable write %s %s?%s, want a check-and-set create", reqs[2].Method, reqs[2].Path, reqs[2].Query.Encode())
	}
	if reqs[3].Method != http.MethodPut || reqs[3].Path != "/v1/jobs" || reqs[3].Query.Get("namespace") != "fns" {
		t.Errorf("register request %s %s?%s", reqs[3].Method, reqs[3].Path, reqs[3].Query.Encode())
	}
	secret := invokeapi.DeriveSecret([]byte(testKey), "hello", jobs.LatestVersion)
	v := srv.Variable("fns", "nomad/jobs/nimbus-hello")
	if v == nil || len(v.Items) != 1 || v.Items[jobs.VariableInvokeSecret] != secret {
		t.Fatalf("stored variable %+v, want only the derived invoke secret", v)
	}
	if strings.Contains(string(reqs[3].Body), secret) {
		t.Error("the registered job carries the invoke secret")
	}
	var body api.JobRegisterRequest
	if err := json.Unmarshal(reqs[3].Body, &body); err != nil {
		t.Fatal(err)
	}
	if !body.PreserveCounts || body.EnforceIndex || *body.Job.ID != "nimbus-hello" {
		t.Errorf("register body: preserve=%v enforce=%v", body.PreserveCounts, body.EnforceIndex)
	}
	if got := counts(body.Job); got["provisioned"] != 2 || got["ondemand"] != 0 {
		t.Errorf("counts sent %v", got)
	}
	if stored := srv.Job("fns", "nimbus-hello"); stored == nil || stored.Meta[jobs.MetaFunction] != "hello" {
		t.Errorf("job not stored with its meta")
	}
}

// A redeploy keeps the counts the autoscaler and the gateway set.
func TestRegisterPreservesRunningCounts(t *testing.T) {
	s, srv := newSubmitter(t)
	ctx := context.Background()
	if _, err := register(ctx, t, s, compiled(t, "", 1)); err != nil {
		t.Fatal(err)
	}
	scope := submit.Scope{Namespace: "default", Region: "global"}
	if _, err := s.Scale(ctx, scope, "nimbus-hello", jobs.GroupOnDemand, 3, "gateway: queue depth"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scale(ctx, scope, "nimbus-hello", jobs.GroupProvisioned, 4, "autoscaler"); err != nil {
		t.Fatal(err)
	}
	srv.Reset()

	// The new compile says provisioned=2, ondemand=0; the running job says 4 and 3.
	res, err := register(ctx, t, s, compiled(t, "", 2))
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.PreservedCounts["provisioned"] != 4 || res.PreservedCounts["ondemand"] != 3 {
		t.Errorf("result %+v", res)
	}
	// The variable already holds the secret: read, not written again.
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[1].Path != "/v1/var/nomad/jobs/nimbus-hello" || reqs[2].Path != "/v1/jobs" {
		t.Fatalf("requests %v", paths(reqs))
	}
	body := lastRegister(t, srv)
	if got := counts(body.Job); got["provisioned"] != 4 || got["ondemand"] != 3 {
		t.Errorf("counts sent %v, want the running 4 and 3", got)
	}
	// The new spec's scaling bounds still went out.
	if *body.Job.TaskGroups[0].Scaling.Min != 2 {
		t.Errorf("scaling min %d, want the new 2", *body.Job.TaskGroups[0].Scaling.Min)
	}
	if got := counts(srv.Job("default", "nimbus-hello")); got["provisioned"] != 4 || got["ondemand"] != 3 {
		t.Errorf("stored counts %v", got)
	}
}

func TestPreserveCountsDoesNotModifyInput(t *testing.T) {
	job := compiled(t, "", 1)
	cur := compiled(t, "", 1)
	*cur.TaskGroups[1].Count = 7
	out, kept, clamped := submit.PreserveCounts(job, cur)
	if *job.TaskGroups[1].Count != 0 {
		t.Fatal("input job modified")
	}
	if *out.TaskGroups[1].Count != 7 || kept["ondemand"] != 7 || kept["provisioned"] != 1 || len(clamped) != 0 {
		t.Fatalf("out counts %v kept %v clamped %v", counts(out), kept, clamped)
	}
	same, kept, _ := submit.PreserveCounts(job, nil)
	if len(kept) != 0 || *same.TaskGroups[0].Count != 1 {
		t.Fatalf("nil current: %v %v", counts(same), kept)
	}
}

// A running count outside the new job's scaling bounds moves to the
// nearest bound, and Register then sends the counts without asking Nomad to
// preserve the old ones (which it would refuse).
func TestRegisterClampsCountsIntoNewBounds(t *testing.T) {
	s, srv := newSubmitter(t)
	ctx := context.Background()
	if _, err := register(ctx, t, s, compiled(t, "", 2)); err != nil { // provisioned 2..8
		t.Fatal(err)
	}
	if _, err := s.Scale(ctx, submit.Scope{}, "nimbus-hello", jobs.GroupProvisioned, 8, "peak"); err != nil {
		t.Fatal(err)
	}
	srv.Reset()
	res, err := register(ctx, t, s, compiled(t, "", 1)) // provisioned 1..4
	if err != nil {
		t.Fatal(err)
	}
	if res.PreservedCounts["provisioned"] != 4 || len(res.Clamped) != 1 || res.Clamped[0] != "provisioned" {
		t.Errorf("result %+v", res)
	}
	body := lastRegister(t, srv)
	if body.PreserveCounts || counts(body.Job)["provisioned"] != 4 {
		t.Errorf("register body preserve=%v counts=%v", body.PreserveCounts, counts(body.Job))
	}
}

func TestPlan(t *testing.T) {
	s, srv := newSubmitter(t)
	ctx := context.Background()
	plan, err := s.Plan(ctx, compiled(t, "", 2))
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Created || plan.Response.Diff.Type != "Added" {
		t.Errorf("plan of a new job: %+v", plan)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[1].Method != http.MethodPut || reqs[1].Path != "/v1/job/nimbus-hello/plan" {
		t.Fatalf("requests %+v", reqs)
	}
	var body api.JobPlanRequest
	if err := json.Unmarshal(reqs[1].Body, &body); err != nil {
		t.Fatal(err)
	}
	if !body.Diff || *body.Job.ID != "nimbus-hello" {
		t.Errorf("plan body diff=%v", body.Diff)
	}
	text := submit.FormatDiff(plan.Response.Diff)
	if !strings.Contains(text, `+ job "nimbus-hello"`) || !strings.Contains(text, `+ group "provisioned" (2 create)`) {
		t.Errorf("diff text:\n%s", text)
	}
	if srv.Job("default", "nimbus-hello") != nil {
		t.Fatal("plan registered the job")
	}

	// Planning a redeploy over scaled groups shows no count change.
	if _, err := register(ctx, t, s, compiled(t, "", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scale(ctx, submit.Scope{}, "nimbus-hello", jobs.GroupOnDemand, 5, "load"); err != nil {
		t.Fatal(err)
	}
	plan, err = s.Plan(ctx, compiled(t, "", 2))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Created || plan.Response.Diff.Type != "None" || submit.FormatDiff(plan.Response.Diff) != "no changes\n" {
		t.Errorf("redeploy plan: %s", submit.FormatDiff(plan.Response.Diff))
	}
}

func TestScale(t *testing.T) {
	s, srv := newSubmitter(t)
	ctx := context.Background()
	if _, err := register(ctx, t, s, compiled(t, "fns", 0)); err != nil {
		t.Fatal(err)
	}
	srv.Reset()
	scope := submit.Scope{Namespace: "fns"}
	evalID, err := s.Scale(ctx, scope, "nimbus-hello", jobs.GroupOnDemand, 2, "cold start")
	if err != nil || evalID == "" {
		t.Fatalf("scale: %q %v", evalID, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPut || reqs[0].Path != "/v1/job/nimbus-hello/scale" || reqs[0].Query.Get("namespace") != "fns" {
		t.Fatalf("requests %+v", reqs)
	}
	var body api.ScalingRequest
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if *body.Count != 2 || body.Target["Group"] != "ondemand" || body.Target["Job"] != "nimbus-hello" || body.Message != "cold start" || body.Error {
		t.Errorf("scale body %+v", body)
	}
	// Above the group's scaling max (the default concurrency) Nomad refuses.
	if _, err := s.Scale(ctx, scope, "nimbus-hello", jobs.GroupOnDemand, jobs.DefaultConcurrency+1, "too many"); err == nil || !strings.Contains(err.Error(), "maximum") {
		t.Fatalf("scale beyond max: %v", err)
	}
	if _, err := s.Scale(ctx, scope, "nimbus-hello", jobs.GroupOnDemand, -1, "negative"); err == nil {
		t.Fatal("negative count accepted")
	}
}

func TestDeregisterAndMissingJob(t *testing.T) {
	s, srv := newSubmitter(t)
	ctx := context.Background()
	if _, err := s.Current(ctx, submit.Scope{}, "nimbus-nope"); !errors.Is(err, submit.ErrNoJob) {
		t.Fatalf("missing job: %v", err)
	}
	if _, err := register(ctx, t, s, compiled(t, "", 0)); err != nil {
		t.Fatal(err)
	}
	srv.Reset()
	evalID, err := s.Deregister(ctx, submit.Scope{Namespace: "default"}, "nimbus-hello", true)
	if err != nil || evalID == "" {
		t.Fatalf("deregister: %q %v", evalID, err)
	}
	// The job goes first, then its variable, check-and-set on the index read.
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Method != http.MethodDelete || reqs[0].Path != "/v1/job/nimbus-hello" || reqs[0].Query.Get("purge") != "true" {
		t.Fatalf("requests %v", paths(reqs))
	}
	if reqs[1].Method != http.MethodGet || reqs[2].Method != http.MethodDelete || reqs[2].Path != "/v1/var/nomad/jobs/nimbus-hello" || reqs[2].Query.Get("cas") == "" || reqs[2].Query.Get("cas") == "0" {
		t.Errorf("variable requests %v, want a read and a check-and-set delete", paths(reqs[1:]))
	}
	if srv.Job("default", "nimbus-hello") != nil {
		t.Fatal("job still stored after purge")
	}
	if v := srv.Variable("default", "nomad/jobs/nimbus-hello"); v != nil {
		t.Fatalf("variable %s still stored after deregister", v.Path)
	}
	if _, err := s.Deregister(ctx, submit.Scope{}, "nimbus-hello", false); err == nil {
		t.Fatal("deregistering a missing job succeeded")
	}
}

// The job's variable may hold items of the user's own (a spec's `secret`
// can point there): Register and Deregister touch only the invoke secret,
// and a redeploy with the same secret writes nothing.
func TestVariableKeepsOtherItems(t *testing.T) {
	s, srv := newSubmitter(t)
	ctx := context.Background()
	srv.PutVariable(&api.Variable{Namespace: "default", Path: "nomad/jobs/nimbus-hello", Items: api.VariableItems{"db_password": "pw", jobs.VariableInvokeSecret: "stale"}})
	if _, err := register(ctx, t, s, compiled(t, "", 0)); err != nil {
		t.Fatal(err)
	}
	secret := invokeapi.DeriveSecret([]byte(testKey), "hello", jobs.LatestVersion)
	v := srv.Variable("default", "nomad/jobs/nimbus-hello")
	if v == nil || v.Items["db_password"] != "pw" || v.Items[jobs.VariableInvokeSecret] != secret {
		t.Fatalf("variable after register: %+v", v)
	}
	var update *submittest.Request
	for _, r := range srv.Requests() {
		if r.Method == http.MethodPut && r.Path == "/v1/var/nomad/jobs/nimbus-hello" {
			update = &r
		}
	}
	if update == nil || update.Query.Get("cas") == "0" || update.Query.Get("cas") == "" {
		t.Fatalf("no check-and-set update of the existing variable: %v", paths(srv.Requests()))
	}

	srv.Reset()
	if _, err := register(ctx, t, s, compiled(t, "", 0)); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.Requests() {
		if r.Method == http.MethodPut && strings.HasPrefix(r.Path, "/v1/var/") {
			t.Errorf("an unchanged secret was written again: %v", paths(srv.Requests()))
		}
	}

	if _, err := s.Deregister(ctx, submit.Scope{}, "nimbus-hello", true); err != nil {
		t.Fatal(err)
	}
	v = srv.Variable("default", "nomad/jobs/nimbus-hello")
	if v == nil || len(v.Items) != 1 || v.Items["db_password"] != "pw" {
		t.Fatalf("variable after deregister: %+v, want only the user's item", v)
	}
}

// Without its variable a job is not registered at all.
func TestRegisterNeedsTheJobsVariable(t *testing.T) {
	s, srv := newSubmitter(t)
	ctx := context.Background()
	job := compiled(t, "", 0)
	other, err := jobs.InvokeVariable(compiled(t, "fns", 0), []byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	other.Path = "nomad/jobs/nimbus-other"
	for _, v := range []*api.Variable{nil, other} {
		if _, err := s.Register(ctx, job, v); err == nil || !strings.Contains(err.Error(), "nomad/jobs/nimbus-hello") {
			t.Errorf("variable %v: err = %v", v, err)
		}
	}
	for _, r := range srv.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("wrote %s %s without the job's variable", r.Method, r.Path)
		}
	}
}

// A Connect-native job registers without a Variable, and the invoke secret
// a plain version of the same job left behind is removed (other items of
// that Variable stay).
func TestRegisterConnectJobWritesNoSecret(t *testing.T) {
	s, srv := newSubmitter(t)
	ctx := context.Background()
	plain := compiled(t, "", 0)
	if _, err := register(ctx, t, s, plain); err != nil {
		t.Fatal(err)
	}
	v := srv.Variable("default", "nomad/jobs/nimbus-hello")
	if v == nil || v.Items[jobs.VariableInvokeSecret] == "" {
		t.Fatalf("the plain job's variable is %+v", v)
	}
	// An operator's own item in the job's Variable.
	v.Items["other"] = "kept"
	srv.PutVariable(v)

	fn := &specs.Function{
		Name: "hello", Runtime: "provided.al2023", Code: &specs.Code{Dir: "."},
		MemoryMB: 128, Timeout: "3s", EnvironmentsPerInstance: 1,
	}
	job, err := jobs.Compile(fn, jobs.Options{
		ArtifactBaseURL: "http://artifacts.test", Connect: true,
		CodeChecksum: "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
	})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := jobs.InvokeVariable(job, []byte(testKey))
	if err != nil || secrets != nil {
		t.Fatalf("InvokeVariable of a Connect job = %+v, %v", secrets, err)
	}
	if _, err := s.Register(ctx, job, nil); err != nil {
		t.Fatalf("registering a Connect job without a variable: %v", err)
	}
	v = srv.Variable("default", "nomad/jobs/nimbus-hello")
	if v == nil || v.Items["other"] != "kept" || v.Items[jobs.VariableInvokeSecret] != "" {
		t.Fatalf("variable after the Connect job = %+v; want the invoke secret gone and other items kept", v)
	}
	if body := lastRegister(t, srv); !strings.Contains(mustJSON(t, body.Job), `"connect_service"`) {
		t.Error("the registered job is not the Connect one")
	}
	// A variable handed in for a job that reads none is a caller's mistake.
	stray, err := jobs.InvokeVariable(plain, []byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register(ctx, job, stray); err == nil || !strings.Contains(err.Error(), "Connect-native") {
		t.Fatalf("a Connect job with a variable: err = %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// paths lists requests as "METHOD path?query", without bodies.
func paths(reqs []submittest.Request) []string {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.Method+" "+r.Path+"?"+r.Query.Encode())
	}
	return out
}

// lastRegister is the body of the last job registration the double saw.
func lastRegister(t *testing.T, srv *submittest.Server) api.JobRegisterRequest {
	t.Helper()
	var body api.JobRegisterRequest
	reqs := srv.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == http.MethodPut && reqs[i].Path == "/v1/jobs" {
			if err := json.Unmarshal(reqs[i].Body, &body); err != nil {
				t.Fatal(err)
			}
			return body
		}
	}
	t.Fatalf("no job registration in %v", paths(reqs))
	return body
}

func TestFormatDiffEdited(t *testing.T) {
	d := &api.JobDiff{Type: "Edited", ID: "nimbus-f", TaskGroups: []*api.TaskGroupDiff{{
		Type: "Edited", Name: "ondemand",
		Tasks: []*api.TaskDiff{{Type: "Edited", Name: "function", Objects: []*api.ObjectDiff{{
			Type: "Edited", Name: "Config",
			Fields: []*api.FieldDiff{{Type: "Edited", Name: "memory_mb", Old: "128", New: "256"}},
		}}}},
	}, {Type: "None", Name: "provisioned"}}}
	want := "~ job \"nimbus-f\"\n  ~ group \"ondemand\"\n    ~ task \"function\"\n      ~ Config\n        ~ memory_mb: \"128\" => \"256\"\n"
	if got := submit.FormatDiff(d); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// racingVars writes the variable behind the submitter's back between its
// read and its first check-and-set write, as another deploy would.
type racingVars struct {
	submit.Variables
	srv  *submittest.Server
	done bool
}

func (r *racingVars) CheckedCreate(v *api.Variable, q *api.WriteOptions) (*api.Variable, *api.WriteMeta, error) {
	r.race(v)
	return r.Variables.CheckedCreate(v, q)
}

func (r *racingVars) race(v *api.Variable) {
	if !r.done {
		r.done = true
		r.srv.PutVariable(&api.Variable{Namespace: "default", Path: v.Path, Items: api.VariableItems{"other": "x"}})
	}
}

// A write that loses the check-and-set race re-reads and keeps what the
// other writer put there.
func TestRegisterRetriesAVariableConflict(t *testing.T) {
	srv := submittest.New(t)
	c := srv.Client(t)
	rv := &racingVars{Variables: c.Variables(), srv: srv}
	s := submit.New(c.Jobs(), rv, hclog.NewNullLogger())
	if _, err := register(context.Background(), t, s, compiled(t, "", 0)); err != nil {
		t.Fatal(err)
	}
	var writes int
	for _, r := range srv.Requests() {
		if r.Method == http.MethodPut && strings.HasPrefix(r.Path, "/v1/var/") {
			writes++
		}
	}
	v := srv.Variable("default", "nomad/jobs/nimbus-hello")
	if !rv.done || writes != 2 || v == nil || v.Items["other"] != "x" ||
		v.Items[jobs.VariableInvokeSecret] != invokeapi.DeriveSecret([]byte(testKey), "hello", jobs.LatestVersion) {
		t.Fatalf("after a lost race (%d variable writes): %+v", writes, v)
	}
	if srv.Job("default", "nimbus-hello") == nil {
		t.Fatal("job not registered after the retried variable write")
	}
}
