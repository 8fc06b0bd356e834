package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/jobs"
)

// TestClusterGatewayBinary runs the real `nimbus gateway` process in
// cluster mode: Nomad and Consul from NOMAD_ADDR and CONSUL_HTTP_ADDR, the
// Nomad double serving examples/hello-go's compiled job, a real Consul
// agent. It registers itself, scales hello-go from zero through the scale
// endpoint, serves the invocation once the test places the instance, and
// deregisters when interrupted.
func TestClusterGatewayBinary(t *testing.T) {
	bin := nimbusOnce(t)
	bootstrapDir := clusterBuildHelloGo(t)
	agent := consultest.Start(t)
	cc := agent.Client(t)
	job := clusterHelloJob(t)
	fake := newClusterNomad(t, job)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gateway.hcl")
	clusterWriteFile(t, cfgPath, fmt.Sprintf(`
listen          = "127.0.0.1:0"
region          = %q
account_id      = %q
invoke_key      = %q
cold_start_wait = "60s"
access_key %q {
  secret = %q
}
consul {
  check_interval = "1s"
}
`, e2eRegion, e2eAccount, e2eInvokeKey, e2eAccessKey, e2eSecretKey))
	logs := &clusterLogs{}
	cmd := exec.Command(bin, "gateway", "--config", cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NOMAD_ADDR="+fake.srv.URL, "NOMAD_TOKEN="+clusterNomadToken, "CONSUL_HTTP_ADDR="+agent.HTTPAddr)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("nimbus gateway output:\n%s", logs.String())
		}
	})

	// The gateway announces the port it bound; Consul's check passes.
	var addr string
	eventually(t, 60*time.Second, func() bool {
		e, _, err := cc.Health().Service("nimbus-gateway", "", true, nil)
		if err != nil || len(e) != 1 {
			return false
		}
		addr = net.JoinHostPort(e[0].Service.Address, strconv.Itoa(e[0].Service.Port))
		return true
	}, "nimbus gateway to register and pass its Consul check")

	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	type result struct {
		out *lambda.InvokeOutput
		err error
	}
	invoked := make(chan result, 1)
	go func() {
		out, err := lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(clusterFn), Payload: []byte(`{"name":"binary"}`)})
		invoked <- result{out, err}
	}()
	eventually(t, 30*time.Second, func() bool {
		for _, r := range fake.scaleRequests() {
			if r.Count != nil && *r.Count == 1 && r.Target["Group"] == jobs.GroupOnDemand {
				return true
			}
		}
		return false
	}, "the gateway to ask Nomad for one on-demand instance")
	clusterPlacer(t, cc, job, bootstrapDir)(jobs.GroupOnDemand, "b1")
	select {
	case r := <-invoked:
		if r.err != nil || r.out.FunctionError != nil || string(r.out.Payload) != `{"message":"hello, binary"}` {
			t.Fatalf("invoke through nimbus gateway: %v %+v", r.err, r.out)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the parked invocation did not finish after the instance was placed")
	}

	// SIGINT: the gateway deregisters and exits cleanly.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("nimbus gateway exit: %v", exitErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("nimbus gateway did not stop on SIGINT")
	}
	for _, name := range []string{"nimbus-gateway", clusterFn + "-url"} {
		if e, _, err := cc.Catalog().Service(name, "", nil); err != nil || len(e) != 0 {
			t.Errorf("catalog still lists %s after the gateway stopped: %v %v", name, e, err)
		}
	}
}
