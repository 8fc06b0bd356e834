package e2e

// Provisioned concurrency end to end: our autoscaler plugins against a real
// Consul (gateway discovery), and against a real Nomad Autoscaler agent
// scaling a real Nomad job's provisioned group.

import (
	"context"
	"encoding/json"
	"fmt"
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

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nimbus-fn/nimbus/autoscaler/harness"
	"github.com/nimbus-fn/nimbus/autoscaler/policy"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
)

// metricsGateway exports the two gauges our APM reads, through a real
// client_golang registry, on a loopback port — the gateway's /metrics as far
// as the autoscaler is concerned.
type metricsGateway struct {
	envs, inflight *prometheus.GaugeVec
	srv            *httptest.Server
}

func newMetricsGateway(t *testing.T) *metricsGateway {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := &metricsGateway{
		envs:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nimbus_environments", Help: "Environments available."}, []string{"function", "version", "group"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nimbus_in_flight", Help: "Invocations in flight."}, []string{"function", "version", "group"}),
	}
	reg.MustRegister(g.envs, g.inflight)
	g.srv = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *metricsGateway) set(fn, ver string, envs, inflight float64) {
	g.envs.WithLabelValues(fn, ver, "provisioned").Set(envs)
	g.inflight.WithLabelValues(fn, ver, "provisioned").Set(inflight)
}

func (g *metricsGateway) hostPort(t *testing.T) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(strings.TrimPrefix(g.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return h, port
}

// eventuallyAS polls cond until it holds or the deadline passes.
func eventuallyAS(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %s (last: %s)", what, timeout, last)
		}
		<-tick.C
	}
}

// The APM plugin process finds gateways through a real Consul agent: only
// passing instances of nimbus-gateway count, environments are the max and
// in-flight the sum across them.
func TestAutoscalerAPMDiscoversGatewaysInConsul(t *testing.T) {
	agent := consultest.Start(t)
	consul := agent.Client(t)

	g1, g2 := newMetricsGateway(t), newMetricsGateway(t)
	g1.set("orders", "3", 4, 1)
	g2.set("orders", "3", 4, 2)
	for i, g := range []*metricsGateway{g1, g2} {
		host, port := g.hostPort(t)
		if err := consul.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
			ID: fmt.Sprintf("nimbus-gateway-%d", i), Name: "nimbus-gateway", Address: host, Port: port,
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A third instance, live but with a critical check: Consul's passing
	// filter must keep it out (its 100 environments would dominate the max).
	bad := newMetricsGateway(t)
	bad.set("orders", "3", 100, 100)
	bhost, bport := bad.hostPort(t)
	if err := consul.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
		ID: "nimbus-gateway-critical", Name: "nimbus-gateway", Address: bhost, Port: bport,
		Check: &consulapi.AgentServiceCheck{TTL: "1h", Status: consulapi.HealthCritical},
	}); err != nil {
		t.Fatal(err)
	}

	apm := harness.StartAPM(t, harness.MustBuild(t, policy.APMDriver))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := harness.Load(ctx, apm, policy.APMDriver, sdk.TypeAPM, map[string]string{
		"consul_address": agent.HTTPAddr, "cache_ttl": "0s",
	}); err != nil {
		t.Fatal(err)
	}
	query := func() (float64, error) {
		now := time.Now()
		ms, err := apm.Query(ctx, "orders/3", sdk.TimeRange{From: now.Add(-time.Minute), To: now})
		if err != nil {
			return 0, err
		}
		return ms[len(ms)-1].Value, nil
	}
	eventuallyAS(t, 30*time.Second, "utilisation over two passing gateways", func() (bool, string) {
		v, err := query()
		return err == nil && v == 0.75, fmt.Sprintf("%v, %v", v, err)
	})

	if err := consul.Agent().ServiceDeregister("nimbus-gateway-1"); err != nil {
		t.Fatal(err)
	}
	eventuallyAS(t, 30*time.Second, "utilisation after one gateway left", func() (bool, string) {
		v, err := query()
		return err == nil && v == 0.25, fmt.Sprintf("%v, %v", v, err)
	})
}

// A real Nomad Autoscaler agent loads both plugin binaries from its
// plugin_dir, and scales a real Nomad job's provisioned group: up while
// the gateway reports saturation, down to the floor once it is idle.
func TestAutoscalerScalesProvisionedGroup(t *testing.T) {
	asBin := os.Getenv("NOMAD_AUTOSCALER_BINARY")
	if os.Getenv(nomadtest.EnvBinary) == "" || asBin == "" {
		t.Skip("NOMAD_BINARY and NOMAD_AUTOSCALER_BINARY must both be set to run the real-autoscaler test (nomad agent -dev + nomad-autoscaler agent with our plugins)")
	}
	apmPath := harness.MustBuild(t, policy.APMDriver)
	strategyPath := harness.MustBuild(t, policy.StrategyDriver)
	pluginDir := t.TempDir()
	for _, p := range []string{apmPath, strategyPath} {
		if err := os.Symlink(p, filepath.Join(pluginDir, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}

	agent := nomadtest.Start(t, nomadtest.Options{
		HCL:          "plugin \"raw_exec\" {\n  config {\n    enabled = true\n  }\n}\n",
		WaitForNode:  true,
		ReadyTimeout: 90 * time.Second,
	})
	nomadAddr, nomad := agent.Addr, agent.Client(t)

	// The job: a provisioned group scaled by our check, as the compiler
	// writes it (raw_exec stands in for the nimbus driver here).
	const fn, version, jobID = "e2efn", "1", "nimbus-e2efn-1"
	jobHCL := fmt.Sprintf(`
job %q {
  datacenters = ["dc1"]
  group %q {
    count = 1
    scaling {
      enabled = true
      min     = 1
      max     = 4
      policy {
        evaluation_interval  = "1s"
        cooldown             = "1s"
        cooldown_on_scale_up = "1s"
        check %q {
          source       = %q
          query        = "%s/%s"
          query_window = "5s"
          strategy %q {
            target = 0.7
            min    = 1
            max    = 4
          }
        }
      }
    }
    task "sleep" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
`, jobID, policy.Group, policy.CheckName, policy.APMName, fn, version, policy.StrategyName)
	jobPath := filepath.Join(t.TempDir(), "job.nomad.hcl")
	if err := os.WriteFile(jobPath, []byte(jobHCL), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := agent.CLI(t, "job", "run", "-detach", jobPath); code != 0 {
		t.Fatalf("nomad job run: exit %d\n%s", code, out)
	}

	gw := newMetricsGateway(t)
	asLog := startAutoscaler(t, asBin, nomadAddr, pluginDir, strings.TrimPrefix(gw.srv.URL, "http://"), `
policy {
  default_evaluation_interval = "1s"
  default_cooldown            = "1s"
}
`)

	count := func() int {
		job, _, err := nomad.Jobs().Info(jobID, nil)
		if err != nil || len(job.TaskGroups) == 0 || job.TaskGroups[0].Count == nil {
			return -1
		}
		return *job.TaskGroups[0].Count
	}
	// Saturated: every provisioned environment (one per instance) busy.
	eventuallyAS(t, 2*time.Minute, "scale up to the max under saturation", func() (bool, string) {
		c := count()
		if c > 0 {
			gw.set(fn, version, float64(c), float64(c))
		}
		return c == 4, fmt.Sprintf("count %d", c)
	})
	// Idle: once the query window holds only idle samples, back to the floor.
	eventuallyAS(t, 2*time.Minute, "scale down to the floor when idle", func() (bool, string) {
		c := count()
		if c > 0 {
			gw.set(fn, version, float64(c), 0)
		}
		return c == 1, fmt.Sprintf("count %d", c)
	})
	if log := asLog(); strings.Contains(log, "scale direction is unknown") || strings.Contains(log, "no metrics available") {
		t.Errorf("autoscaler reported protocol errors:\n%s", log)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer is an io.Writer safe to read while a process writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAutoscaler runs the autoscaler agent with our plugins and returns a
// function reading its log so far.
func startAutoscaler(t *testing.T, bin, nomadAddr, pluginDir, gateway, extra string) func() string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`log_level  = "debug"
plugin_dir = %q

nomad {
  address = %q
}

http {
  bind_address = "127.0.0.1"
  bind_port    = %d
}

apm %q {
  driver = %q
  config = {
    gateways  = %q
    cache_ttl = "0s"
  }
}

strategy %q {
  driver = %q
}
`, pluginDir, nomadAddr, freeLoopbackPort(t), policy.APMName, policy.APMDriver, gateway, policy.StrategyName, policy.StrategyDriver) + extra
	cfgPath := filepath.Join(dir, "autoscaler.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, "agent", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nomad-autoscaler: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// An interrupted agent stops its plugin processes; a killed one
		// would leave them running.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("nomad-autoscaler log:\n%s", logs.String())
		}
	})
	return logs.String
}

// nomadScaleAPI is an httptest double of exactly the two Nomad endpoints the
// autoscaler's nomad-target uses: GET /v1/job/<id>/scale (a blocking query)
// and PUT /v1/job/<id>/scale, for jobs with one scaled group each.
// Allocations start at once, so Running follows the count. Other paths
// answer 404 and are recorded.
type nomadScaleAPI struct {
	group string

	mu      sync.Mutex
	index   uint64
	counts  map[string]int                       // by job ID
	scales  map[string][]nomadapi.ScalingRequest // by job ID
	changed chan struct{}                        // closed and replaced on every change
	unknown []string
}

func newNomadScaleAPI(t *testing.T, group string, counts map[string]int) (*nomadScaleAPI, string) {
	t.Helper()
	n := &nomadScaleAPI{group: group, index: 10, counts: counts, scales: map[string][]nomadapi.ScalingRequest{}, changed: make(chan struct{})}
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	return n, srv.URL
}

func (n *nomadScaleAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	jobID, ok := strings.CutPrefix(r.URL.Path, "/v1/job/")
	jobID, ok2 := strings.CutSuffix(jobID, "/scale")
	n.mu.Lock()
	_, known := n.counts[jobID]
	if !ok || !ok2 || !known {
		n.unknown = append(n.unknown, r.Method+" "+r.URL.Path)
		n.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	n.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		n.status(w, r, jobID)
	case http.MethodPut, http.MethodPost:
		var req nomadapi.ScalingRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n.mu.Lock()
		n.scales[jobID] = append(n.scales[jobID], req)
		if req.Count != nil {
			n.counts[jobID] = int(*req.Count)
		}
		n.index++
		idx := n.index
		close(n.changed)
		n.changed = make(chan struct{})
		n.mu.Unlock()
		w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
		_ = json.NewEncoder(w).Encode(map[string]any{"EvalID": "", "EvalCreateIndex": idx, "JobModifyIndex": idx})
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// status answers like a blocking query: it waits while the caller's index
// is current, up to the requested wait (capped at 2 s to keep tests fast).
func (n *nomadScaleAPI) status(w http.ResponseWriter, r *http.Request, jobID string) {
	want, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	wait := 2 * time.Second
	if d, err := time.ParseDuration(r.URL.Query().Get("wait")); err == nil && d < wait {
		wait = d
	}
	n.mu.Lock()
	if want >= n.index {
		ch := n.changed
		n.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
		n.mu.Lock()
	}
	c := n.counts[jobID]
	resp := nomadapi.JobScaleStatusResponse{
		JobID: jobID, Namespace: "default", JobCreateIndex: 1, JobModifyIndex: n.index,
		TaskGroups: map[string]nomadapi.TaskGroupScaleStatus{
			n.group: {Desired: c, Placed: c, Running: c, Healthy: c},
		},
	}
	idx := n.index
	n.mu.Unlock()
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (n *nomadScaleAPI) count(jobID string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.counts[jobID]
}

func (n *nomadScaleAPI) requests(jobID string) ([]nomadapi.ScalingRequest, []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]nomadapi.ScalingRequest(nil), n.scales[jobID]...), append([]string(nil), n.unknown...)
}

// filePolicy is the compiler's provisioned-group policy in the
// autoscaler's file-policy form (type and target spelled out, which Nomad
// fills in for job policies).
func filePolicy(fn, version, jobID, extraStrategy string) string {
	return fmt.Sprintf(`scaling "%s-provisioned" {
  enabled = true
  type    = "horizontal"
  min     = 1
  max     = 4
  policy {
    evaluation_interval  = "1s"
    cooldown             = "1s"
    cooldown_on_scale_up = "1s"
    check %q {
      source       = %q
      query        = "%s/%s"
      query_window = "4s"
      strategy %q {
        target = 0.7
        min    = 1
        max    = 4
%s
      }
    }
    target "nomad-target" {
      Job       = %q
      Group     = %q
      Namespace = "default"
    }
  }
}
`, jobID, policy.CheckName, policy.APMName, fn, version, policy.StrategyName, extraStrategy, jobID, policy.Group)
}

// The real Nomad Autoscaler agent (NOMAD_AUTOSCALER_BINARY) loads both
// plugin binaries, evaluates file policies shaped like the compiler's, and
// scales through its own nomad-target against a double of Nomad's job scale
// API: one function goes up to the max under saturation and back to the
// floor when idle; an idle one with an open scheduled window is raised to
// the window's floor (which the agent would not do for a None answer).
func TestAutoscalerAgentScalesThroughNomadScaleAPI(t *testing.T) {
	asBin := os.Getenv("NOMAD_AUTOSCALER_BINARY")
	if asBin == "" {
		t.Skip("NOMAD_AUTOSCALER_BINARY is not set: skipping the real nomad-autoscaler agent test")
	}
	apmPath := harness.MustBuild(t, policy.APMDriver)
	strategyPath := harness.MustBuild(t, policy.StrategyDriver)
	pluginDir := t.TempDir()
	for _, p := range []string{apmPath, strategyPath} {
		if err := os.Symlink(p, filepath.Join(pluginDir, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}

	const (
		fn, version, jobID = "e2efn", "1", "nimbus-e2efn-1"
		schedFn, schedJob  = "e2esched", "nimbus-e2esched-3"
	)
	nomad, nomadAddr := newNomadScaleAPI(t, policy.Group, map[string]int{jobID: 1, schedJob: 1})
	gw := newMetricsGateway(t)
	gw.set(schedFn, "3", 1, 0)

	policyDir := t.TempDir()
	// A window that is always open: every minute, for an hour.
	always, err := policy.EncodeSchedules([]policy.Schedule{{Name: "always", Cron: "* * * * *", Duration: "1h", Min: 3}})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"tracking.hcl": filePolicy(fn, version, jobID, ""),
		"schedule.hcl": filePolicy(schedFn, "3", schedJob, fmt.Sprintf("        schedules = %q", always)),
	} {
		if err := os.WriteFile(filepath.Join(policyDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	asLog := startAutoscaler(t, asBin, nomadAddr, pluginDir, strings.TrimPrefix(gw.srv.URL, "http://"), fmt.Sprintf(`
policy {
  dir                         = %q
  default_evaluation_interval = "1s"
  default_cooldown            = "1s"
  source "nomad" {
    enabled = false
  }
}
`, policyDir))

	follow := func(inflightPerEnv float64, want int, what string) {
		t.Helper()
		eventuallyAS(t, 90*time.Second, what, func() (bool, string) {
			c := nomad.count(jobID)
			gw.set(fn, version, float64(c), inflightPerEnv*float64(c))
			return c == want, fmt.Sprintf("count %d", c)
		})
	}
	follow(1, 4, "scale up to the max under saturation")
	follow(0, 1, "scale down to the floor when idle")
	eventuallyAS(t, 30*time.Second, "scheduled window raises the idle function's floor", func() (bool, string) {
		c := nomad.count(schedJob)
		gw.set(schedFn, "3", float64(c), 0)
		return c == 3, fmt.Sprintf("count %d", c)
	})

	scales, unknown := nomad.requests(jobID)
	if len(scales) < 2 {
		t.Fatalf("scale requests: %+v", scales)
	}
	sched, _ := nomad.requests(schedJob)
	for _, s := range append(scales, sched...) {
		if s.Count == nil || *s.Count < 1 || *s.Count > 4 || s.Message == "" || s.Target["Group"] != policy.Group {
			t.Errorf("scale request %+v", s)
		}
		if s.Meta["nimbus.target"] != 0.7 {
			t.Errorf("strategy meta did not reach the target: %v", s.Meta)
		}
		t.Logf("%s scaled to %d: %s", s.Target["Job"], *s.Count, s.Message)
	}
	if len(sched) == 0 || !strings.Contains(sched[0].Message, `schedule "always"`) {
		t.Errorf("schedule scale requests: %+v", sched)
	}
	if log := asLog(); strings.Contains(log, "scale direction is unknown") || strings.Contains(log, "no metrics available") ||
		strings.Contains(log, "remote info doesn't match") {
		t.Errorf("autoscaler reported protocol errors:\n%s", log)
	}
	if len(unknown) > 0 {
		t.Logf("nomad double saw other requests: %v", unknown)
	}
}
