package e2e

// The gateway in cluster mode, wired as `nimbus gateway` wires it
// (gateway/cluster): the Nomad catalog and on-demand scaler against Nomad's
// HTTP API (an httptest double of exactly the endpoints they call, or a
// real `nomad agent -dev` with NOMAD_BINARY), discovery and registration
// through a real Consul agent, and real hello-go instances launched with
// driver/local standing in for the allocations Nomad would place.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	driverlocal "github.com/nimbus-fn/nimbus/driver/local"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/nomad"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/specs"
)

const clusterFn = "hello-go"

// clusterNomadToken is the NOMAD_TOKEN the gateway gets; the Nomad double
// requires it on every request (a real agent without ACLs ignores it).
const clusterNomadToken = "e2e-nomad-acl-token"

// TestClusterGatewayNomadDouble runs the cluster gateway against the Nomad
// double and a real Consul agent.
func TestClusterGatewayNomadDouble(t *testing.T) {
	job := clusterHelloJob(t)
	fake := newClusterNomad(t, job)
	runClusterGateway(t, fake.srv.URL, job, func(t *testing.T) {
		// Exactly the endpoints the catalog and scaler call, and nothing else.
		for _, r := range fake.requestLog() {
			switch {
			case r == "GET /v1/jobs", r == "GET /v1/vars", r == "GET /v1/job/"+*job.ID,
				r == "GET /v1/job/"+*job.ID+"/scale", r == "PUT /v1/job/"+*job.ID+"/scale":
			default:
				t.Errorf("unexpected nomad request %s", r)
			}
		}
		for _, req := range fake.scaleRequests() {
			// Every write is a check-and-set on the job modify index.
			if req.Target["Job"] != *job.ID || req.Target["Group"] != jobs.GroupOnDemand || req.Count == nil || req.Error || req.JobModifyIndex == 0 {
				t.Errorf("scale request %+v", req)
			}
		}
	})
}

// TestClusterGatewayNomadAgent is the same against a real Nomad agent; the
// compiled job is registered in it (nothing can be placed: the agent has
// no nimbus driver, so the test places instances itself, as before).
func TestClusterGatewayNomadAgent(t *testing.T) {
	agent := nomadtest.Start(t, nomadtest.Options{
		SkipMessage: "NOMAD_BINARY is not set: skipping the cluster gateway against a real Nomad agent (set it to a nomad binary to run it)",
		// Nothing listens there: the agent reaches no Consul (any on the
		// host's default port included); the test registers instances itself.
		ConsulAddr: "127.0.0.1:1",
	})
	addr, nc := agent.Addr, agent.Client(t)
	job := clusterHelloJob(t)
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatalf("registering the compiled job: %v", err)
	}
	runClusterGateway(t, addr, job, func(*testing.T) {})
}

// runClusterGateway is the scenario both tests share.
func runClusterGateway(t *testing.T, nomadAddr string, job *nomadapi.Job, extra func(t *testing.T)) {
	bootstrapDir := clusterBuildHelloGo(t)
	agent := consultest.Start(t)
	cc := agent.Client(t)
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: nomadAddr, SecretID: clusterNomadToken})
	if err != nil {
		t.Fatal(err)
	}
	logs := &clusterLogs{echo: os.Stderr}
	logger := hclog.New(&hclog.LoggerOptions{Name: "e2e-cluster", Level: hclog.Info, Output: logs})
	ctx := context.Background()

	// The gateway's config as an operator writes it; Nomad and Consul come
	// from the standard environment variables, as `nimbus gateway` reads them.
	cfgPath := filepath.Join(t.TempDir(), "gateway.hcl")
	clusterWriteFile(t, cfgPath, fmt.Sprintf(`
listen          = "127.0.0.1:0"
region          = %q
account_id      = %q
invoke_key      = %q
cold_start_wait = "60s"
idle_scale_in   = "2s"
discovery       = "consul"
access_key %q {
  secret = %q
}
consul {
  check_interval = "1s"
}
`, e2eRegion, e2eAccount, e2eInvokeKey, e2eAccessKey, e2eSecretKey))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NOMAD_ADDR": nomadAddr, "NOMAD_TOKEN": clusterNomadToken, "CONSUL_HTTP_ADDR": agent.HTTPAddr}
	cfg.Environment(func(k string) string { return env[k] })
	// The gateway keeps its async queue's files under the working directory.
	t.Chdir(t.TempDir())

	gw := serveClusterGateway(t, cfg, cluster.Options{ServiceName: jobs.ServiceName}, logger, nil)
	cl, srv := gw.cl, gw.srv
	gwHost, gwPortS, _ := net.SplitHostPort(srv.Addr())
	gwPort, _ := strconv.Atoi(gwPortS)
	if cl.GatewayID() != srv.Addr() {
		t.Errorf("gateway id %q, want the bound address %s", cl.GatewayID(), srv.Addr())
	}

	// The gateway and hello-go's URL service, registered and passing.
	urlService := clusterFn + "-url"
	for _, name := range []string{"nimbus-gateway", urlService} {
		eventually(t, 30*time.Second, func() bool {
			e, _, err := cc.Health().Service(name, "", true, nil)
			return err == nil && len(e) == 1 && e[0].Service.Address == gwHost && e[0].Service.Port == gwPort
		}, name+" to pass its Consul check at the gateway's address")
	}
	// Both resolve through the agent's DNS interface (a real DNS query).
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, agent.DNSAddr)
	}}
	resolve := func(name string) string {
		var target string
		eventually(t, 20*time.Second, func() bool {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, srvs, err := res.LookupSRV(lctx, "", "", name)
			if err != nil || len(srvs) != 1 {
				return false
			}
			addrs, err := res.LookupHost(lctx, srvs[0].Target)
			if err != nil || len(addrs) != 1 {
				return false
			}
			target = net.JoinHostPort(addrs[0], strconv.Itoa(int(srvs[0].Port)))
			return true
		}, name+" to resolve through Consul DNS")
		return target
	}
	for _, name := range []string{"nimbus-gateway.service.consul", urlService + ".service.consul"} {
		if got := resolve(name); got != srv.Addr() {
			t.Fatalf("%s resolves to %s, the gateway is %s", name, got, srv.Addr())
		}
	}

	// Scale from zero: no instance yet, so the invocation parks and the
	// gateway asks Nomad for one on-demand instance.
	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + srv.Addr()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	type result struct {
		out *lambda.InvokeOutput
		err error
	}
	invoked := make(chan result, 1)
	go func() {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(clusterFn), Payload: []byte(`{"name":"cluster"}`)})
		invoked <- result{out, err}
	}()
	status := func() *nomadapi.TaskGroupScaleStatus {
		st, _, err := nc.Jobs().ScaleStatus(*job.ID, nil)
		if err != nil {
			t.Fatalf("scale status: %v", err)
		}
		g := st.TaskGroups[jobs.GroupOnDemand]
		return &g
	}
	eventually(t, 30*time.Second, func() bool { return status().Desired == 1 }, "the gateway to scale the on-demand group to 1")
	ev := clusterNewestEvent(status())
	if ev == nil || *ev.Count != 1 || ev.Meta[nomad.ScaleMetaGateway] != cl.GatewayID() || ev.Meta[nomad.ScaleMetaFunction] != clusterFn ||
		ev.Meta[nomad.ScaleMetaVersion] != jobs.LatestVersion || !strings.Contains(ev.Message, cl.GatewayID()) {
		t.Fatalf("scale-out event %+v", ev)
	}

	// "Nomad places" the allocation: a real instance from the ondemand
	// group's task config, registered as its service stanza says.
	place := clusterPlacer(t, cc, job, bootstrapDir)
	alloc := place(jobs.GroupOnDemand, "a1")
	select {
	case r := <-invoked:
		if r.err != nil {
			t.Fatalf("invoke after scale from zero: %v", r.err)
		}
		if r.out.FunctionError != nil || string(r.out.Payload) != `{"message":"hello, cluster"}` {
			t.Fatalf("invoke output %s, function error %v", r.out.Payload, aws.ToString(r.out.FunctionError))
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the parked invocation did not finish after the instance was placed")
	}

	// The function URL through the address Consul DNS gave.
	req, _ := http.NewRequest(http.MethodGet, "http://"+resolve(urlService+".service.consul")+"/hi", nil)
	req.Host = clusterFn + ".lambda-url.localhost"
	resp := mustDo(t, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.body), `"message":"hello, world"`) {
		t.Fatalf("function URL: %d %s", resp.StatusCode, resp.body)
	}

	// Idle for idle_scale_in: the gateway lowers the count it set.
	eventually(t, 60*time.Second, func() bool { return status().Desired == 0 }, "the idle gateway to scale the on-demand group to 0")
	if ev := clusterNewestEvent(status()); ev == nil || *ev.Count != 0 || ev.Meta[nomad.ScaleMetaGateway] != cl.GatewayID() ||
		ev.Meta[nomad.ScaleMetaReason] != nomad.ReasonScaleIn {
		t.Fatalf("scale-in event %+v", ev)
	}
	alloc.stop(t)

	// Another gateway raises the count; this one's next idle scale-in must
	// leave it alone (it is not the count this gateway set).
	other, err := nomad.NewScaler(nc.Jobs(), nomad.ScalerConfig{GatewayID: "other-gateway:9000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(clusterFn), Payload: []byte(`{"name":"again"}`)})
		invoked <- result{out, err}
	}()
	eventually(t, 30*time.Second, func() bool { return status().Desired == 1 }, "the gateway to scale out again")
	// As gateways share the count: a check-and-set at the index read.
	at, err := other.Count(ctx, clusterFn, jobs.LatestVersion)
	if err != nil || at.Count != 1 {
		t.Fatalf("the other gateway reads the on-demand count: %+v, %v", at, err)
	}
	if err := other.SetIf(ctx, clusterFn, jobs.LatestVersion, 2, at); err != nil {
		t.Fatalf("the other gateway's scale-out: %v", err)
	}
	alloc = place(jobs.GroupOnDemand, "a2")
	if r := <-invoked; r.err != nil || string(r.out.Payload) != `{"message":"hello, again"}` {
		t.Fatalf("second invoke: %v %+v", r.err, r.out)
	}
	eventually(t, 60*time.Second, func() bool {
		return logs.contains("leaving an on-demand count another gateway set")
	}, "the idle gateway to decline lowering the other gateway's count")
	if d := status().Desired; d != 2 {
		t.Fatalf("on-demand count %d after this gateway idled; the other gateway set 2", d)
	}
	alloc.stop(t)

	extra(t)

	// Shutdown deregisters the gateway and its URL service.
	if err := gw.Stop(); err != nil {
		t.Fatalf("gateway shutdown: %v", err)
	}
	svcs, err := cc.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 0 {
		t.Errorf("still registered after shutdown: %v", svcs)
	}
	for _, name := range []string{"nimbus-gateway", urlService} {
		if e, _, err := cc.Catalog().Service(name, "", nil); err != nil || len(e) != 0 {
			t.Errorf("catalog still lists %s after shutdown: %v %v", name, e, err)
		}
	}
}

// clusterHelloSpec loads examples/hello-go's spec.
func clusterHelloSpec(t *testing.T) *specs.Function {
	t.Helper()
	f, diags := specs.Load("../examples/hello-go/nimbus.hcl", nil)
	if diags.HasErrors() {
		t.Fatalf("loading examples/hello-go: %v", diags)
	}
	fn := f.Function(clusterFn)
	if fn == nil {
		t.Fatalf("examples/hello-go declares no function %s", clusterFn)
	}
	return fn
}

// clusterHelloJob compiles examples/hello-go's spec into its $LATEST job.
func clusterHelloJob(t *testing.T) *nomadapi.Job {
	t.Helper()
	return clusterJob(t, clusterHelloSpec(t))
}

// clusterJob compiles fn into its $LATEST job as the cluster tests deploy it.
func clusterJob(t *testing.T, fn *specs.Function) *nomadapi.Job {
	t.Helper()
	sum := sha256.Sum256([]byte("hello-go bundle"))
	job, err := jobs.Compile(fn, jobs.Options{
		ServiceProvider: jobs.ProviderConsul,
		AWSRegion:       e2eRegion, AccountID: e2eAccount,
		ArtifactBaseURL: "http://127.0.0.1:1/bundles", CodeChecksum: "sha256:" + hex.EncodeToString(sum[:]),
	})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// clusterBuildHelloGo builds examples/hello-go into a code directory
// holding bootstrap, as `nimbus deploy` packages it.
func clusterBuildHelloGo(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../examples/hello-go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "bootstrap"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building examples/hello-go: %v\n%s", err, out)
	}
	return dir
}

type clusterAlloc struct {
	serviceID string
	inst      *driverlocal.Handle
	cc        *consulapi.Client
}

func (a *clusterAlloc) stop(t *testing.T) {
	t.Helper()
	if err := a.cc.Agent().ServiceDeregister(a.serviceID); err != nil {
		t.Fatalf("deregistering %s: %v", a.serviceID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.inst.Stop(ctx); err != nil {
		t.Fatalf("stopping the instance: %v", err)
	}
}

// clusterInvokeSecret is the secret the nimbus driver hands the instance:
// the job carries none, so it follows the task's wiring — invoke_secret_file
// rendered by the task's template from the job's Nomad Variable — to the
// variable that jobs/submit writes (derived from the cluster key).
func clusterInvokeSecret(t *testing.T, job *nomadapi.Job, task *nomadapi.Task, tc *taskconfig.TaskConfig) string {
	t.Helper()
	if tc.InvokeSecret != "" || tc.InvokeSecretFile == "" {
		t.Fatalf("task config carries invoke_secret %q / invoke_secret_file %q, want only the file", tc.InvokeSecret, tc.InvokeSecretFile)
	}
	v, err := jobs.InvokeVariable(job, []byte(e2eInvokeKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range task.Templates {
		if tmpl.DestPath != nil && *tmpl.DestPath == tc.InvokeSecretFile && tmpl.EmbeddedTmpl != nil &&
			strings.Contains(*tmpl.EmbeddedTmpl, `nomadVar "`+v.Path+`"`) && strings.Contains(*tmpl.EmbeddedTmpl, "."+jobs.VariableInvokeSecret) {
			return v.Items[jobs.VariableInvokeSecret]
		}
	}
	t.Fatalf("no template renders %s from %s", tc.InvokeSecretFile, v.Path)
	return ""
}

// clusterPlacer returns a function that does what Nomad and its nimbus
// driver do for one allocation of a group: start an instance from the
// group's task config (the code directory stands in for the unpacked
// artifact) and register the group's service in Consul with the
// allocation's address, tags, meta and HTTP check.
func clusterPlacer(t *testing.T, cc *consulapi.Client, job *nomadapi.Job, codeDir string) func(group, allocID string) *clusterAlloc {
	launcher := driverlocal.NewLauncher(t.TempDir(), hclog.NewNullLogger())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = launcher.StopAll(ctx)
	})
	return func(group, allocID string) *clusterAlloc {
		t.Helper()
		var tg *nomadapi.TaskGroup
		for _, g := range job.TaskGroups {
			if *g.Name == group {
				tg = g
			}
		}
		if tg == nil || len(tg.Tasks) != 1 || len(tg.Services) != 1 || len(tg.Services[0].Checks) != 1 {
			t.Fatalf("group %s of the compiled job: %+v", group, tg)
		}
		raw, err := json.Marshal(tg.Tasks[0].Config)
		if err != nil {
			t.Fatal(err)
		}
		var tc taskconfig.TaskConfig
		if err := json.Unmarshal(raw, &tc); err != nil {
			t.Fatalf("decoding the task config: %v", err)
		}
		if err := tc.Normalize(); err != nil {
			t.Fatal(err)
		}
		secret := clusterInvokeSecret(t, job, tg.Tasks[0], &tc)
		inst, err := launcher.Launch(context.Background(), &instance.Config{
			Function: tc.Function, Version: tc.Version, Runtime: tc.Runtime, Handler: tc.Handler,
			CodeDir: codeDir, MemoryMB: tc.MemoryMB, Timeout: tc.TimeoutDuration(),
			Environments: tc.Environments, InitializationType: tc.InitializationType,
			InvokeSecret: secret, Region: tc.Region, AccountID: tc.AccountID,
		})
		if err != nil {
			t.Fatalf("launching the instance: %v", err)
		}
		svc, chk := tg.Services[0], tg.Services[0].Checks[0]
		host, portS, _ := net.SplitHostPort(inst.Addr)
		port, _ := strconv.Atoi(portS)
		id := fmt.Sprintf("_nomad-task-%s-%s-%s-%s-%s", allocID, group, tg.Tasks[0].Name, svc.Name, svc.PortLabel)
		if chk.Type != "http" || chk.Path != invokeapi.PathHealth {
			t.Fatalf("compiled check %+v", chk)
		}
		if err := cc.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
			ID: id, Name: svc.Name, Address: host, Port: port, Tags: svc.Tags, Meta: svc.Meta,
			Check: &consulapi.AgentServiceCheck{
				Name: chk.Name, HTTP: "http://" + inst.Addr + chk.Path, Interval: "1s", Timeout: "1s",
			},
		}); err != nil {
			t.Fatal(err)
		}
		return &clusterAlloc{serviceID: id, inst: inst, cc: cc}
	}
}

func clusterNewestEvent(g *nomadapi.TaskGroupScaleStatus) *nomadapi.ScalingEvent {
	var newest *nomadapi.ScalingEvent
	for i := range g.Events {
		e := &g.Events[i]
		if e.Count != nil && (newest == nil || e.Time > newest.Time) {
			newest = e
		}
	}
	return newest
}

// clusterLogs collects a process's or logger's output, copying it to echo
// when set.
type clusterLogs struct {
	echo io.Writer
	mu   sync.Mutex
	b    strings.Builder
}

func (l *clusterLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.echo != nil {
		_, _ = l.echo.Write(p)
	}
	return l.b.Write(p)
}

func (l *clusterLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *clusterLogs) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

func clusterWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// clusterNomad is an httptest double of exactly the Nomad HTTP endpoints
// the cluster catalog and scaler call — GET /v1/jobs (prefix, meta), GET
// /v1/vars (prefix), GET /v1/job/<id> (counts and JobModifyIndex), GET and
// PUT /v1/job/<id>/scale — serving one compiled job, with Nomad's
// blocking-query semantics (?index waits until the state moves past it or
// ?wait ends; every answer carries X-Nomad-Index). A scale request changes
// the group count, records a scaling event like Nomad's and bumps the
// job's modify index; one carrying another JobModifyIndex is refused with
// Nomad's error. Anything else fails the test.
type clusterNomad struct {
	t    *testing.T
	srv  *httptest.Server
	done chan struct{}

	mu       sync.Mutex
	index    uint64
	changed  chan struct{}
	job      *nomadapi.Job
	modify   uint64
	counts   map[string]int
	events   map[string][]nomadapi.ScalingEvent // newest first, as Nomad keeps them
	scales   []nomadapi.ScalingRequest
	requests []string
}

func newClusterNomad(t *testing.T, job *nomadapi.Job) *clusterNomad {
	f := &clusterNomad{
		t: t, done: make(chan struct{}), index: 100, modify: 100, changed: make(chan struct{}), job: job,
		counts: map[string]int{}, events: map[string][]nomadapi.ScalingEvent{},
	}
	for _, g := range job.TaskGroups {
		f.counts[*g.Name] = *g.Count
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.done) }) // runs first: frees blocked queries
	return f
}

func (f *clusterNomad) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *clusterNomad) scaleRequests() []nomadapi.ScalingRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]nomadapi.ScalingRequest(nil), f.scales...)
}

func (f *clusterNomad) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if tok := r.Header.Get("X-Nomad-Token"); tok != clusterNomadToken {
		f.t.Errorf("nomad request %s %s with token %q, want NOMAD_TOKEN's", r.Method, r.URL.Path, tok)
	}
	f.mu.Unlock()
	q := r.URL.Query()
	scalePath := "/v1/job/" + *f.job.ID + "/scale"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/jobs":
		if q.Get("meta") != "true" {
			f.t.Errorf("job list without meta=true: %s", r.URL)
		}
		f.block(r)
		f.mu.Lock()
		var stubs []*nomadapi.JobListStub
		if strings.HasPrefix(*f.job.ID, q.Get("prefix")) {
			stubs = append(stubs, &nomadapi.JobListStub{
				ID: *f.job.ID, Name: *f.job.Name, Namespace: *f.job.Namespace, Type: *f.job.Type,
				Status: "running", JobModifyIndex: f.modify, ModifyIndex: f.modify, Meta: f.job.Meta,
			})
		}
		f.reply(w, stubs)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/vars":
		// The catalog watches nimbus/; the event-source engine lists the
		// API-created mappings under nimbus/mappings/, the management
		// controller the API-managed functions under nimbus/functions/.
		if p := q.Get("prefix"); p != "nimbus/" && p != "nimbus/mappings/" && p != "nimbus/functions/" {
			f.t.Errorf("variables listed with prefix %q", p)
		}
		f.block(r)
		f.mu.Lock()
		f.reply(w, []*nomadapi.VariableMetadata{})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/job/"+*f.job.ID:
		f.mu.Lock()
		job := *f.job
		job.JobModifyIndex = new(f.modify)
		job.TaskGroups = nil
		for _, g := range f.job.TaskGroups {
			gc := *g
			gc.Count = new(f.counts[*g.Name])
			job.TaskGroups = append(job.TaskGroups, &gc)
		}
		f.reply(w, &job)
	case r.Method == http.MethodGet && r.URL.Path == scalePath:
		f.mu.Lock()
		st := &nomadapi.JobScaleStatusResponse{
			JobID: *f.job.ID, Namespace: *f.job.Namespace, JobModifyIndex: f.modify,
			TaskGroups: map[string]nomadapi.TaskGroupScaleStatus{},
		}
		for g, n := range f.counts {
			st.TaskGroups[g] = nomadapi.TaskGroupScaleStatus{Desired: n, Events: append([]nomadapi.ScalingEvent(nil), f.events[g]...)}
		}
		f.reply(w, st)
	case r.Method == http.MethodPut && r.URL.Path == scalePath:
		var req nomadapi.ScalingRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		group := req.Target["Group"]
		prev, ok := f.counts[group]
		if !ok || req.Count == nil || *req.Count < 0 {
			f.mu.Unlock()
			http.Error(w, "bad scale request", http.StatusBadRequest)
			return
		}
		f.scales = append(f.scales, req)
		if req.JobModifyIndex != 0 && req.JobModifyIndex != f.modify {
			f.mu.Unlock()
			http.Error(w, fmt.Sprintf("Enforcing job modify index %d: job exists with conflicting job modify index: %d",
				req.JobModifyIndex, f.modify), http.StatusInternalServerError)
			return
		}
		f.counts[group] = int(*req.Count)
		eval := fmt.Sprintf("eval-%d", len(f.scales))
		f.events[group] = append([]nomadapi.ScalingEvent{{
			Count: req.Count, PreviousCount: int64(prev), Message: req.Message, Meta: req.Meta,
			EvalID: &eval, Time: uint64(time.Now().UnixNano()),
		}}, f.events[group]...)
		f.modify = f.bumpLocked()
		f.reply(w, &nomadapi.JobRegisterResponse{EvalID: eval})
	default:
		f.t.Errorf("unexpected nomad request %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

// block waits while ?index is at or past the state's index, up to ?wait.
func (f *clusterNomad) block(r *http.Request) {
	q := r.URL.Query()
	idx, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait <= 0 {
		wait = 5 * time.Minute
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		cur, ch := f.index, f.changed
		f.mu.Unlock()
		if idx == 0 || cur > idx {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			return
		case <-r.Context().Done():
			return
		case <-f.done:
			return
		}
	}
}

func (f *clusterNomad) bumpLocked() uint64 {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
	return f.index
}

// reply writes v as JSON with the index headers; f.mu is held and released.
func (f *clusterNomad) reply(w http.ResponseWriter, v any) {
	idx := f.index
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
	w.Header().Set("X-Nomad-KnownLeader", "true")
	w.Header().Set("X-Nomad-LastContact", "0")
	_ = json.NewEncoder(w).Encode(v)
}
