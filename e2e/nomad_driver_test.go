package e2e

// The nimbus task driver inside a real Nomad agent (NOMAD_BINARY): loaded
// from plugin_dir through its `plugin` block, fingerprinted healthy, running
// a real aws-lambda-go function invoked through its registered port, logging
// REPORT lines into `nomad alloc logs`, recovering the running task across an
// agent restart, and leaving no process behind when the job stops.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

func TestNomadRunsNimbusDriver(t *testing.T) {
	const skip = "NOMAD_BINARY is not set: skipping the real-Nomad driver test (set it to a nomad binary to run the nimbus driver inside a Nomad agent)"
	nomadtest.Binary(t, skip)
	root := agentRootDir(t, "nimbus-e2e-driver-")
	pluginDir := filepath.Join(root, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	drvCopy(t, plugintest.BuildDriver(t), filepath.Join(pluginDir, "nimbus-driver"))
	code := drvServeCode(t, testfn.Dir(t, "echo"))

	t.Cleanup(func() { drvKillLeftovers(t, root) })
	opts := drvAgentOptions(root, pluginDir)
	opts.SkipMessage, opts.LogLevel = skip, "DEBUG"
	opts.LogAlways = os.Getenv("NIMBUS_E2E_AGENT_LOG") != ""
	agent := nomadtest.Start(t, opts)
	client := agent.Client(t)
	node := drvWaitDriverHealthy(t, client)
	if v := node.Attributes["driver.nimbus.version"]; v == "" {
		t.Errorf("node lacks the driver.nimbus.version attribute: %v", node.Attributes)
	}

	secret := "e2e-secret"
	job := drvEchoJob(code, secret)
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatalf("registering job: %v", err)
	}
	t.Cleanup(func() { _, _, _ = client.Jobs().Deregister(*job.ID, true, nil) })
	alloc := drvWaitAlloc(t, client, *job.ID, "running")
	addr := drvServiceAddr(t, client, "nimbus-e2e-echo")
	drvInvoke(t, addr, secret, `{"round":1}`)

	// logmon copies the FIFO into the log files asynchronously.
	drvEventually(t, 30*time.Second, "a REPORT line in nomad alloc logs", func() bool {
		out, rc := agent.CLI(t, "alloc", "logs", alloc.ID, "fn")
		return rc == 0 && strings.Contains(out, "REPORT RequestId:")
	})
	drvCheckStatsAndExec(t, client, alloc.ID)

	// Restart the agent: the task is recovered, not restarted, and answers.
	agent.Stop(t)
	agent.Restart(t)
	client = agent.Client(t)
	drvWaitDriverHealthy(t, client)
	after := drvWaitAlloc(t, client, *job.ID, "running")
	if after.ID != alloc.ID {
		t.Fatalf("alloc replaced across the agent restart: %s → %s", alloc.ID, after.ID)
	}
	drvEventually(t, 30*time.Second, "the restarted agent to re-register the service", func() bool {
		regs, _, err := client.Services().Get("nimbus-e2e-echo", nil)
		return err == nil && len(regs) > 0
	})
	drvInvoke(t, addr, secret, `{"round":2}`)
	full, _, err := client.Allocations().Info(alloc.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ts := full.TaskStates["fn"]; ts == nil || ts.Restarts != 0 || ts.State != "running" {
		t.Errorf("task state after the agent restart = %+v, want running with no restart", ts)
	}

	// The agent crashes: the plugin process outlives it (SIGPIPE ignored) and
	// the restarted agent reattaches to it; the task keeps answering.
	plugins := drvPluginPids(pluginDir)
	if len(plugins) != 1 {
		t.Fatalf("want one long-lived plugin process, found %v", plugins)
	}
	agent.Kill(t)
	agent.Restart(t)
	client = agent.Client(t)
	drvWaitDriverHealthy(t, client)
	drvInvoke(t, addr, secret, `{"round":3}`)
	if after := drvPluginPids(pluginDir); len(after) != 1 || after[0] != plugins[0] {
		t.Errorf("plugin processes after the agent crash = %v, want the reattached %v", after, plugins)
	}
	if after := drvWaitAlloc(t, client, *job.ID, "running"); after.ID != alloc.ID {
		t.Fatalf("alloc replaced across the agent crash: %s → %s", alloc.ID, after.ID)
	}

	// Stop the job: every process of the task is gone.
	if _, _, err := client.Jobs().Deregister(*job.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	drvWaitAlloc(t, client, *job.ID, "complete")
	drvEventually(t, 30*time.Second, "every process of the alloc to exit", func() bool {
		return len(drvProcsUnder(filepath.Join(root, "data", "alloc", alloc.ID))) == 0
	})
}

// drvCheckStatsAndExec reads the task's stats through Nomad (TaskStats) and
// runs `nomad alloc exec`'s API (ExecTaskStreaming) in the function's code dir.
func drvCheckStatsAndExec(t *testing.T, c *nomadapi.Client, allocID string) {
	t.Helper()
	full, _, err := c.Allocations().Info(allocID, nil)
	if err != nil {
		t.Fatal(err)
	}
	drvEventually(t, 30*time.Second, "task stats with a memory RSS", func() bool {
		u, err := c.Allocations().Stats(full, nil)
		if err != nil || u.Tasks["fn"] == nil || u.Tasks["fn"].ResourceUsage == nil {
			return false
		}
		m := u.Tasks["fn"].ResourceUsage.MemoryStats
		return m != nil && m.RSS > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code, err := c.Allocations().Exec(ctx, full, "fn", false, []string{"/bin/sh", "-c", "pwd; echo alloc=$NOMAD_ALLOC_ID; exit 3"},
		strings.NewReader(""), &stdout, &stderr, nil, nil)
	if err != nil {
		t.Fatalf("alloc exec: %v (stderr %q)", err, stderr.String())
	}
	if code != 3 || !strings.Contains(stdout.String(), filepath.Join(allocID, "fn", "local", "code")) || !strings.Contains(stdout.String(), "alloc="+allocID) {
		t.Errorf("alloc exec: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// drvAgentOptions is nomadtest.DriverOptions.
func drvAgentOptions(root, pluginDir string) nomadtest.Options {
	return nomadtest.DriverOptions(root, pluginDir)
}

// drvPluginPids lists live plugin-server processes started from pluginDir
// (not instances, which run `nimbus-driver instance ...`).
func drvPluginPids(pluginDir string) []int {
	bin := filepath.Join(pluginDir, "nimbus-driver")
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) == 1 && args[0] == bin {
			out = append(out, pid)
		}
	}
	return out
}

func drvWaitDriverHealthy(t *testing.T, c *nomadapi.Client) *nomadapi.Node {
	t.Helper()
	return nomadtest.WaitDriverHealthy(t, c)
}

func drvEchoJob(codeURL, secret string) *nomadapi.Job {
	job := nomadapi.NewServiceJob("nimbus-e2e-echo", "nimbus-e2e-echo", "global", 50)
	job.Datacenters = []string{"*"}
	tg := nomadapi.NewTaskGroup("ondemand", 1)
	tg.Networks = []*nomadapi.NetworkResource{{DynamicPorts: []nomadapi.Port{{Label: "invoke"}}}}
	tg.Services = []*nomadapi.Service{{Name: "nimbus-e2e-echo", PortLabel: "invoke", Provider: "nomad"}}
	attempts, mode := 0, "fail"
	tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: &attempts, Mode: &mode}
	task := nomadapi.NewTask("fn", "nimbus")
	task.Config = map[string]any{
		"function":      "echo",
		"runtime":       "provided.al2023",
		"timeout":       "5s",
		"invoke_secret": secret,
	}
	dest := "local/code"
	task.Artifacts = []*nomadapi.TaskArtifact{{GetterSource: &codeURL, RelativeDest: &dest}}
	cpu, mem := 100, 128
	task.Resources = &nomadapi.Resources{CPU: &cpu, MemoryMB: &mem}
	kill := 5 * time.Second
	task.KillTimeout = &kill
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job
}

func drvWaitAlloc(t *testing.T, c *nomadapi.Client, jobID, status string) *nomadapi.AllocationListStub {
	t.Helper()
	var found *nomadapi.AllocationListStub
	drvEventually(t, 90*time.Second, "an allocation of "+jobID+" "+status, func() bool {
		allocs, _, err := c.Jobs().Allocations(jobID, true, nil)
		if err != nil {
			return false
		}
		for _, a := range allocs {
			if a.ClientStatus == "failed" {
				t.Fatalf("allocation %s failed: %+v", a.ID, a.TaskStates)
			}
			if a.ClientStatus == status {
				found = a
				return true
			}
		}
		return false
	})
	return found
}

func drvServiceAddr(t *testing.T, c *nomadapi.Client, name string) string {
	t.Helper()
	var addr string
	drvEventually(t, 30*time.Second, "service "+name+" registered", func() bool {
		regs, _, err := c.Services().Get(name, nil)
		if err != nil || len(regs) == 0 {
			return false
		}
		addr = net.JoinHostPort(regs[0].Address, strconv.Itoa(regs[0].Port))
		return true
	})
	return addr
}

func drvInvoke(t *testing.T, addr, secret, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := (&invokeapi.Client{Secret: secret}).Invoke(ctx, addr, &invokeapi.Request{Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("invoking %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.FunctionError != "" || string(b) != payload {
		t.Fatalf("invoke answered %q (function error %q), want %q", b, resp.FunctionError, payload)
	}
}

// drvServeCode serves the function's code as a tar.gz artifact on loopback.
func drvServeCode(t *testing.T, dir string) string {
	t.Helper()
	boot, err := os.ReadFile(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "bootstrap", Mode: 0o755, Size: int64(len(boot)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(boot); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	body := buf.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/echo.tar.gz"
}

func drvCopy(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// drvProcsUnder is nomadtest.ProcsUnder.
func drvProcsUnder(dir string) []int { return nomadtest.ProcsUnder(dir) }

// drvKillLeftovers is nomadtest.KillLeftovers.
func drvKillLeftovers(t *testing.T, root string) { nomadtest.KillLeftovers(t, root) }

func drvEventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", within, what)
		case <-tick.C:
		}
	}
}

// startDriverAgent runs a Nomad agent with the nimbus driver registering
// services in the Consul agent at consulAddr (nomadtest.StartWithDriver).
func startDriverAgent(t *testing.T, consulAddr, prefix string) *nomadtest.Agent {
	t.Helper()
	return nomadtest.StartWithDriver(t, plugintest.BuildDriver(t), consulAddr, prefix)
}
