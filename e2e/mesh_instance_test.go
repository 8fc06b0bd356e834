package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	driverlocal "github.com/nimbus-fn/nimbus/driver/local"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/mesh"
)

// TestGatewayToInstanceMesh runs the gateway → instance hop over Consul
// Connect with a real Consul dev agent: a real aws-lambda-go instance is a
// Connect-native service (registered as Nomad registers a `connect { native
// = true }` service, with the https health check the compiler writes), the
// gateway finds it through Consul health, calls it with its nimbus-gateway
// leaf over pooled mutual-TLS connections (one handshake for many calls),
// and surfaces an intention deny as a clear ServiceException.
func TestGatewayToInstanceMesh(t *testing.T) {
	agent := consultest.Start(t)
	cc := agent.Client(t)
	logger := hclog.New(&hclog.LoggerOptions{Name: "e2e-mesh-instance", Level: hclog.Warn, Output: os.Stderr})
	ctx := context.Background()

	spec := `
function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "echo") + `" }
}
`
	cat, _ := specCatalog(t, spec, logger)

	service := jobs.ServiceName("echo")
	launcher := driverlocal.NewLauncher(t.TempDir(), logger)
	inst, err := launcher.Launch(ctx, &instance.Config{
		Function: "echo", Version: "$LATEST", Runtime: "provided.al2023", CodeDir: testfn.Dir(t, "echo"),
		MemoryMB: 128, Timeout: 3 * time.Second, Environments: 2,
		Mesh:   &instance.MeshConfig{Service: service, Address: agent.HTTPAddr},
		Region: e2eRegion, AccountID: e2eAccount,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = launcher.StopAll(stopCtx)
	})
	host, portS, _ := net.SplitHostPort(inst.Addr)
	port, _ := strconv.Atoi(portS)
	const instanceID = "_nomad-task-7a1e-echo-provisioned-nimbus-invoke"
	if err := cc.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
		ID: instanceID, Name: service, Address: host, Port: port,
		Tags:    []string{"function=echo", "version=$LATEST", "group=" + discovery.GroupProvisioned},
		Meta:    map[string]string{"function": "echo", "version": "$LATEST", "group": discovery.GroupProvisioned},
		Connect: &consulapi.AgentServiceConnect{Native: true},
		Check: &consulapi.AgentServiceCheck{
			Name: "nimbus-health", HTTP: "https://" + inst.Addr + invokeapi.PathHealth, TLSSkipVerify: true,
			Interval: "1s", Timeout: "1s",
		},
	}); err != nil {
		t.Fatal(err)
	}

	// The gateway's mesh identity; every handshake it makes is counted.
	gwSrc, err := mesh.NewSource(cc.Agent(), mesh.SourceConfig{Service: "nimbus-gateway", WaitTime: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gwSrc.Close)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := gwSrc.Ready(rctx); err != nil {
		t.Fatal(err)
	}
	var handshakes atomic.Int32
	instanceTLS := func(fn string) *tls.Config {
		c := gwSrc.ClientTLSConfig(jobs.ServiceName(fn))
		c.VerifyConnection = func(tls.ConnectionState) error { handshakes.Add(1); return nil }
		return c
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	src := consul.NewDiscovery(cc.Health(), consul.DiscoveryConfig{ServiceName: jobs.ServiceName}, logger)
	defer src.Close()
	cfg := &config.Config{
		Listen: ln.Addr().String(), Region: e2eRegion, AccountID: e2eAccount, InvokeKey: e2eInvokeKey,
		AccessKeys: []config.AccessKey{{ID: e2eAccessKey, Secret: e2eSecretKey}},
		Queue:      &queue.Config{DataDir: t.TempDir()},
	}
	srv, err := server.New(cfg, server.Deps{
		Catalog: cat, Source: src, Scaler: &gatewaytest.Scaler{}, Logger: logger, Listener: ln,
		InstanceTLS: instanceTLS,
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

	// The https check passes without a client certificate.
	eventually(t, 20*time.Second, func() bool {
		ins, err := src.Instances(ctx, "echo", "$LATEST")
		return err == nil && len(ins) == 1 && ins[0].Mesh && ins[0].Address == inst.Addr
	}, "Consul health to list the Connect-native instance as passing")

	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + srv.Addr()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	const calls = 50
	for i := range calls {
		payload := `{"n":` + strconv.Itoa(i) + `}`
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(payload)})
		if err != nil {
			t.Fatalf("invoke %d over mTLS: %v", i, err)
		}
		if string(out.Payload) != payload || out.FunctionError != nil {
			t.Fatalf("invoke %d: %q, error %v", i, out.Payload, aws.ToString(out.FunctionError))
		}
	}
	// One connection carries the calls; the router's status refresh may
	// open a second while a call holds the first.
	if n := handshakes.Load(); n < 1 || n > 2 {
		t.Fatalf("%d TLS handshakes for %d sequential calls, want 1 (or 2 with a concurrent status call)", n, calls)
	}
	t.Logf("%d calls, %d TLS handshakes", calls, handshakes.Load())

	// An intention deny: the instance refuses, the gateway says why.
	if _, err := cc.Connect().IntentionUpsert(&consulapi.Intention{
		SourceName: "nimbus-gateway", DestinationName: service, Action: consulapi.IntentionActionDeny,
	}, nil); err != nil {
		t.Fatal(err)
	}
	var last error
	eventually(t, 20*time.Second, func() bool {
		_, last = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)})
		var se *types.ServiceException
		return errors.As(last, &se)
	}, "the deny to reach the instance")
	if !strings.Contains(last.Error(), "consul intentions deny nimbus-gateway calling "+service) {
		t.Fatalf("denied invoke: %v, want a ServiceException naming the intention", last)
	}
	if _, err := cc.Connect().IntentionDeleteExact("nimbus-gateway", service, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"again":1}`)})
		return err == nil && string(out.Payload) == `{"again":1}`
	}, "calls to work again once the deny is gone")

	stop()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
