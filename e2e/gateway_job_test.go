package e2e

// The gateway as a Nomad job: `nimbus render gateway` prints the job, a
// real Nomad agent (NOMAD_BINARY) validates it and runs it with raw_exec
// beside the nimbus driver, the gateway registers itself healthy in a real
// Consul, and a function deployed through the gateway's Lambda API answers
// its function URL through that gateway, over plain HTTP and through
// Consul's service mesh: a Connect-native client holding a test service's
// leaf reaches the function's "<fn>-url" service over mTLS while an
// intention allows it and gets 403 once an intention denies it.

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
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/uuid"
	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	gwconsul "github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
)

const gatewayJobSkip = "NOMAD_BINARY is not set: skipping the gateway-as-a-Nomad-job test (set it to a nomad binary to run the rendered gateway job on a real agent)"

// gatewayJobConfig is the operator's part of the gateway config, kept in
// the job's Variable with the invoke key.
var gatewayJobConfig = fmt.Sprintf(`region          = %q
account_id      = %q
cold_start_wait = "120s"
idle_scale_in   = "1h"
access_key %q {
  secret = %q
}
`, e2eRegion, e2eAccount, e2eAccessKey, e2eSecretKey)

func TestGatewayJobOnNomad(t *testing.T) {
	runGatewayJob(t, false, true)
}

// TestGatewayJobOnNomadWithACLs runs the job with ACLs on in both Nomad
// and Consul (default deny): the gateway's workload identity has only the
// policy jobs.GatewayACLPolicy bound to the job, and its Consul token,
// put in the job's Variable (--consul-token variable), only
// consul.GatewayACLPolicy; that is enough to register, scale and serve a
// function and to register the gateway and its URL service in Consul.
// This variant runs without --connect: function URLs on the plain
// listener.
func TestGatewayJobOnNomadWithACLs(t *testing.T) {
	runGatewayJob(t, true, false)
}

// TestGatewayJobOnNomadWithACLsAndConnect is the secure-by-default cluster:
// ACLs on in Nomad and Consul, --connect, Connect-native function
// instances holding the token Nomad derives from their service's workload
// identity (`nomad setup consul`), and default-deny intentions that the
// test opens one by one (gateway -> instance, web -> echo-url, web ->
// nimbus-gateway).
func TestGatewayJobOnNomadWithACLsAndConnect(t *testing.T) {
	runGatewayJob(t, true, true)
}

func runGatewayJob(t *testing.T, acl, connect bool) {
	nomadtest.Binary(t, gatewayJobSkip)
	bin := nimbusOnce(t)
	start := consultest.Start
	if acl {
		start = consultest.StartWithACLs
	}
	consul := start(t)
	cc := consul.Client(t)
	agent := startGatewayJobAgent(t, consul, acl)
	nc := agent.Client(t)
	if acl {
		policy := &nomadapi.ACLPolicy{
			Name: "nimbus-gateway", Rules: jobs.GatewayACLPolicy("default"),
			JobACL: &nomadapi.JobACL{Namespace: "default", JobID: jobs.GatewayJobID},
		}
		if _, err := nc.ACLPolicies().Upsert(policy, nil); err != nil {
			t.Fatalf("binding the gateway policy to the job: %v", err)
		}
		// The anonymous policy grants nothing: the gateway has only its
		// workload identity and the bound policy.
		anon, err := nomadapi.NewClient(&nomadapi.Config{Address: agent.Addr})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := anon.Jobs().List(nil); err == nil {
			t.Fatal("an anonymous request lists jobs: ACLs are not on")
		}
	}

	// The nimbus binary is the job's artifact, fetched by URL and checksum.
	binURL, binSum := serveGatewayBinary(t, bin)
	flags := []string{"render", "gateway", "--driver", "raw_exec", "--binary-url", binURL, "--binary-checksum", binSum,
		"--consul-address", consul.HTTPAddr, "--cpu", "200", "--memory", "256"}
	wantPut := "nomad var put -namespace default nomad/jobs/nimbus-gateway invoke_key=@invoke.key config=@gateway-secrets.hcl"
	items := nomadapi.VariableItems{jobs.GatewayItemInvokeKey: e2eInvokeKey, jobs.GatewayItemConfig: gatewayJobConfig}
	consulToken := ""
	if acl {
		flags = append(flags, "--consul-token", jobs.ConsulTokenVariable)
		wantPut += " consul_token=@consul.token"
		consulToken = consul.TokenFor(t, gwconsul.GatewayACLPolicy)
		items[jobs.GatewayItemConsulToken] = consulToken
	}
	if connect {
		flags = append(flags, "--connect")
	}
	hclJob, stderr := runNimbus(t, bin, flags...)
	if !strings.Contains(stderr, wantPut) {
		t.Errorf("render gateway does not tell how to put the job's Variable (%s):\n%s", wantPut, stderr)
	}
	jsonJob, _ := runNimbus(t, bin, append(flags, "--format", "json")...)
	for _, secret := range []string{e2eInvokeKey, e2eSecretKey, consulToken} {
		if secret != "" && (strings.Contains(hclJob, secret) || strings.Contains(jsonJob, secret)) {
			t.Fatal("the rendered gateway job holds a secret")
		}
	}
	dir := t.TempDir()
	hclPath := filepath.Join(dir, "gateway.nomad.hcl")
	if err := os.WriteFile(hclPath, []byte(hclJob), 0o644); err != nil {
		t.Fatal(err)
	}

	// The agent accepts both renderings: `nomad job validate` on the HCL,
	// /v1/validate/job on the JSON.
	if out, code := agent.CLI(t, "job", "validate", hclPath); code != 0 {
		t.Fatalf("nomad job validate (exit %d):\n%s\n--- job ---\n%s", code, out, hclJob)
	}
	var wrapped struct{ Job *nomadapi.Job }
	if err := json.Unmarshal([]byte(jsonJob), &wrapped); err != nil || wrapped.Job == nil {
		t.Fatalf("render gateway --format json: %v", err)
	}
	if v, _, err := nc.Jobs().Validate(wrapped.Job, nil); err != nil || v.Error != "" || len(v.ValidationErrors) > 0 {
		t.Fatalf("/v1/validate/job: %v %+v", err, v)
	}

	// Secrets go into the job's Variable, then the job runs.
	if _, _, err := nc.Variables().Create(&nomadapi.Variable{
		Path: jobs.VariablePath(jobs.GatewayJobID), Items: items,
	}, nil); err != nil {
		t.Fatalf("putting the gateway's Variable: %v", err)
	}
	if out, code := agent.CLI(t, "job", "run", "-detach", hclPath); code != 0 {
		t.Fatalf("nomad job run (exit %d):\n%s", code, out)
	}
	t.Cleanup(func() { stopGatewayJob(t, nc) })

	// The gateway registers itself in Consul and its check passes.
	var gwAddr string
	eventuallyEvery(t, 3*time.Minute, time.Second, func() bool {
		entries, _, err := cc.Health().Service("nimbus-gateway", "", true, nil)
		// The plain registration (with connect there is a Connect-native
		// one at the mesh port too).
		entries = slices.DeleteFunc(entries, func(e *consulapi.ServiceEntry) bool {
			return e.Service.Connect != nil && e.Service.Connect.Native
		})
		if err != nil || len(entries) != 1 {
			return false
		}
		s := entries[0].Service
		gwAddr = net.JoinHostPort(s.Address, strconv.Itoa(s.Port))
		return true
	}, "the gateway job's gateway to pass its Consul check", func() string { return gatewayAllocState(nc) })
	if host, _, _ := net.SplitHostPort(gwAddr); host != "127.0.0.1" {
		t.Fatalf("the gateway registered %s; the agent gives tasks loopback ports only", gwAddr)
	}
	// One plain registration, and with connect the gateway's own
	// Connect-native one at the mesh port; the job registers none.
	wantRegs := 1
	if connect {
		wantRegs = 2
	}
	if n := consulServiceCount(t, cc, "nimbus-gateway"); n != wantRegs {
		t.Fatalf("%d nimbus-gateway registrations, want %d (the gateway owns its registration; the job registers none)", n, wantRegs)
	}

	// A function deployed through the gateway's Lambda API, which the
	// gateway registers in Nomad through its Task API socket.
	lc := lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String("http://" + gwAddr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
	})
	ctx := context.Background()
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("echo"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String("r"),
		Code: &types.FunctionCode{ZipFile: zipDir(t, testfn.Dir(t, "echo"))},
	}); err != nil {
		t.Fatalf("CreateFunction through the gateway job: %v", err)
	}
	if err := lambda.NewFunctionActiveV2Waiter(lc).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")}, 2*time.Minute); err != nil {
		t.Fatalf("waiting for Active: %v", err)
	}
	if _, _, err := nc.Jobs().Info(jobs.JobID("echo", jobs.LatestVersion), nil); err != nil {
		t.Fatalf("the gateway registered no function job: %v", err)
	}
	if _, err := lc.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{
		FunctionName: aws.String("echo"), AuthType: types.FunctionUrlAuthTypeNone,
	}); err != nil {
		t.Fatalf("CreateFunctionUrlConfig: %v", err)
	}

	if connect {
		if acl {
			// Default deny: the gateway may call the instances, web the
			// Invoke API (gatewayJobMesh opens web -> echo-url itself).
			for src, dst := range map[string]string{"nimbus-gateway": jobs.ServiceName("echo"), "web": "nimbus-gateway"} {
				if _, err := cc.Connect().IntentionUpsert(&consulapi.Intention{SourceName: src, DestinationName: dst, Action: consulapi.IntentionActionAllow}, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		// With connect on, the plain listener serves no function URL: the
		// mesh does, under intentions (the first mesh call scales the
		// function up from zero).
		t.Run("mesh", func(t *testing.T) { gatewayJobMesh(t, cc, gwAddr) })
		return
	}
	// Its URL through the gateway: the first call scales the function up
	// from zero (Nomad places it) and waits for it.
	resp := echoURLKnown(t, gwAddr)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.body), `"rawPath":"/hello"`) {
		t.Fatalf("function URL through the gateway job: %d %s", resp.StatusCode, resp.body)
	}
	// The gateway registered the URL service with its own token.
	if n := consulServiceCount(t, cc, "echo-url"); n != 1 {
		t.Fatalf("%d echo-url registrations under Consul ACLs, want 1", n)
	}
}

// gatewayJobMesh calls the echo function's URL service "echo-url" through
// the mesh as service "web": refused on the plain listener, allowed, then
// denied by an intention; and the Invoke API through the gateway's own
// Connect-native registration.
func gatewayJobMesh(t *testing.T, cc *consulapi.Client, gwAddr string) {
	// Once the URL is known, the plain listener refuses it (403).
	resp := echoURLKnown(t, gwAddr)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("function URL on the plain listener of a connect gateway: %d %s, want 403", resp.StatusCode, resp.body)
	}
	// echo-url is Connect-native on the gateway's host at its mesh port
	// (the job's second port), not at its HTTP port.
	gwHost, gwPort, _ := net.SplitHostPort(gwAddr)
	var urlSvc *consulapi.AgentService
	eventuallyEvery(t, 30*time.Second, 200*time.Millisecond, func() bool {
		entries, _, err := cc.Health().Connect("echo-url", "", true, nil)
		if err != nil || len(entries) != 1 {
			return false
		}
		urlSvc = entries[0].Service
		return true
	}, "echo-url to be a passing Connect-native service", nil)
	if urlSvc.Connect == nil || !urlSvc.Connect.Native || urlSvc.Address != gwHost || strconv.Itoa(urlSvc.Port) == gwPort {
		t.Fatalf("echo-url registered at %s:%d (connect %+v); want Connect-native on %s at the mesh port", urlSvc.Address, urlSvc.Port, urlSvc.Connect, gwHost)
	}
	web, client := meshWebClient(t, cc, "echo-url")
	// The gateway fetches echo-url's leaf once it knows the URL; until it
	// holds it, it proves nimbus-gateway and the client refuses that.
	var lastErr error
	eventuallyEvery(t, 30*time.Second, 200*time.Millisecond, func() bool {
		var resp *http.Response
		resp, lastErr = client.Get("https://echo-url/ready")
		if lastErr != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, "the gateway to present echo-url's leaf", func() string { return fmt.Sprint(lastErr) })
	call := func() (int, string) {
		resp, err := client.Post("https://echo-url/mesh?via=web", "text/plain", strings.NewReader("from web"))
		if err != nil {
			t.Fatalf("mesh call to echo-url: %v", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	intention := func(action consulapi.IntentionAction) {
		t.Helper()
		if _, err := cc.Connect().IntentionUpsert(&consulapi.Intention{SourceName: "web", DestinationName: "echo-url", Action: action}, nil); err != nil {
			t.Fatal(err)
		}
	}

	intention(consulapi.IntentionActionAllow)
	code, body := call()
	if code != http.StatusOK || !strings.Contains(body, `"rawPath":"/mesh"`) || !strings.Contains(body, `"rawQueryString":"via=web"`) {
		t.Fatalf("allowed mesh call: %d %s", code, body)
	}

	intention(consulapi.IntentionActionDeny)
	eventuallyEvery(t, 10*time.Second, 100*time.Millisecond, func() bool {
		code, body = call()
		return code == http.StatusForbidden
	}, "the deny intention to refuse web -> echo-url", func() string { return fmt.Sprintf("last answer %d %s", code, body) })
	var lambdaErr struct{ Message string }
	if err := json.Unmarshal([]byte(body), &lambdaErr); err != nil || lambdaErr.Message != "Forbidden" {
		t.Fatalf("denied mesh call answered %q, want Lambda's URL error shape with Message Forbidden", body)
	}
	// The Invoke API, found through /v1/health/connect/nimbus-gateway.
	meshInvoke(t, context.Background(), web, cc, true)
}

// startGatewayJobAgent runs a Nomad agent (server and client) that loads
// the nimbus driver for functions and enables raw_exec for the gateway
// task, with task ports on loopback, registering in Consul at consulAddr;
// with acl, ACLs are on and the agent's client and CLI use its management
// token.
func startGatewayJobAgent(t *testing.T, consul *consultest.Agent, acl bool) *nomadtest.Agent {
	t.Helper()
	// Short: the Task API socket lives under <root>/data/alloc/<id>/<task>/secrets.
	root := nomadtest.RootDir(t, "ngw-")
	pluginDir := filepath.Join(root, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	drvCopy(t, plugintest.BuildDriver(t), filepath.Join(pluginDir, "nimbus-driver"))
	t.Cleanup(func() { nomadtest.KillLeftovers(t, root) })
	opts := nomadtest.DriverOptions(root, pluginDir)
	opts.SkipMessage = gatewayJobSkip
	opts.ConsulAddr = consul.HTTPAddr
	opts.NetworkInterface = "lo"
	if acl {
		opts.ACLToken = uuid.NewString()
		// Nomad's own Consul token (Consul's management token here), and a
		// token per Consul service from its workload identity (`nomad
		// setup consul` below).
		opts.ConsulToken = consul.Token
		opts.ConsulHCL = "  service_identity {\n    aud = [\"consul.io\"]\n    ttl = \"1h\"\n  }\n"
	}
	opts.HCL += "plugin \"raw_exec\" {\n  config {\n    enabled = true\n  }\n}\n"
	agent := nomadtest.Start(t, opts)
	nomadtest.WaitDriverHealthy(t, agent.Client(t))
	if acl {
		setup := exec.Command(os.Getenv(nomadtest.EnvBinary), "setup", "consul", "-y", "-jwks-url", agent.Addr+"/.well-known/jwks.json")
		setup.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+consul.HTTPAddr, "CONSUL_HTTP_TOKEN="+consul.Token)
		if out, err := setup.CombinedOutput(); err != nil {
			t.Fatalf("nomad setup consul: %v\n%s", err, out)
		}
	}
	return agent
}

// serveGatewayBinary serves the nimbus binary over HTTP on loopback and
// returns its URL and sha256 checksum.
func serveGatewayBinary(t *testing.T, bin string) (string, string) {
	t.Helper()
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/dl/", http.FileServer(http.Dir(filepath.Dir(bin)))))
	t.Cleanup(srv.Close)
	return srv.URL + "/dl/" + filepath.Base(bin), "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// runNimbus runs the nimbus binary and returns stdout and stderr; a
// non-zero exit fails the test.
func runNimbus(t *testing.T, bin string, args ...string) (string, string) {
	t.Helper()
	var out, errb strings.Builder
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("nimbus %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

// stopGatewayJob purges the gateway job and waits for its allocation to
// stop, so the gateway deregisters before the agents go.
func stopGatewayJob(t *testing.T, nc *nomadapi.Client) {
	if t.Failed() {
		t.Logf("gateway allocation: %s", gatewayAllocState(nc))
	}
	if _, _, err := nc.Jobs().Deregister(jobs.GatewayJobID, true, nil); err != nil {
		t.Logf("stopping the gateway job: %v", err)
		return
	}
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		allocs, _, err := nc.Jobs().Allocations(jobs.GatewayJobID, true, nil)
		if err != nil || len(allocs) == 0 {
			return
		}
		running := false
		for _, a := range allocs {
			running = running || a.ClientStatus == nomadapi.AllocClientStatusRunning || a.ClientStatus == nomadapi.AllocClientStatusPending
		}
		if !running {
			return
		}
		<-tick.C
	}
	t.Logf("the gateway allocation still runs a minute after its job was purged")
}

// gatewayAllocState describes the gateway job's allocations (task events
// and the gateway's stderr tail) for a failure message.
func gatewayAllocState(nc *nomadapi.Client) string {
	allocs, _, err := nc.Jobs().Allocations(jobs.GatewayJobID, true, nil)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, stub := range allocs {
		fmt.Fprintf(&b, "alloc %s: %s\n", stub.ID, stub.ClientStatus)
		for task, st := range stub.TaskStates {
			for _, ev := range st.Events {
				fmt.Fprintf(&b, "  %s: %s %s %s\n", task, ev.Type, ev.DisplayMessage, ev.Details["driver_error"])
			}
		}
		a, _, err := nc.Allocations().Info(stub.ID, nil)
		if err != nil {
			continue
		}
		frames, err := nc.AllocFS().Cat(a, "alloc/logs/"+jobs.GatewayTask+".stderr.0", nil)
		if err != nil {
			fmt.Fprintf(&b, "  stderr: %v\n", err)
			continue
		}
		data, _ := io.ReadAll(io.LimitReader(frames, 1<<20))
		frames.Close()
		if len(data) > 8<<10 {
			data = data[len(data)-8<<10:]
		}
		fmt.Fprintf(&b, "  stderr tail:\n%s\n", data)
	}
	return b.String()
}

func consulServiceCount(t *testing.T, cc *consulapi.Client, name string) int {
	t.Helper()
	entries, _, err := cc.Catalog().Service(name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// eventuallyEvery polls cond every interval until within passes; on
// timeout the test fails with what and, when given, detail().
func eventuallyEvery(t *testing.T, within, interval time.Duration, cond func() bool, what string, detail func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("not within %s: %s", within, what)
			if detail != nil {
				msg += "\n" + detail()
			}
			t.Fatal(msg)
		}
		<-tick.C
	}
}

// echoURLKnown posts to echo's function URL on the gateway at gwAddr until
// it answers something other than 404: the URL config reaches the
// gateway's catalog through Nomad, and the URL is unknown until then. It
// returns that first answer.
func echoURLKnown(t *testing.T, gwAddr string) response {
	t.Helper()
	var resp response
	eventuallyEvery(t, 30*time.Second, 200*time.Millisecond, func() bool {
		req, _ := http.NewRequest(http.MethodPost, "http://"+gwAddr+"/hello?x=1", strings.NewReader(`hi`))
		req.Host = "echo.lambda-url.localhost"
		resp = mustDo(t, req)
		return resp.StatusCode != http.StatusNotFound
	}, "the function URL to be known to the gateway", nil)
	return resp
}
