package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/jobs"
)

// TestClusterGatewayNomadPlacesInstances needs nothing standing in: a real
// Nomad agent with the nimbus driver and Consul integration, a real Consul
// agent, and the gateway wired by gateway/cluster. An invocation with no
// instance makes the gateway scale hello-go's ondemand group from zero;
// Nomad places the allocation (the code bundle fetched by its artifact
// block), the driver starts the instance, Nomad registers its service and
// check in Consul, the gateway finds it through Consul health and the
// parked invocation is answered. Idle, the gateway scales the group back
// to zero and Nomad stops the allocation.
//
// It runs twice: instances registered in Consul (discovery = "consul"), and
// in Nomad's own service catalog (provider "nomad", discovery = "nomad").
func TestClusterGatewayNomadPlacesInstances(t *testing.T) {
	nomadtest.Binary(t, "NOMAD_BINARY is not set: skipping the cluster gateway with Nomad placing real allocations (set it to a nomad binary to run it)")
	for _, provider := range []string{jobs.ProviderConsul, jobs.ProviderNomad} {
		t.Run(provider, func(t *testing.T) { clusterNomadPlaces(t, provider, false, false) })
	}
	// Connect-native instances: the driver takes the agent Nomad names in
	// the task's environment, the instance serves mutual TLS with its
	// leaf, and the gateway (connect enabled) calls it with its own.
	t.Run("consul-connect", func(t *testing.T) { clusterNomadPlaces(t, jobs.ProviderConsul, false, true) })
	// An operator scales the on-demand group to 0 behind the gateway's back
	// (nomad job scale): the gateway still believes the count it set, and
	// the next call must get capacity anyway (issue 11, seen on Nomad 2.0.5).
	t.Run("outside-scale-in", func(t *testing.T) { clusterNomadPlaces(t, jobs.ProviderNomad, true, false) })
}

func clusterNomadPlaces(t *testing.T, provider string, outsideScaleIn, connect bool) {
	consul := consultest.Start(t)
	cc := consul.Client(t)

	storeURL, hexSum := serveHelloBundle(t)

	// Nomad with the nimbus driver, registering services in that Consul.
	agent := startDriverAgent(t, consul.HTTPAddr, "nimbus-e2e-cluster-")
	nc := agent.Client(t)

	fn := clusterHelloSpec(t)
	job, err := jobs.Compile(fn, jobs.Options{
		ServiceProvider: provider,
		AWSRegion:       e2eRegion, AccountID: e2eAccount,
		ArtifactBaseURL: storeURL, CodeChecksum: "sha256:" + hexSum,
		Connect: connect,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The job holds no invoke secret: its tasks render it from the job's
	// Nomad Variable, which must exist first (as nimbus deploy writes it).
	// A Connect-native job reads none, so it has no Variable.
	secrets, err := jobs.InvokeVariable(job, []byte(e2eInvokeKey))
	if err != nil {
		t.Fatal(err)
	}
	if connect != (secrets == nil) {
		t.Fatalf("connect %t: invoke-secret variable %+v", connect, secrets)
	}
	if secrets != nil {
		if _, _, err := nc.Variables().Create(secrets, nil); err != nil {
			t.Fatalf("writing the job's variable: %v", err)
		}
	}
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatalf("registering the compiled job: %v", err)
	}
	t.Cleanup(func() { _, _, _ = nc.Jobs().Deregister(*job.ID, true, nil) })

	// The gateway.
	idleScaleIn := "3s"
	if outsideScaleIn {
		idleScaleIn = "1h" // the gateway must not lower the count itself
	}
	cfg := &config.Config{
		Listen: "127.0.0.1:0", Region: e2eRegion, AccountID: e2eAccount, InvokeKey: e2eInvokeKey,
		AccessKeys:    []config.AccessKey{{ID: e2eAccessKey, Secret: e2eSecretKey}},
		ColdStartWait: "120s", IdleScaleIn: idleScaleIn, Discovery: provider,
		Consul: &config.ConsulConfig{CheckInterval: "1s"},
	}
	opts := cluster.Options{ServiceName: jobs.ServiceName}
	if connect {
		// The mesh listener is bound here (connect listen only has to
		// differ from the plain one to pass validation).
		cfg.Connect = &config.ConnectConfig{Enabled: true, Listen: ":0"}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts.MeshListener = ln
	}
	env := map[string]string{"NOMAD_ADDR": agent.Addr, "CONSUL_HTTP_ADDR": consul.HTTPAddr}
	cfg.Environment(func(k string) string { return env[k] })
	t.Chdir(t.TempDir())
	logger := hclog.New(&hclog.LoggerOptions{Name: "e2e-cluster-nomad", Level: hclog.Info, Output: os.Stderr})
	gw := serveClusterGateway(t, cfg, opts, logger, nil)
	srv := gw.srv

	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + srv.Addr()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	started := time.Now()
	out, err := lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(clusterFn), Payload: []byte(`{"name":"nomad"}`)})
	if err != nil {
		t.Fatalf("invoke with scale from zero through Nomad: %v", err)
	}
	// Reported, not asserted: scheduling, artifact fetch, driver start and
	// the service registration lie on this path (not Consul's first check:
	// the gateway probes a registered instance itself).
	t.Logf("scale from zero through Nomad (%s services): first invocation answered after %s", provider, time.Since(started).Round(time.Millisecond))
	if out.FunctionError != nil || string(out.Payload) != `{"message":"hello, nomad"}` {
		t.Fatalf("invoke output %s, function error %v", out.Payload, aws.ToString(out.FunctionError))
	}
	running := func() int {
		allocs, _, err := nc.Jobs().Allocations(*job.ID, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range allocs {
			if a.TaskGroup == jobs.GroupOnDemand && a.ClientStatus == nomadapi.AllocClientStatusRunning {
				n++
			}
		}
		return n
	}
	// The client reports the allocation running in its next status batch.
	drvEventually(t, 30*time.Second, "Nomad to report one running ondemand allocation", func() bool { return running() == 1 })
	if provider == jobs.ProviderConsul {
		// The gateway routed to the instance on its own probe, possibly
		// before Consul's first check of it ran; that check passes too.
		drvEventually(t, 30*time.Second, "Consul's check of the placed instance to pass", func() bool {
			entries, _, err := cc.Health().Service(jobs.ServiceName(clusterFn), "group="+jobs.GroupOnDemand, true, nil)
			return err == nil && len(entries) == 1 &&
				(!connect || entries[0].Service.Connect != nil && entries[0].Service.Connect.Native)
		})
	} else {
		regs, _, err := nc.Services().Get(jobs.ServiceName(clusterFn), nil)
		if err != nil || len(regs) != 1 {
			t.Fatalf("Nomad's registration of the placed instance: %v %v", regs, err)
		}
	}
	// The gateway registers itself in Consul either way (with connect a
	// second time, Connect-native at its mesh listener).
	drvEventually(t, 30*time.Second, "the gateway to pass its Consul check", func() bool {
		e, _, err := cc.Health().Service("nimbus-gateway", "", true, nil)
		want := 1
		if connect {
			want = 2
		}
		return err == nil && len(e) == want
	})

	if outsideScaleIn {
		zero := 0
		if _, _, err := nc.Jobs().Scale(*job.ID, jobs.GroupOnDemand, &zero, "operator scales in", false, nil, nil); err != nil {
			t.Fatalf("nomad job scale %s %s 0: %v", *job.ID, jobs.GroupOnDemand, err)
		}
		drvEventually(t, 60*time.Second, "Nomad to stop the allocation", func() bool { return running() == 0 })
		started := time.Now()
		out, err := lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(clusterFn), Payload: []byte(`{"name":"again"}`)})
		if err != nil || string(out.Payload) != `{"message":"hello, again"}` {
			t.Fatalf("invoke after an outside scale-in: %v", err)
		}
		t.Logf("after an outside scale-in to 0: answered after %s", time.Since(started).Round(time.Millisecond))
		if err := gw.Stop(); err != nil {
			t.Fatalf("gateway shutdown: %v", err)
		}
		return
	}
	// Idle: back to zero, and Nomad stops the allocation.
	drvEventually(t, 90*time.Second, "the idle gateway to scale to zero and Nomad to stop the allocation", func() bool {
		st, _, err := nc.Jobs().ScaleStatus(*job.ID, nil)
		return err == nil && st.TaskGroups[jobs.GroupOnDemand].Desired == 0 && running() == 0
	})
	if err := gw.Stop(); err != nil {
		t.Fatalf("gateway shutdown: %v", err)
	}
}

// serveHelloBundle serves the hello-go bundle as the artifact store would,
// until the test ends: the base URL of its bundles and its sha256 in hex.
func serveHelloBundle(t *testing.T) (baseURL, hexSum string) {
	bundle := clusterZipBootstrap(t, clusterBuildHelloGo(t))
	sum := sha256.Sum256(bundle)
	hexSum = hex.EncodeToString(sum[:])
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bundles/"+hexSum+".zip" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		_, _ = w.Write(bundle)
	}))
	t.Cleanup(store.Close)
	return store.URL + "/bundles", hexSum
}

// clusterZipBootstrap packages a code directory's bootstrap as the zip
// bundle nimbus deploy uploads.
func clusterZipBootstrap(t *testing.T, dir string) []byte {
	t.Helper()
	boot, err := os.ReadFile(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(boot); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
