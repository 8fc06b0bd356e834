package coldstartbench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/specs"
)

const (
	region    = "us-east-1"
	account   = "000000000000"
	accessKey = "AKIDCOLDSTART"
	secretKey = "coldstart-secret"
	invokeKey = "coldstart-invoke-key-0123456789"
	fnName    = "cold"
	warmCalls = 20
)

// run is one cold start and its parts (zero where Nomad did not say).
type run struct {
	total, toScale, toPlaced, toStarted, toAnswer time.Duration
	// driver is the driver's own StartTask time (the "start_ms" of its
	// Instance ready event): the rest of toStarted is Nomad's client
	// (allocation and task hooks: logmon, artifact download, templates).
	driver time.Duration
	// fetch is the part of driver spent getting the code from the driver's
	// bundle cache ("fetch_ms" of its Bundles ready event; a download only
	// on a client's first start of that code).
	fetch time.Duration
	init  time.Duration // the function's Init Duration from REPORT
}

func BenchmarkColdStartFromZero(b *testing.B) {
	nomadtest.Binary(b, "NOMAD_BINARY is not set: skipping the cold-start benchmark, which needs a real Nomad agent (set it to a nomad binary to run it)")
	n := 20
	if s := os.Getenv("COLDSTART_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("COLDSTART_N=%q: want a positive count", s)
		}
		n = v
	}
	consul := consultest.Start(b)
	agent := nomadtest.StartWithDriver(b, plugintest.BuildDriver(b), consul.HTTPAddr, "nimbus-bench-coldstart-")
	nc := agent.Client(b)

	var zipped bytes.Buffer
	if _, err := bundle.Zip(testfn.Dir(b, "echo"), &zipped); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(zipped.Bytes())
	hexSum := hex.EncodeToString(sum[:])
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bundles/"+hexSum+".zip" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(zipped.Bytes())
	}))
	defer store.Close()

	var out strings.Builder
	fmt.Fprintf(&out, "\ncold start from zero on a real Nomad agent (%s), internal/testfn/echo, %d runs per provider after a first-ever start\n", agent.Bin, n)
	fmt.Fprintf(&out, "%-8s %-10s %9s %9s %9s | %9s %9s %9s %9s %9s %9s %9s | %9s\n", "provider", "", "p50", "p90", "p99",
		"→scale", "→placed", "→started", "(driver)", "(fetch)", "→answer", "init", "warm p50")
	for _, provider := range []string{jobs.ProviderConsul, jobs.ProviderNomad} {
		first, runs, warm := measure(b, provider, nc, agent.Addr, consul.HTTPAddr, store.URL+"/bundles", hexSum, n)
		totals := make([]time.Duration, len(runs))
		for i, r := range runs {
			totals[i] = r.total
		}
		part := func(f func(run) time.Duration) string {
			vs := make([]time.Duration, len(runs))
			for i, r := range runs {
				vs[i] = f(r)
			}
			return ms(pct(vs, 50))
		}
		fmt.Fprintf(&out, "%-8s %-10s %9s %9s %9s | %9s %9s %9s %9s %9s %9s %9s | %9s\n", provider, "first-ever", ms(first.total), "", "",
			ms(first.toScale), ms(first.toPlaced), ms(first.toStarted), ms(first.driver), ms(first.fetch), ms(first.toAnswer), ms(first.init), "")
		fmt.Fprintf(&out, "%-8s %-10s %9s %9s %9s | %9s %9s %9s %9s %9s %9s %9s | %9s\n", provider, fmt.Sprintf("n=%d", len(runs)),
			ms(pct(totals, 50)), ms(pct(totals, 90)), ms(pct(totals, 99)),
			part(func(r run) time.Duration { return r.toScale }), part(func(r run) time.Duration { return r.toPlaced }),
			part(func(r run) time.Duration { return r.toStarted }), part(func(r run) time.Duration { return r.driver }),
			part(func(r run) time.Duration { return r.fetch }),
			part(func(r run) time.Duration { return r.toAnswer }), part(func(r run) time.Duration { return r.init }), ms(warm))
	}
	fmt.Fprintln(&out, "parts are medians; → columns: request → Nomad's scale event → allocation created → task started → response;")
	fmt.Fprintln(&out, "(driver) is the driver's StartTask inside →started, the rest of it is Nomad's client hooks;")
	fmt.Fprintln(&out, "(fetch) is the code's part of (driver): a download on the client's first start of it (the first-ever row")
	fmt.Fprintln(&out, "of the first provider), the driver's bundle cache after that")
	fmt.Fprint(os.Stdout, out.String())
}

// measure deploys the function with provider's service registration, runs
// a gateway for it and makes 1 + n cold starts.
func measure(b *testing.B, provider string, nc *nomadapi.Client, nomadAddr, consulAddr, artifactBase, hexSum string, n int) (first run, runs []run, warm time.Duration) {
	b.Helper()
	fn := &specs.Function{Name: fnName, Runtime: "provided.al2023", Handler: "bootstrap", MemoryMB: 128,
		Timeout: "10s", EnvironmentsPerInstance: 1, Code: &specs.Code{Dir: "."}}
	job, err := jobs.Compile(fn, jobs.Options{
		ServiceProvider: provider, AWSRegion: region, AccountID: account,
		ArtifactBaseURL: artifactBase, CodeChecksum: "sha256:" + hexSum,
	})
	if err != nil {
		b.Fatal(err)
	}
	secrets, err := jobs.InvokeVariable(job, []byte(invokeKey))
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := nc.Variables().Create(secrets, nil); err != nil {
		b.Fatalf("writing the job's variable: %v", err)
	}
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		b.Fatalf("registering the job: %v", err)
	}
	defer func() {
		_, _, _ = nc.Jobs().Deregister(*job.ID, true, nil)
		_, _ = nc.Variables().Delete(secrets.Path, nil)
	}()

	cfg := &config.Config{
		Listen: "127.0.0.1:0", Region: region, AccountID: account, InvokeKey: invokeKey,
		AccessKeys:    []config.AccessKey{{ID: accessKey, Secret: secretKey}},
		ColdStartWait: "120s", IdleScaleIn: "1s", Discovery: provider,
		Consul: &config.ConsulConfig{CheckInterval: "1s"},
	}
	env := map[string]string{"NOMAD_ADDR": nomadAddr, "CONSUL_HTTP_ADDR": consulAddr}
	cfg.Environment(func(k string) string { return env[k] })
	b.Chdir(b.TempDir())
	logger := hclog.New(&hclog.LoggerOptions{Name: "bench-coldstart", Level: hclog.Warn, Output: os.Stderr})
	cl, err := cluster.New(cfg, cluster.Options{ServiceName: jobs.ServiceName}, logger)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	cl.Start()
	srv, err := server.New(cfg, cl.Deps(logger))
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	if err := srv.Start(ctx); err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { stop(); <-served }()
	lc := lambda.New(lambda.Options{
		Region: region, BaseEndpoint: aws.String("http://" + srv.Addr()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})

	for i := 0; i <= n; i++ {
		waitAtZero(b, nc, srv, *job.ID)
		r := coldStart(b, lc, nc, *job.ID)
		if i == 0 {
			first = r
		} else {
			runs = append(runs, r)
		}
	}
	var lat []time.Duration
	for range warmCalls {
		t0 := time.Now()
		invoke(b, lc)
		lat = append(lat, time.Since(t0))
	}
	return first, runs, pct(lat, 50)
}

// waitAtZero waits until the on-demand group is at 0 with no running
// allocation and the gateway routes to no instance.
func waitAtZero(b *testing.B, nc *nomadapi.Client, srv *server.Server, jobID string) {
	b.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, _, err := nc.Jobs().ScaleStatus(jobID, nil)
		allocs, _, aerr := nc.Jobs().Allocations(jobID, false, nil)
		busy := err != nil || aerr != nil || st.TaskGroups[jobs.GroupOnDemand].Desired != 0 || len(srv.Router().Instances(fnName, "$LATEST")) != 0
		for _, a := range allocs {
			if a.ClientStatus == nomadapi.AllocClientStatusRunning || a.ClientStatus == nomadapi.AllocClientStatusPending {
				busy = true
			}
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("the function did not get back to zero within 3m")
		}
		<-tick.C
	}
}

var initRE = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)

// invoke calls the function with LogType Tail and returns its REPORT
// line's Init Duration (0 when warm).
func invoke(b *testing.B, lc *lambda.Client) time.Duration {
	b.Helper()
	out, err := lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fnName), Payload: []byte(`{"n":1}`), LogType: types.LogTypeTail})
	if err != nil {
		b.Fatalf("invoke: %v", err)
	}
	if out.FunctionError != nil {
		b.Fatalf("invoke: function error %s: %s", aws.ToString(out.FunctionError), out.Payload)
	}
	tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if m := initRE.FindSubmatch(tail); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return time.Duration(v * float64(time.Millisecond))
	}
	return 0
}

// coldStart makes one request at zero and reads the parts from Nomad: the
// newest scale event, and the on-demand allocation it created.
func coldStart(b *testing.B, lc *lambda.Client, nc *nomadapi.Client, jobID string) run {
	b.Helper()
	t0 := time.Now()
	initD := invoke(b, lc)
	t1 := time.Now()
	r := run{total: t1.Sub(t0), init: initD}
	if initD == 0 {
		b.Errorf("a request at zero reported no Init Duration: it was not a cold start")
	}
	if st, _, err := nc.Jobs().ScaleStatus(jobID, nil); err == nil {
		var scaled time.Time
		for _, e := range st.TaskGroups[jobs.GroupOnDemand].Events {
			at := time.Unix(0, int64(e.Time))
			if e.Count != nil && *e.Count > 0 && !at.Before(t0.Add(-time.Second)) && (scaled.IsZero() || at.Before(scaled)) {
				scaled = at
			}
		}
		if !scaled.IsZero() {
			r.toScale = scaled.Sub(t0)
			// The client reports task states to the servers in batches:
			// wait (bounded) for the allocation's Started time to arrive.
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); <-tick.C {
				a := newestOnDemand(nc, jobID)
				if a == nil {
					continue
				}
				placed := time.Unix(0, a.CreateTime)
				r.toPlaced = placed.Sub(scaled)
				ts := a.TaskStates[jobs.TaskName]
				if ts == nil || ts.StartedAt.IsZero() {
					continue
				}
				r.toStarted = ts.StartedAt.Sub(placed)
				r.toAnswer = t1.Sub(ts.StartedAt)
				var ev []string
				for _, e := range ts.Events {
					ev = append(ev, fmt.Sprintf("%s@%s", e.Type, time.Unix(0, e.Time).Sub(placed).Round(time.Millisecond)))
					if v, err := strconv.ParseFloat(e.Details["start_ms"], 64); err == nil {
						r.driver = time.Duration(v * float64(time.Millisecond))
					}
					if v, err := strconv.ParseFloat(e.Details["fetch_ms"], 64); err == nil {
						r.fetch = time.Duration(v * float64(time.Millisecond))
					}
				}
				b.Logf("task events after the allocation was created: %s (driver start %s)", strings.Join(ev, ", "), r.driver)
				break
			}
		}
	}
	return r
}

// newestOnDemand is the job's newest on-demand allocation (nil if none).
func newestOnDemand(nc *nomadapi.Client, jobID string) *nomadapi.AllocationListStub {
	allocs, _, err := nc.Jobs().Allocations(jobID, false, nil)
	if err != nil {
		return nil
	}
	var newest *nomadapi.AllocationListStub
	for _, a := range allocs {
		if a.TaskGroup == jobs.GroupOnDemand && (newest == nil || a.CreateIndex > newest.CreateIndex) {
			newest = a
		}
	}
	return newest
}

// pct is the p-th percentile (nearest rank) of vs.
func pct(vs []time.Duration, p int) time.Duration {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64) + "ms"
}
