package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	driverlocal "github.com/nimbus-fn/nimbus/driver/local"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/nomad"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/specs"
)

// TestGatewayWithConsul runs the gateway as a cluster gateway against a real
// Consul agent: it registers itself (HTTP check on its health path) and the
// function URL as "echo-url", finds the function's instance through Consul
// health (a real instance running a real aws-lambda-go function, registered
// as Nomad registers a task's service), serves the Invoke API and the
// function URL reached through Consul DNS, and deregisters on shutdown.
func TestGatewayWithConsul(t *testing.T) {
	agent := consultest.Start(t)
	cc := agent.Client(t)
	logger := hclog.New(&hclog.LoggerOptions{Name: "e2e-consul", Level: hclog.Warn, Output: os.Stderr})
	ctx := context.Background()

	// The function's spec ($LATEST with a URL) and one real instance of it,
	// registered in Consul below the way Nomad registers the task's service
	// (ID, tags, HTTP check on the health path).
	cat, inst := echoWithURL(t, logger)
	instHost, instPortS, _ := net.SplitHostPort(inst.Addr)
	instPort, _ := strconv.Atoi(instPortS)
	const instanceID = "_nomad-task-0f3c-echo-provisioned-nimbus-invoke"
	if err := cc.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
		ID: instanceID, Name: "nimbus-echo", Address: instHost, Port: instPort,
		Tags: []string{"function=echo", "version=$LATEST", "group=" + discovery.GroupProvisioned},
		Meta: map[string]string{"function": "echo", "version": "$LATEST", "group": discovery.GroupProvisioned},
		Check: &consulapi.AgentServiceCheck{
			Name: "nimbus-health", HTTP: "http://" + inst.Addr + invokeapi.PathHealth, Interval: "1s", Timeout: "1s",
		},
	}); err != nil {
		t.Fatal(err)
	}

	// The gateway: Consul discovery, Consul registration on its bound port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gwPort := ln.Addr().(*net.TCPAddr).Port
	reg, err := consul.NewRegistrar(cc.Agent(), consul.RegistrarConfig{
		Address: "127.0.0.1", Port: gwPort, HealthPath: server.HealthPath,
		CheckInterval: time.Second, CheckTimeout: time.Second,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetURLFunctions(ctx, consul.URLFunctions(cat.Snapshot().Functions())); err != nil {
		t.Fatal(err)
	}
	cat.Watch(func(s *catalog.Snapshot) {
		if err := reg.SetURLFunctions(context.Background(), consul.URLFunctions(s.Functions())); err != nil {
			t.Errorf("syncing URL services: %v", err)
		}
	})
	src := consul.NewDiscovery(cc.Health(), consul.DiscoveryConfig{}, logger)
	defer src.Close()
	scaler := &gatewaytest.Scaler{}
	cfg := &config.Config{
		Listen: ln.Addr().String(), Region: e2eRegion, AccountID: e2eAccount, InvokeKey: e2eInvokeKey,
		AccessKeys: []config.AccessKey{{ID: e2eAccessKey, Secret: e2eSecretKey}},
		// Outside dev mode the queue's store defaults to a path relative to
		// the working directory (a Nomad task dir); keep it in the test's.
		Queue: &queue.Config{DataDir: t.TempDir()},
	}
	srv, err := server.New(cfg, server.Deps{
		Catalog: cat, Source: src, Scaler: scaler, Registrars: []server.Registrar{reg}, Logger: logger, Listener: ln,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if err := srv.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(runCtx) }()

	// Registered and passing: the gateway, then its URL service.
	eventually(t, 20*time.Second, func() bool {
		e, _, err := cc.Health().Service("nimbus-gateway", "", true, nil)
		return err == nil && len(e) == 1 && e[0].Service.Port == gwPort
	}, "the gateway to pass its Consul check")

	// The Invoke API reaches the instance found through Consul health.
	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + srv.Addr()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	eventually(t, 20*time.Second, func() bool {
		ins, err := src.Instances(ctx, "echo", "$LATEST")
		return err == nil && len(ins) == 1 && ins[0].ID == instanceID && ins[0].Address == inst.Addr
	}, "Consul health to list the instance")
	out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"via":"consul"}`)})
	if err != nil {
		t.Fatalf("invoke through the gateway: %v", err)
	}
	if string(out.Payload) != `{"via":"consul"}` || out.FunctionError != nil {
		t.Fatalf("invoke output %q, error %v", out.Payload, aws.ToString(out.FunctionError))
	}

	// echo-url.service.consul resolves to the gateway, which serves the URL.
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, agent.DNSAddr)
	}}
	var target string
	eventually(t, 20*time.Second, func() bool {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, srvs, err := res.LookupSRV(lctx, "", "", "echo-url.service.consul")
		if err != nil || len(srvs) != 1 {
			return false
		}
		addrs, err := res.LookupHost(lctx, srvs[0].Target)
		if err != nil || len(addrs) == 0 {
			return false
		}
		target = net.JoinHostPort(addrs[0], strconv.Itoa(int(srvs[0].Port)))
		return true
	}, "echo-url.service.consul to resolve")
	if target != srv.Addr() {
		t.Fatalf("echo-url resolves to %s, the gateway is %s", target, srv.Addr())
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+target+"/hello?x=1", strings.NewReader(`hi`))
	req.Host = "echo.lambda-url.localhost"
	resp := mustDo(t, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.body), `"rawPath":"/hello"`) {
		t.Fatalf("function URL via Consul DNS: %d %s", resp.StatusCode, resp.body)
	}

	// An instance that fails its check leaves the gateway's routing.
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := inst.Stop(stopCtx); err != nil {
		t.Fatalf("stopping the instance: %v", err)
	}
	cancel()
	eventually(t, 20*time.Second, func() bool {
		ins, err := src.Instances(ctx, "echo", "$LATEST")
		return err == nil && len(ins) == 0
	}, "the stopped instance to leave Consul's passing set")

	// Shutdown deregisters the gateway and its URL service.
	stop()
	if err := <-served; err != nil {
		t.Fatalf("gateway shutdown: %v", err)
	}
	svcs, err := cc.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	for id := range svcs {
		if id != instanceID {
			t.Errorf("still registered after shutdown: %s", id)
		}
	}
}

// TestCompiledJobsMatchGatewayAdapters checks that what jobs.Compile writes
// is what the gateway's cluster adapters read: job IDs, meta keys and the
// spec in meta (gateway/nomad's Catalog), and each group's invoke service
// (name, tags, health path) as Consul health discovery queries it once Nomad
// registers it.
func TestCompiledJobsMatchGatewayAdapters(t *testing.T) {
	if nomad.MetaSpec != jobs.MetaSpec || nomad.MetaFunction != jobs.MetaFunction || nomad.MetaVersion != jobs.MetaVersion ||
		nomad.LatestVersion != jobs.LatestVersion || discovery.GroupOnDemand != jobs.GroupOnDemand || discovery.GroupProvisioned != jobs.GroupProvisioned {
		t.Fatal("gateway/nomad, gateway/discovery and jobs disagree on meta keys, version or group names")
	}
	for _, c := range [][2]string{{"hello", "$LATEST"}, {"hello", "3"}, {"a_b", "12"}} {
		if id, _ := nomad.DefaultJobID(c[0], c[1]); id != jobs.JobID(c[0], c[1]) {
			t.Errorf("job ID of %s:%s: gateway %q, compiler %q", c[0], c[1], id, jobs.JobID(c[0], c[1]))
		}
	}

	// A function name that is not a DNS label exercises the service-name mapping.
	fn := &specs.Function{Name: "orders_v2", Runtime: "provided.al2023", Code: &specs.Code{Dir: "."}, MemoryMB: 128, Timeout: "3s"}
	job, err := jobs.Compile(fn, jobs.Options{
		Version: "3", ServiceProvider: jobs.ProviderConsul,
		ArtifactBaseURL: "http://127.0.0.1:1/bundles",
		CodeChecksum:    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
	})
	if err != nil {
		t.Fatal(err)
	}
	if *job.ID != "nimbus-orders_v2-3" || job.Meta[nomad.MetaFunction] != "orders_v2" || job.Meta[nomad.MetaVersion] != "3" {
		t.Fatalf("job %s meta %v", *job.ID, job.Meta)
	}
	spec, err := specs.Decode([]byte(job.Meta[nomad.MetaSpec]))
	if err != nil || spec.Name != "orders_v2" || spec.MemoryMB != 128 {
		t.Fatalf("spec in job meta: %+v, %v", spec, err)
	}

	agent := consultest.Start(t)
	cc := agent.Client(t)
	want := map[string]discovery.Instance{}
	for i, tg := range job.TaskGroups {
		if len(tg.Services) != 1 || len(tg.Services[0].Checks) != 1 {
			t.Fatalf("group %s: services %+v", *tg.Name, tg.Services)
		}
		svc, chk := tg.Services[0], tg.Services[0].Checks[0]
		// The instance's health endpoint, as the instance serves it.
		mux := http.NewServeMux()
		mux.HandleFunc(invokeapi.PathHealth, func(w http.ResponseWriter, _ *http.Request) {})
		hs := httptest.NewServer(mux)
		t.Cleanup(hs.Close)
		host, portS, _ := net.SplitHostPort(hs.Listener.Addr().String())
		port, _ := strconv.Atoi(portS)
		// Register it as Nomad's Consul integration does for the allocation.
		id := fmt.Sprintf("_nomad-task-alloc%d-%s-%s-%s-%s", i, *tg.Name, jobs.TaskName, svc.Name, svc.PortLabel)
		if err := cc.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
			ID: id, Name: svc.Name, Address: host, Port: port, Tags: svc.Tags, Meta: svc.Meta,
			Check: &consulapi.AgentServiceCheck{
				Name: chk.Name, HTTP: "http://" + hs.Listener.Addr().String() + chk.Path, Interval: "1s", Timeout: "1s",
			},
		}); err != nil {
			t.Fatal(err)
		}
		want[id] = discovery.Instance{ID: id, Address: hs.Listener.Addr().String(), Function: "orders_v2", Version: "3", Group: *tg.Name, Health: discovery.HealthPassing}
	}
	d := consul.NewDiscovery(cc.Health(), consul.DiscoveryConfig{ServiceName: jobs.ServiceName}, nil)
	defer d.Close()
	eventually(t, 20*time.Second, func() bool {
		ins, err := d.Instances(context.Background(), "orders_v2", "3")
		if err != nil || len(ins) != len(want) {
			return false
		}
		for _, in := range ins {
			if want[in.ID] != in {
				return false
			}
		}
		return true
	}, "both groups' instances of the compiled job through Consul health")
}

// echoWithURL is the local catalog of one function, echo:$LATEST with an
// AuthType NONE URL, and one real instance of it (stopped when t ends).
func echoWithURL(t testing.TB, logger hclog.Logger) (*catalog.Local, *driverlocal.Handle) {
	t.Helper()
	spec := `
function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "echo") + `" }
  url { auth = "NONE" }
}
`
	cat, _ := specCatalog(t, spec, logger)
	launcher := driverlocal.NewLauncher(t.TempDir(), logger)
	inst, err := launcher.Launch(context.Background(), &instance.Config{
		Function: "echo", Version: "$LATEST", Runtime: "provided.al2023", CodeDir: testfn.Dir(t, "echo"),
		MemoryMB: 128, Timeout: 3 * time.Second, Environments: 2,
		InvokeSecret: invokeapi.DeriveSecret([]byte(e2eInvokeKey), "echo", "$LATEST"),
		Region:       e2eRegion, AccountID: e2eAccount,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = launcher.StopAll(stopCtx)
	})
	return cat, inst
}
