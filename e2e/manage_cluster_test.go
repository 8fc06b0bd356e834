package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
)

// TestManageFunctionsOnNomad manages a function with aws-sdk-go-v2 against
// the real `nimbus gateway` binary in cluster mode, with a real Consul and
// a real Nomad agent running the nimbus driver: CreateFunction makes the
// gateway register the function's job (Pending → Active), Nomad places it
// on the first invocation, a configuration update replaces the job, a
// published version gets its own job, and DeleteFunction removes them.
func TestManageFunctionsOnNomad(t *testing.T) {
	nomadtest.Binary(t, "NOMAD_BINARY is not set: skipping the management API against a real Nomad agent (set it to a nomad binary to run it)")
	lc, nc := startClusterGateway(t)
	ctx := context.Background()
	created, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("mgmt"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String("r"),
		Code:        &types.FunctionCode{ZipFile: zipDir(t, testfn.Dir(t, "ctxcheck"))},
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "nomad"}},
	})
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	if created.State != types.StatePending {
		t.Fatalf("CreateFunction state %s", created.State)
	}
	if err := lambda.NewFunctionActiveV2Waiter(lc).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("mgmt")}, 2*time.Minute); err != nil {
		t.Fatalf("waiting for Active: %v", err)
	}
	job, _, err := nc.Jobs().Info(jobs.JobID("mgmt", jobs.LatestVersion), nil)
	if err != nil {
		t.Fatalf("the gateway registered no job for the created function: %v", err)
	}
	if job.Meta[jobs.MetaFunction] != "mgmt" {
		t.Fatalf("job meta %v", job.Meta)
	}
	started := time.Now()
	r := invokeReport(t, lc, "mgmt", "")
	t.Logf("first invocation of the API-created function (Nomad placement from zero): %s", time.Since(started).Round(time.Millisecond))
	if r.FunctionName != "mgmt" || r.Env["GREETING"] != "nomad" {
		t.Fatalf("the placed function runs with %+v", r)
	}

	// A configuration update is a new job version; the new environment
	// reaches the function once Nomad has replaced the allocation.
	if _, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("mgmt"), Environment: &types.Environment{Variables: map[string]string{"GREETING": "updated"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(lc).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("mgmt")}, 2*time.Minute); err != nil {
		t.Fatalf("waiting for the update: %v", err)
	}
	eventually(t, 2*time.Minute, func() bool { return invokeReport(t, lc, "mgmt", "").Env["GREETING"] == "updated" }, "the updated configuration to run on Nomad")

	// A published version gets its own job, and answers.
	pub, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("mgmt"), ZipFile: zipDir(t, testfn.Dir(t, "ctxcheck")), Publish: true})
	if err != nil || aws.ToString(pub.Version) != "1" {
		t.Fatalf("publish: %v %v", err, pub)
	}
	eventually(t, time.Minute, func() bool {
		_, _, err := nc.Jobs().Info(jobs.JobID("mgmt", "1"), nil)
		return err == nil
	}, "the gateway to register version 1's job")
	eventually(t, 2*time.Minute, func() bool {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mgmt"), Qualifier: aws.String("1")})
		return err == nil && aws.ToString(out.ExecutedVersion) == "1"
	}, "version 1 to answer")

	// DeleteFunction stops and purges both jobs.
	if _, err := lc.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("mgmt")}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{jobs.LatestVersion, "1"} {
		if j, _, err := nc.Jobs().Info(jobs.JobID("mgmt", v), nil); err == nil && (j.Stop == nil || !*j.Stop) {
			t.Fatalf("job %s still registered after DeleteFunction", *j.ID)
		}
	}
	if _, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("mgmt")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("GetFunction after delete: %v", err)
	}
	eventually(t, time.Minute, func() bool {
		allocs, _, err := nc.Jobs().Allocations(jobs.JobID("mgmt", jobs.LatestVersion), true, nil)
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
}

// startClusterGateway runs the real `nimbus gateway` binary in cluster mode
// with a real Consul and a real Nomad agent running the nimbus driver, and
// returns a Lambda client of its API and a client of the agent. Everything
// stops when t ends.
func startClusterGateway(t *testing.T) (*lambda.Client, *nomadapi.Client) {
	t.Helper()
	consul := consultest.Start(t)
	agent := startDriverAgent(t, consul.HTTPAddr, "nimbus-e2e-manage-")
	nc := agent.Client(t)

	// The gateway, as an operator runs it.
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
	gw.Env = append(os.Environ(), "NOMAD_ADDR="+agent.Addr, "CONSUL_HTTP_ADDR="+consul.HTTPAddr, "TMPDIR="+t.TempDir())
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

	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	return lc, nc
}
