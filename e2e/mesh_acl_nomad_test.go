package e2e

// Connect-native function instances on a real Nomad agent against a Consul
// with ACLs on (default deny): the compiled job holds no token and no
// invoke secret; Nomad's Consul workload identity for services (the
// agent's consul { service_identity { … } } and `nomad setup consul`)
// gives the task a service-identity token for nimbus-<fn>, with which the
// instance fetches its leaf and asks about intentions; a connect gateway
// holding only the gateway policy's token (token_file) calls it over
// mutual TLS once an intention allows nimbus-gateway -> nimbus-<fn>.

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/config"
	gwconsul "github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/jobs"
)

func TestConnectInstanceOnNomadWithConsulACLs(t *testing.T) {
	nomadtest.Binary(t, "NOMAD_BINARY is not set: skipping Connect-native instances on Nomad with Consul ACLs (set it to a nomad binary to run it)")
	consul := consultest.StartWithACLs(t)
	cc := consul.Client(t)

	storeURL, hexSum := serveHelloBundle(t)

	// Nomad registers services with its own token and derives a token per
	// Connect-native service from the service's workload identity.
	agent := nomadtest.StartWithDriverOptions(t, plugintest.BuildDriver(t), consul.HTTPAddr, "nimbus-e2e-connacl-", func(o *nomadtest.Options) {
		o.ConsulToken = consul.Token
		o.ConsulHCL = "  service_identity {\n    aud = [\"consul.io\"]\n    ttl = \"1h\"\n  }\n"
	})
	nc := agent.Client(t)
	setup := exec.Command(os.Getenv(nomadtest.EnvBinary), "setup", "consul", "-y", "-jwks-url", agent.Addr+"/.well-known/jwks.json")
	setup.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+consul.HTTPAddr, "CONSUL_HTTP_TOKEN="+consul.Token)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("nomad setup consul: %v\n%s", err, out)
	}

	fn := clusterHelloSpec(t)
	job, err := jobs.Compile(fn, jobs.Options{
		ServiceProvider: jobs.ProviderConsul, AWSRegion: e2eRegion, AccountID: e2eAccount,
		ArtifactBaseURL: storeURL, CodeChecksum: "sha256:" + hexSum, Connect: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := jobs.InvokeVariable(job, []byte(e2eInvokeKey)); err != nil || v != nil {
		t.Fatalf("a Connect job's invoke variable: %+v %v", v, err)
	}
	js, err := jobs.RenderJSON(job)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), consul.Token) || strings.Contains(string(js), "nomadVar") {
		t.Fatal("the compiled Connect job carries a token or reads a Variable")
	}
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatalf("registering the compiled job: %v", err)
	}
	t.Cleanup(func() { _, _, _ = nc.Jobs().Deregister(*job.ID, true, nil) })

	// The gateway, with only the gateway policy's token.
	tokFile := filepath.Join(t.TempDir(), "consul.token")
	if err := os.WriteFile(tokFile, []byte(consul.TokenFor(t, gwconsul.GatewayACLPolicy)), 0o400); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Listen: "127.0.0.1:0", Region: e2eRegion, AccountID: e2eAccount, InvokeKey: e2eInvokeKey,
		AccessKeys:    []config.AccessKey{{ID: e2eAccessKey, Secret: e2eSecretKey}},
		ColdStartWait: "120s", IdleScaleIn: "1h",
		Consul:  &config.ConsulConfig{Address: consul.HTTPAddr, TokenFile: tokFile, CheckInterval: "1s"},
		Nomad:   &config.NomadConfig{Address: agent.Addr},
		Connect: &config.ConnectConfig{Enabled: true, Listen: ":0"},
	}
	meshLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Environment(func(string) string { return "" })
	t.Chdir(t.TempDir())
	logger := hclog.New(&hclog.LoggerOptions{Name: "e2e-connect-acl", Level: hclog.Info, Output: os.Stderr})
	gw := serveClusterGateway(t, cfg, cluster.Options{ServiceName: jobs.ServiceName, MeshListener: meshLn}, logger, nil)
	srv := gw.srv

	// Default deny: the gateway may call the function's instances only
	// once an intention says so.
	if _, err := cc.Connect().IntentionUpsert(&consulapi.Intention{
		SourceName: "nimbus-gateway", DestinationName: jobs.ServiceName(clusterFn), Action: consulapi.IntentionActionAllow,
	}, nil); err != nil {
		t.Fatal(err)
	}
	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + srv.Addr()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	out, err := lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(clusterFn), Payload: []byte(`{"name":"acl"}`)})
	if err != nil {
		t.Fatalf("invoke of a Connect-native instance under Consul ACLs: %v", err)
	}
	if out.FunctionError != nil || string(out.Payload) != `{"message":"hello, acl"}` {
		t.Fatalf("invoke output %s, function error %v", out.Payload, aws.ToString(out.FunctionError))
	}
	drvEventually(t, 30*time.Second, "Consul to list the instance Connect-native and passing", func() bool {
		e, _, err := cc.Health().Connect(jobs.ServiceName(clusterFn), "", true, nil)
		return err == nil && len(e) == 1 && e[0].Service.Connect != nil && e[0].Service.Connect.Native
	})
	// The instance asks Consul with its own token: a deny reaches it.
	if _, err := cc.Connect().IntentionUpsert(&consulapi.Intention{
		SourceName: "nimbus-gateway", DestinationName: jobs.ServiceName(clusterFn), Action: consulapi.IntentionActionDeny,
	}, nil); err != nil {
		t.Fatal(err)
	}
	drvEventually(t, 30*time.Second, "the deny intention to make the instance refuse the gateway", func() bool {
		_, err := lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(clusterFn), Payload: []byte(`{}`)})
		return err != nil && strings.Contains(err.Error(), "refused this gateway")
	})
	if err := gw.Stop(); err != nil {
		t.Fatalf("gateway shutdown: %v", err)
	}
}
