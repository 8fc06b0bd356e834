package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/autoscaler/harness"
	"github.com/nimbus-fn/nimbus/autoscaler/policy"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
)

// TestProvisionedConcurrencyChain runs issue 8's whole chain with nothing
// standing in: a real Nomad agent with the nimbus driver and Consul, a real
// Consul agent, the built `nimbus gateway` in cluster mode, `nimbus deploy`
// uploading the code to the gateway's artifact store and registering the
// compiled job, and the real Nomad Autoscaler agent loading our APM and
// strategy plugins. The provisioned floor is warm before any request, six
// clients calling a 300 ms function push the group above its floor through
// autoscaler scale events (the load runs until the added instance serves,
// bounded by that wait), and it returns to the floor once they stop.
//
// The compiler writes evaluation_interval = 10s and cooldown = 1m and has no
// option to change them, so the test shortens them (and the check's
// query_window) on the deployed job through Nomad's API before the
// autoscaler starts; the check, source, strategy and bounds stay as
// `nimbus deploy` registered them. The Nomad agent is a single-node server
// and client started as the other driver tests start it (drvAgentOptions),
// not -dev.
func TestProvisionedConcurrencyChain(t *testing.T) {
	asBin := os.Getenv("NOMAD_AUTOSCALER_BINARY")
	if os.Getenv(nomadtest.EnvBinary) == "" || asBin == "" {
		t.Skip("NOMAD_BINARY and NOMAD_AUTOSCALER_BINARY must both be set to run the provisioned-concurrency chain (nomad agent with the nimbus driver + Consul + nimbus gateway + nimbus deploy + nomad-autoscaler with our plugins)")
	}
	const fn = "chain"
	jobID := jobs.JobID(fn, jobs.LatestVersion)
	bin := nimbusOnce(t)
	code := testfn.Dir(t, "sleep")

	consul := consultest.Start(t)
	cc := consul.Client(t)

	// Nomad with the nimbus driver, registering services in that Consul.
	agent := startDriverAgent(t, consul.HTTPAddr, "nimbus-e2e-chain-")
	nc := agent.Client(t)

	// The gateway process, in cluster mode against both agents.
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gateway.hcl")
	clusterWriteFile(t, cfgPath, fmt.Sprintf(`
listen          = "127.0.0.1:0"
region          = %q
account_id      = %q
invoke_key      = %q
cold_start_wait = "120s"
idle_scale_in   = "3s"
access_key %q {
  secret = %q
}
consul {
  check_interval = "1s"
}
`, e2eRegion, e2eAccount, e2eInvokeKey, e2eAccessKey, e2eSecretKey))
	gwLogs := &clusterLogs{}
	gwCmd := exec.Command(bin, "gateway", "--config", cfgPath)
	gwCmd.Dir = dir
	gwCmd.Env = append(os.Environ(), "NOMAD_ADDR="+agent.Addr, "CONSUL_HTTP_ADDR="+consul.HTTPAddr)
	gwCmd.Stdout, gwCmd.Stderr = gwLogs, gwLogs
	if err := gwCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = gwCmd.Process.Kill()
		_ = gwCmd.Wait()
		if t.Failed() {
			t.Logf("nimbus gateway output:\n%s", gwLogs.String())
		}
	})
	var gwAddr string
	eventually(t, 60*time.Second, func() bool {
		e, _, err := cc.Health().Service("nimbus-gateway", "", true, nil)
		if err != nil || len(e) != 1 {
			return false
		}
		gwAddr = net.JoinHostPort(e[0].Service.Address, strconv.Itoa(e[0].Service.Port))
		return true
	}, "nimbus gateway to register and pass its Consul check")

	// nimbus deploy through the gateway's management API: the gateway
	// stores the function and registers its job in Nomad.
	specDir := t.TempDir()
	clusterWriteFile(t, filepath.Join(specDir, "nimbus.hcl"), fmt.Sprintf(`
function %q {
  runtime   = "provided.al2023"
  handler   = "bootstrap"
  memory_mb = 128
  timeout   = "10s"
  code {
    dir = %q
  }
  provisioned_concurrency {
    min                = 1
    max                = 3
    target_utilization = 0.5
  }
}
`, fn, code))
	deploy := exec.Command(bin, "deploy", "--endpoint", "http://"+gwAddr, specDir)
	deploy.Dir = specDir
	deploy.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+e2eAccessKey, "AWS_SECRET_ACCESS_KEY="+e2eSecretKey, "AWS_REGION="+e2eRegion)
	if out, err := deploy.CombinedOutput(); err != nil {
		t.Fatalf("nimbus deploy: %v\n%s", err, out)
	} else {
		t.Logf("nimbus deploy:\n%s", out)
	}
	t.Cleanup(func() { chainStopJob(t, nc, jobID) })
	chainShortenPolicy(t, nc, jobID)

	// The floor is warm before any request: the gateway counts one
	// provisioned environment, and the first invocation meets it
	// initialised (no Init Duration in its REPORT line, as Lambda reports
	// provisioned-concurrency environments). The sleep function does not
	// echo its environment, so the initialization type is read from the
	// task config Nomad runs.
	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + gwAddr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	desired := func(group string) int {
		st, _, err := nc.Jobs().ScaleStatus(jobID, nil)
		if err != nil {
			return -1
		}
		return st.TaskGroups[group].Desired
	}
	provisioned := func() int { return desired(jobs.GroupProvisioned) }
	eventually(t, 120*time.Second, func() bool {
		return provisioned() >= 1 && chainGauge(gwAddr, fn) >= 1
	}, "the provisioned floor to be placed and counted by the gateway")
	out, err := lc.Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String(fn), Payload: []byte(`{"ms":10}`), LogType: types.LogTypeTail,
	})
	if err != nil || out.FunctionError != nil || string(out.Payload) != `"slept"` {
		t.Fatalf("invoking the warm floor: %v %+v", err, out)
	}
	tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if !strings.Contains(string(tail), "REPORT") || strings.Contains(string(tail), "Init Duration") {
		t.Fatalf("first invocation did not meet an initialised provisioned environment:\n%s", tail)
	}
	// No on-demand instance was asked for, so the provisioned one answered,
	// and Nomad runs it with the provisioned initialization type.
	if n := desired(jobs.GroupOnDemand); n != 0 {
		t.Fatalf("the first invocation scaled the ondemand group to %d instead of using the warm floor", n)
	}
	chainCheckInitType(t, nc, jobID)

	// The autoscaler agent, reading the deployed job's policy from Nomad.
	asPlugins := t.TempDir()
	for _, p := range []string{harness.MustBuild(t, policy.APMDriver), harness.MustBuild(t, policy.StrategyDriver)} {
		if err := os.Symlink(p, filepath.Join(asPlugins, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	asLog := startAutoscaler(t, asBin, agent.Addr, asPlugins, gwAddr, "")

	// Load: six clients calling the 300 ms function until the autoscaler
	// has raised the group (bounded by the wait below).
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	for range 6 {
		wg.Go(func() {
			for ctx.Err() == nil {
				out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"ms":300}`)})
				if ctx.Err() != nil {
					return
				}
				calls.Add(1)
				if err != nil || out.FunctionError != nil {
					failures.Add(1)
				}
			}
		})
	}
	// Raised, and the added instance placed, started and counted by the
	// gateway as a provisioned environment.
	eventually(t, 120*time.Second, func() bool {
		return provisioned() > 1 && chainGauge(gwAddr, fn) > 1
	}, "the autoscaler to raise the provisioned group under load and the gateway to count the added environment")
	stopLoad()
	wg.Wait()
	t.Logf("load: %d calls, %d failed; provisioned count %d, gateway gauge %v when the load stopped",
		calls.Load(), failures.Load(), provisioned(), chainGauge(gwAddr, fn))
	if failures.Load() > 0 {
		t.Errorf("%d of %d invocations under load failed", failures.Load(), calls.Load())
	}

	// Both moves were made by the autoscaler: Nomad's scale events for the
	// group carry a count above the floor and one back at it. Nomad writes
	// a scale request's new count and its event in two raft entries, so the
	// event is polled for too.
	events := func() (up, down bool, evs []nomadapi.ScalingEvent) {
		st, _, err := nc.Jobs().ScaleStatus(jobID, nil)
		if err != nil {
			return false, false, nil
		}
		evs = st.TaskGroups[jobs.GroupProvisioned].Events
		for _, ev := range evs {
			if ev.Count == nil || ev.Error {
				continue
			}
			up = up || *ev.Count > 1
			down = down || (*ev.Count == 1 && ev.PreviousCount > 1)
		}
		return up, down, evs
	}
	eventually(t, 120*time.Second, func() bool {
		_, down, _ := events()
		return provisioned() == 1 && down
	}, "the autoscaler to return the provisioned group to its floor once idle")
	up, _, evs := events()
	for _, ev := range evs {
		if ev.Count != nil {
			t.Logf("scale event: count %d from %d: %s", *ev.Count, ev.PreviousCount, ev.Message)
		}
	}
	if !up {
		t.Errorf("scale events of %s/%s show no autoscaler move above the floor: %+v", jobID, jobs.GroupProvisioned, evs)
	}
	if log := asLog(); strings.Contains(log, "scale direction is unknown") || strings.Contains(log, "no metrics available") {
		t.Errorf("autoscaler reported protocol errors:\n%s", log)
	}
}

// chainShortenPolicy rewrites the deployed provisioned group's policy
// timings (evaluation_interval 1s, cooldown 2s, query_window 5s) and
// re-registers the job, leaving everything else as deployed.
func chainShortenPolicy(t *testing.T, nc *nomadapi.Client, jobID string) {
	t.Helper()
	job, _, err := nc.Jobs().Info(jobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var patched bool
	for _, g := range job.TaskGroups {
		if g.Name == nil || *g.Name != jobs.GroupProvisioned || g.Scaling == nil {
			continue
		}
		p := g.Scaling.Policy
		if p["evaluation_interval"] == nil || p["cooldown"] == nil {
			t.Fatalf("deployed policy has no evaluation_interval or cooldown: %v", p)
		}
		p["evaluation_interval"], p["cooldown"] = "1s", "2s"
		checks, _ := p["check"].([]any)
		for _, c := range checks {
			byName, _ := c.(map[string]any)
			blocks, _ := byName[jobs.CheckName].([]any)
			for _, b := range blocks {
				if body, ok := b.(map[string]any); ok && body["source"] == jobs.APMSource {
					body["query_window"] = "5s"
					patched = true
				}
			}
		}
	}
	if !patched {
		t.Fatalf("no %s check with source %s in the deployed job", jobs.CheckName, jobs.APMSource)
	}
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatalf("re-registering with short policy timings: %v", err)
	}
}

// chainStopJob deregisters the job and waits (bounded) for Nomad to stop
// its allocations, so the agent does not shut down with tasks running and
// leave their log monitors behind.
func chainStopJob(t *testing.T, nc *nomadapi.Client, jobID string) {
	t.Helper()
	if _, _, err := nc.Jobs().Deregister(jobID, false, nil); err != nil {
		t.Logf("deregistering %s: %v", jobID, err)
		return
	}
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for ; ; <-tick.C {
		allocs, _, err := nc.Jobs().Allocations(jobID, true, nil)
		live := 0
		for _, a := range allocs {
			if a.ClientStatus == nomadapi.AllocClientStatusRunning || a.ClientStatus == nomadapi.AllocClientStatusPending {
				live++
			}
		}
		if err == nil && live == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("%s still has %d live allocations after deregistering (%v)", jobID, live, err)
			return
		}
	}
}

// chainCheckInitType checks that the deployed provisioned task starts its
// environments with initialization type provisioned-concurrency (what the
// instance hands the function as AWS_LAMBDA_INITIALIZATION_TYPE).
func chainCheckInitType(t *testing.T, nc *nomadapi.Client, jobID string) {
	t.Helper()
	job, _, err := nc.Jobs().Info(jobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range job.TaskGroups {
		if g.Name != nil && *g.Name == jobs.GroupProvisioned && len(g.Tasks) == 1 {
			if got := g.Tasks[0].Config["initialization_type"]; got != taskconfig.InitProvisioned {
				t.Fatalf("provisioned task initialization_type = %v, want %s", got, taskconfig.InitProvisioned)
			}
			return
		}
	}
	t.Fatalf("job %s has no provisioned group with one task", jobID)
}

// chainGauge reads the gateway's provisioned-environment gauge for fn, or
// -1 when it cannot.
func chainGauge(gwAddr, fn string) float64 {
	resp, err := http.Get("http://" + gwAddr + server.MetricsPath)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, "nimbus_environments{") && strings.Contains(line, `function="`+fn+`"`) && strings.Contains(line, `group="provisioned"`) {
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				v, err := strconv.ParseFloat(line[i+1:], 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return -1
}
