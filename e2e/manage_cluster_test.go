package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/versions/versionstest"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
)

// clusterManage is what the management steps run against: the Lambda API
// of a cluster gateway and a client of the Nomad it registers jobs in.
type clusterManage struct {
	lc *lambda.Client
	nc *nomadapi.Client
	// placed says Nomad places the registered jobs, so the function
	// answers invocations (a real agent); the stand-in places nothing.
	placed bool
	code   []byte // the function's zip
}

// codeSHA256 is the hex digest the job's artifact is checked against.
func (c *clusterManage) codeSHA256() string {
	sum := sha256.Sum256(c.code)
	return hex.EncodeToString(sum[:])
}

// job returns the registered job of a function version, or nil when Nomad
// has none (or only a stopped one).
func (c *clusterManage) job(t *testing.T, version string) *nomadapi.Job {
	t.Helper()
	j, _, err := c.nc.Jobs().Info(jobs.JobID("mgmt", version), nil)
	if err != nil {
		if strings.Contains(err.Error(), "404") {
			return nil
		}
		t.Fatalf("reading job %s: %v", jobs.JobID("mgmt", version), err)
	}
	if j.Stop != nil && *j.Stop {
		return nil
	}
	return j
}

// checkJob asserts what the gateway compiled into a version's job: the
// function and version in its meta, the code's checksum in the meta and on
// the artifact Nomad fetches, and the function's environment on the task.
func (c *clusterManage) checkJob(t *testing.T, j *nomadapi.Job, version string, env map[string]string) {
	t.Helper()
	if j.Meta[jobs.MetaFunction] != "mgmt" || j.Meta[jobs.MetaVersion] != version || j.Meta[jobs.MetaCodeSHA256] != c.codeSHA256() {
		t.Fatalf("job %s meta function=%q version=%q code=%q, want mgmt %s %s", *j.ID,
			j.Meta[jobs.MetaFunction], j.Meta[jobs.MetaVersion], j.Meta[jobs.MetaCodeSHA256], version, c.codeSHA256())
	}
	if len(j.TaskGroups) == 0 {
		t.Fatalf("job %s has no groups", *j.ID)
	}
	for _, g := range j.TaskGroups {
		if len(g.Tasks) != 1 {
			t.Fatalf("group %s of %s has %d tasks", *g.Name, *j.ID, len(g.Tasks))
		}
		task := g.Tasks[0]
		for k, v := range env {
			if task.Env[k] != v {
				t.Fatalf("group %s of %s: task env %s=%q, want %q", *g.Name, *j.ID, k, task.Env[k], v)
			}
		}
		if b := jobs.Bundles(task); len(b) == 0 || b[0].Checksum != "sha256:"+c.codeSHA256() {
			t.Fatalf("group %s of %s: code bundle %+v, want checksum sha256:%s", *g.Name, *j.ID, b, c.codeSHA256())
		}
	}
}

// group returns a job's task group by name.
func group(t *testing.T, j *nomadapi.Job, name string) *nomadapi.TaskGroup {
	t.Helper()
	for _, g := range j.TaskGroups {
		if *g.Name == name {
			return g
		}
	}
	t.Fatalf("job %s has no group %s", *j.ID, name)
	return nil
}

// clusterManageSteps manage one function's life with aws-sdk-go-v2 against
// a cluster gateway and check each step by the job the gateway registered
// in Nomad and, when Nomad places it, by what the function answers.
var clusterManageSteps = []struct {
	name string
	run  func(t *testing.T, c *clusterManage)
}{
	{"CreateFunction is Pending, then Active once its job is registered", func(t *testing.T, c *clusterManage) {
		ctx := context.Background()
		created, err := c.lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("mgmt"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String("r"),
			Code:        &types.FunctionCode{ZipFile: c.code},
			Environment: &types.Environment{Variables: map[string]string{"GREETING": "nomad"}},
		})
		if err != nil {
			t.Fatalf("CreateFunction: %v", err)
		}
		if created.State != types.StatePending {
			t.Fatalf("CreateFunction state %s, want Pending", created.State)
		}
		if err := lambda.NewFunctionActiveV2Waiter(c.lc).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("mgmt")}, 2*time.Minute); err != nil {
			t.Fatalf("waiting for Active: %v", err)
		}
		j := c.job(t, jobs.LatestVersion)
		if j == nil {
			t.Fatal("the function is Active but the gateway registered no job for it")
		}
		c.checkJob(t, j, jobs.LatestVersion, map[string]string{"GREETING": "nomad"})
		if !c.placed {
			return
		}
		started := time.Now()
		r := invokeReport(t, c.lc, "mgmt", "")
		t.Logf("first invocation of the API-created function (Nomad placement from zero): %s", time.Since(started).Round(time.Millisecond))
		if r.FunctionName != "mgmt" || r.Env["GREETING"] != "nomad" {
			t.Fatalf("the placed function runs with %+v", r)
		}
	}},
	{"GetFunction and ListFunctions read it", func(t *testing.T, c *clusterManage) {
		ctx := context.Background()
		got, err := c.lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("mgmt")})
		if err != nil {
			t.Fatal(err)
		}
		cfg := got.Configuration
		if cfg.State != types.StateActive || cfg.Environment == nil || cfg.Environment.Variables["GREETING"] != "nomad" ||
			got.Code == nil || aws.ToString(got.Code.Location) == "" {
			t.Fatalf("GetFunction: state %s env %+v code %+v", cfg.State, cfg.Environment, got.Code)
		}
		list, err := c.lc.ListFunctions(ctx, &lambda.ListFunctionsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(list.Functions, func(f types.FunctionConfiguration) bool { return aws.ToString(f.FunctionName) == "mgmt" }) {
			t.Fatalf("ListFunctions lists %d functions without mgmt", len(list.Functions))
		}
	}},
	{"UpdateFunctionConfiguration re-registers the job with the new environment", func(t *testing.T, c *clusterManage) {
		ctx := context.Background()
		before := c.job(t, jobs.LatestVersion)
		if _, err := c.lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("mgmt"), Environment: &types.Environment{Variables: map[string]string{"GREETING": "updated"}},
		}); err != nil {
			t.Fatal(err)
		}
		if err := lambda.NewFunctionUpdatedV2Waiter(c.lc).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("mgmt")}, 2*time.Minute); err != nil {
			t.Fatalf("waiting for the update: %v", err)
		}
		got, err := c.lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("mgmt")})
		if err != nil || got.LastUpdateStatus != types.LastUpdateStatusSuccessful {
			t.Fatalf("after the update: %v, LastUpdateStatus %s", err, got.LastUpdateStatus)
		}
		j := c.job(t, jobs.LatestVersion)
		if j == nil || *j.JobModifyIndex <= *before.JobModifyIndex {
			t.Fatalf("the update registered no new job version (was at %d)", *before.JobModifyIndex)
		}
		c.checkJob(t, j, jobs.LatestVersion, map[string]string{"GREETING": "updated"})
		if c.placed {
			eventually(t, 2*time.Minute, func() bool { return invokeReport(t, c.lc, "mgmt", "").Env["GREETING"] == "updated" }, "the updated configuration to run on Nomad")
		}
	}},
	{"UpdateFunctionCode with Publish gives version 1 its own job", func(t *testing.T, c *clusterManage) {
		ctx := context.Background()
		pub, err := c.lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("mgmt"), ZipFile: c.code, Publish: true})
		if err != nil || aws.ToString(pub.Version) != "1" {
			t.Fatalf("publish: %v %v", err, pub)
		}
		eventually(t, time.Minute, func() bool { return c.job(t, "1") != nil }, "the gateway to register version 1's job")
		c.checkJob(t, c.job(t, "1"), "1", map[string]string{"GREETING": "updated"})
		if c.placed {
			eventually(t, 2*time.Minute, func() bool {
				out, err := c.lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mgmt"), Qualifier: aws.String("1")})
				return err == nil && aws.ToString(out.ExecutedVersion) == "1"
			}, "version 1 to answer")
		}
	}},
	{"PublishVersion of the unchanged function is version 1 again, with no new job", func(t *testing.T, c *clusterManage) {
		ctx := context.Background()
		latest, err := c.lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("mgmt")})
		if err != nil {
			t.Fatal(err)
		}
		sum := c.codeSHA256()
		raw, _ := hex.DecodeString(sum)
		if aws.ToString(latest.CodeSha256) != base64.StdEncoding.EncodeToString(raw) {
			t.Fatalf("CodeSha256 %s, want the zip's (%s in hex)", aws.ToString(latest.CodeSha256), sum)
		}
		v, err := c.lc.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("mgmt"), CodeSha256: latest.CodeSha256, RevisionId: latest.RevisionId})
		if err != nil || aws.ToString(v.Version) != "1" {
			t.Fatalf("PublishVersion: %v %+v", err, v)
		}
		if _, err := c.lc.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("mgmt"), RevisionId: aws.String("stale")}); apiErrorCode(err) != "PreconditionFailedException" {
			t.Fatalf("PublishVersion with a stale RevisionId: %v", err)
		}
		if j := c.job(t, "2"); j != nil {
			t.Fatalf("an unchanged publish registered %s", *j.ID)
		}
	}},
	{"CreateAlias points at version 1", func(t *testing.T, c *clusterManage) {
		ctx := context.Background()
		if _, err := c.lc.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("mgmt"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
			t.Fatal(err)
		}
		a, err := c.lc.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("mgmt"), Name: aws.String("live")})
		if err != nil || aws.ToString(a.FunctionVersion) != "1" {
			t.Fatalf("GetAlias: %v %+v", err, a)
		}
		if c.placed {
			eventually(t, time.Minute, func() bool {
				out, err := c.lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mgmt"), Qualifier: aws.String("live")})
				return err == nil && aws.ToString(out.ExecutedVersion) == "1"
			}, "the alias to route to version 1")
		}
	}},
	{"PutFunctionConcurrency bounds the on-demand group of $LATEST's job", func(t *testing.T, c *clusterManage) {
		ctx := context.Background()
		if _, err := c.lc.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("mgmt"), ReservedConcurrentExecutions: aws.Int32(3)}); err != nil {
			t.Fatal(err)
		}
		got, err := c.lc.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("mgmt")})
		if err != nil || aws.ToInt32(got.ReservedConcurrentExecutions) != 3 {
			t.Fatalf("GetFunctionConcurrency: %v %+v", err, got)
		}
		var max int64
		eventually(t, time.Minute, func() bool {
			j := c.job(t, jobs.LatestVersion)
			if j == nil {
				return false
			}
			if sc := group(t, j, jobs.GroupOnDemand).Scaling; sc != nil && sc.Max != nil {
				max = *sc.Max
			}
			return max == 3
		}, "the on-demand group's scaling max to follow the reserved concurrency")
	}},
	{"DeleteFunction removes its jobs", func(t *testing.T, c *clusterManage) {
		ctx := context.Background()
		if _, err := c.lc.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("mgmt")}); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{jobs.LatestVersion, "1"} {
			if j := c.job(t, v); j != nil {
				t.Fatalf("job %s still registered after DeleteFunction", *j.ID)
			}
		}
		if _, err := c.lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("mgmt")}); apiErrorCode(err) != "ResourceNotFoundException" {
			t.Fatalf("GetFunction after delete: %v", err)
		}
		if !c.placed {
			return
		}
		eventually(t, time.Minute, func() bool {
			allocs, _, err := c.nc.Jobs().Allocations(jobs.JobID("mgmt", jobs.LatestVersion), true, nil)
			if err != nil {
				return true // purged
			}
			for _, a := range allocs {
				if a.ClientStatus == nomadapi.AllocClientStatusRunning {
					return false
				}
			}
			return true
		}, "Nomad to stop the deleted function's allocations")
	}},
}

// runClusterManage runs the steps in order; a failed step ends the run.
func runClusterManage(t *testing.T, c *clusterManage) {
	for _, step := range clusterManageSteps {
		if !t.Run(step.name, func(t *testing.T) { step.run(t, c) }) {
			t.FailNow()
		}
	}
}

// TestManageFunctionsOnNomad manages a function with aws-sdk-go-v2 against
// the real `nimbus gateway` binary in cluster mode, with a real Consul and
// a real Nomad agent running the nimbus driver: CreateFunction makes the
// gateway register the function's job (Pending → Active), Nomad places it
// on the first invocation, a configuration update replaces the job, a
// published version gets its own job, and DeleteFunction removes them.
func TestManageFunctionsOnNomad(t *testing.T) {
	nomadtest.Binary(t, "NOMAD_BINARY is not set: skipping the management API against a real Nomad agent (set it to a nomad binary to run it)")
	lc, nc := startClusterOnNomad(t)
	runClusterManage(t, &clusterManage{lc: lc, nc: nc, placed: true, code: zipDir(t, testfn.Dir(t, "ctxcheck"))})
}

// startClusterOnNomad runs a real Consul, a real Nomad agent running the
// nimbus driver and the `nimbus gateway` binary in cluster mode on them,
// and returns a Lambda client of the gateway and a client of the agent.
func startClusterOnNomad(t *testing.T) (*lambda.Client, *nomadapi.Client) {
	t.Helper()
	consul := consultest.Start(t)
	agent := startDriverAgent(t, consul.HTTPAddr, "nimbus-e2e-manage-")
	return startClusterGateway(t, agent.Addr, consul.HTTPAddr), agent.Client(t)
}

// TestManageFunctionsOnNomadStandIn runs the same steps against the real
// `nimbus gateway` binary in cluster mode with a real Consul and, for
// Nomad, httptest doubles of exactly the Nomad HTTP endpoints the cluster
// gateway calls (jobs from submittest, variables from versionstest), so it
// runs where no Nomad agent does. It checks the registered job bodies; no
// step invokes the function, since nothing places the task without Nomad
// (TestManageFunctionsOnNomad covers invocation). Any request outside the
// doubles fails the test, and the endpoints called are logged.
func TestManageFunctionsOnNomadStandIn(t *testing.T) {
	consul := consultest.Start(t)
	nomad := startNomadStandIn(t)
	lc := startClusterGateway(t, nomad.URL, consul.HTTPAddr)
	c := &clusterManage{lc: lc, nc: nomad.client(t), code: zipDir(t, testfn.Dir(t, "ctxcheck"))}
	runClusterManage(t, c)
	if u := nomad.jobs.Unexpected(); len(u) > 0 {
		for _, r := range u {
			t.Errorf("the gateway called %s %s?%s, which the Nomad stand-in does not serve", r.Method, r.Path, r.Query.Encode())
		}
	}
	t.Logf("Nomad endpoints the cluster gateway called:\n%s", strings.Join(nomad.endpoints(), "\n"))
}

// nomadStandIn is the Nomad HTTP API of a cluster without an agent: the
// variables double behind /v1/var/ and /v1/vars, the jobs double behind
// everything else (which records what it does not serve), and a log of the
// endpoints called by anyone but the test.
type nomadStandIn struct {
	URL  string
	jobs *submittest.Server

	mu     sync.Mutex
	called map[string]bool // "METHOD /path ?query keys"
}

// Path segments the endpoint log generalises.
var (
	standInJob = regexp.MustCompile(`^/v1/job/[^/]+`)
	standInVar = regexp.MustCompile(`^/v1/var/.+`)
)

func startNomadStandIn(t *testing.T) *nomadStandIn {
	t.Helper()
	s := &nomadStandIn{jobs: submittest.New(t), called: map[string]bool{}}
	target, err := url.Parse(s.jobs.URL)
	if err != nil {
		t.Fatal(err)
	}
	vars := versionstest.New(t)
	mux := http.NewServeMux()
	mux.Handle("/v1/var/", vars)
	mux.Handle("/v1/vars", vars)
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Reader") == "" {
			var keys []string
			for k := range r.URL.Query() {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			p := standInVar.ReplaceAllString(standInJob.ReplaceAllString(r.URL.Path, "/v1/job/<id>"), "/v1/var/<path>")
			s.mu.Lock()
			s.called[fmt.Sprintf("%-6s %s ?%s", r.Method, p, strings.Join(keys, "&"))] = true
			s.mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// client is the test's own Nomad client of the stand-in (its reads are
// left out of the endpoint log).
func (s *nomadStandIn) client(t *testing.T) *nomadapi.Client {
	t.Helper()
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: s.URL, Headers: http.Header{"X-Test-Reader": {"1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// endpoints lists the endpoints the gateway called, sorted.
func (s *nomadStandIn) endpoints() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.called))
	for e := range s.called {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// startClusterGateway runs the real `nimbus gateway` binary in cluster mode
// against the Nomad HTTP API at nomadAddr and the Consul agent at
// consulAddr, and returns a Lambda client of its API. It stops when t ends.
func startClusterGateway(t *testing.T, nomadAddr, consulAddr string) *lambda.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	conf := filepath.Join(t.TempDir(), "gateway.hcl")
	writeTree(t, filepath.Dir(conf), map[string]string{filepath.Base(conf): fmt.Sprintf(`listen = %q
region = %q
account_id = %q
invoke_key = %q
cold_start_wait = "120s"
idle_scale_in = "1h"
access_key %q {
  secret = %q
}
consul {
  check_interval = "1s"
}
queue {
  data_dir = %q
}
`, addr, e2eRegion, e2eAccount, e2eInvokeKey, e2eAccessKey, e2eSecretKey, filepath.Join(t.TempDir(), "queue"))})
	gw := exec.Command(nimbusOnce(t), "gateway", "--config", conf, "--log-level", "info")
	gw.Env = append(os.Environ(), "NOMAD_ADDR="+nomadAddr, "CONSUL_HTTP_ADDR="+consulAddr, "TMPDIR="+t.TempDir())
	logs := &lockedBuffer{}
	gw.Stdout, gw.Stderr = logs, logs
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- gw.Wait() }()
	t.Cleanup(func() {
		_ = gw.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = gw.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/nimbus/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "the gateway to answer its health check")

	return lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
}
