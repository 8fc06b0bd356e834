package nomadtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// EnvBinary names the environment variable that points at a nomad binary.
const EnvBinary = "NOMAD_BINARY"

// DefaultSkipMessage is the skip reason when Options.SkipMessage is empty.
const DefaultSkipMessage = "NOMAD_BINARY is not set: skipping a test against a real Nomad agent (set it to a nomad binary to run it)"

const (
	defaultReadyTimeout = 60 * time.Second
	stopTimeout         = 30 * time.Second
	pollInterval        = 200 * time.Millisecond
)

// Options say how the agent differs from a plain dev agent.
type Options struct {
	// SkipMessage is the reason the test skips when NOMAD_BINARY is unset.
	// Default: DefaultSkipMessage.
	SkipMessage string
	// Persistent runs a single-node server and client (not -dev) whose data
	// directory survives Stop and Start. Default: false (-dev).
	Persistent bool
	// Dir holds agent.hcl and the data directory. The caller owns it; it is
	// not removed. Default: a fresh directory under os.TempDir, removed
	// best-effort on cleanup (not t.TempDir: a Nomad client can leave
	// mounts behind that would fail the test's own cleanup).
	Dir string
	// PluginDir is the agent's plugin_dir. Default: none.
	PluginDir string
	// ConsulAddr is the address in the agent's consul block. Default: the
	// agent's own default (127.0.0.1:8500).
	ConsulAddr string
	// ConsulToken is the agent's own Consul ACL token (consul { token }),
	// for a Consul with ACLs on. Default: none.
	ConsulToken string
	// ConsulHCL is added inside the agent's consul block (workload
	// identity settings: service_identity { … }). Default: none.
	ConsulHCL string
	// LogLevel is the agent's log_level. Default: the agent's default.
	LogLevel string
	// HCL is appended to the generated agent config (plugin blocks, client
	// settings). Default: none.
	HCL string
	// WaitForNode makes Start and Restart also wait for a ready client
	// node. Default: false (a leader is enough).
	WaitForNode bool
	// ReadyTimeout bounds the wait for a leader (and node). Default: 60s.
	ReadyTimeout time.Duration
	// NetworkInterface is the client's network_interface: the address
	// Nomad gives tasks' ports (NOMAD_ADDR_<label>). "lo" keeps them on
	// loopback, where tests may send traffic. Default: Nomad's choice (the
	// interface of the default route).
	NetworkInterface string
	// ACLToken turns ACLs on: the agent is bootstrapped with this secret
	// ID as its management token (a UUID), which Client and CLI then use.
	// Default: ACLs off.
	ACLToken string
	// LogAlways prints the agent's log on cleanup even when the test passed.
	// Default: false (only on failure).
	LogAlways bool
}

// Agent is one running Nomad agent.
type Agent struct {
	// Addr is the HTTP API's URL (http://127.0.0.1:port).
	Addr string
	// Dir holds agent.hcl and data/.
	Dir string
	// Bin is the nomad binary the agent runs.
	Bin string

	opts    Options
	cfgPath string
	logs    *Buffer
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Binary returns NOMAD_BINARY, skipping tb with msg (DefaultSkipMessage when
// empty) when it is unset.
func Binary(tb testing.TB, msg string) string {
	tb.Helper()
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		if msg == "" {
			msg = DefaultSkipMessage
		}
		tb.Skip(msg)
	}
	return bin
}

// Start writes the agent config, runs the agent and waits until it is
// ready. The agent stops on test cleanup.
func Start(tb testing.TB, opts Options) *Agent {
	tb.Helper()
	bin := Binary(tb, opts.SkipMessage)
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = defaultReadyTimeout
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "nimbus-nomadtest-")
		if err != nil {
			tb.Fatal(err)
		}
		dir = d
		tb.Cleanup(func() { _ = os.RemoveAll(d) })
	}
	ports, err := freePorts(3)
	if err != nil {
		tb.Fatal(err)
	}
	a := &Agent{
		Addr:    fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		Dir:     dir,
		Bin:     bin,
		opts:    opts,
		cfgPath: filepath.Join(dir, "agent.hcl"),
		logs:    &Buffer{},
	}
	if err := os.WriteFile(a.cfgPath, []byte(agentConfig(opts, dir, ports)), 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if a.cmd != nil {
			a.Stop(tb)
		}
		if tb.Failed() || opts.LogAlways {
			tb.Logf("nomad agent log:\n%s", a.logs.String())
		}
	})
	a.Restart(tb)
	return a
}

func agentConfig(opts Options, dir string, ports []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir  = %q\nbind_addr = \"127.0.0.1\"\n", filepath.Join(dir, "data"))
	if opts.PluginDir != "" {
		fmt.Fprintf(&b, "plugin_dir = %q\n", opts.PluginDir)
	}
	if opts.LogLevel != "" {
		fmt.Fprintf(&b, "log_level = %q\n", opts.LogLevel)
	}
	fmt.Fprintf(&b, "ports {\n  http = %d\n  rpc  = %d\n  serf = %d\n}\n", ports[0], ports[1], ports[2])
	if opts.Persistent {
		b.WriteString(`advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
server {
  enabled          = true
  bootstrap_expect = 1
}
`)
	}
	// Cloud fingerprinters probe metadata endpoints this machine cannot
	// reach; Nomad 2.x agents exit at start when they fail. Since Nomad
	// 1.11 task stats need allocation metrics published.
	b.WriteString("client {\n")
	if opts.Persistent {
		b.WriteString("  enabled = true\n")
	}
	if opts.NetworkInterface != "" {
		fmt.Fprintf(&b, "  network_interface = %q\n", opts.NetworkInterface)
	}
	b.WriteString(`  options {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
telemetry {
  publish_allocation_metrics = true
}
`)
	if opts.ConsulAddr != "" || opts.ConsulToken != "" || opts.ConsulHCL != "" {
		b.WriteString("consul {\n")
		if opts.ConsulAddr != "" {
			fmt.Fprintf(&b, "  address = %q\n", opts.ConsulAddr)
		}
		if opts.ConsulToken != "" {
			fmt.Fprintf(&b, "  token   = %q\n", opts.ConsulToken)
		}
		b.WriteString(opts.ConsulHCL)
		b.WriteString("}\n")
	}
	if opts.ACLToken != "" {
		b.WriteString("acl {\n  enabled = true\n}\n")
	}
	b.WriteString(opts.HCL)
	return b.String()
}

// Restart runs the agent again after Stop or Kill (Start calls it the first
// time) and waits until it is ready. Only a Persistent agent keeps its
// jobs and allocations across a restart.
func (a *Agent) Restart(tb testing.TB) {
	tb.Helper()
	args := []string{"agent", "-config", a.cfgPath}
	if !a.opts.Persistent {
		args = []string{"agent", "-dev", "-config", a.cfgPath}
	}
	cmd := exec.Command(a.Bin, args...)
	cmd.Stdout, cmd.Stderr = a.logs, a.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting nomad: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	a.cmd, a.exited = cmd, exited
	if err := a.waitReady(); err != nil {
		tb.Fatalf("nomad agent at %s: %v", a.Addr, err)
	}
}

func (a *Agent) waitReady() error {
	c, err := a.client()
	if err != nil {
		return err
	}
	what := "a leader"
	if a.opts.WaitForNode {
		what = "a leader and a ready client node"
	}
	deadline := time.NewTimer(a.opts.ReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if a.ready(c) {
			return nil
		}
		select {
		case <-a.exited:
			return errors.New("agent exited during start-up")
		case <-deadline.C:
			return fmt.Errorf("no %s after %s", what, a.opts.ReadyTimeout)
		case <-tick.C:
		}
	}
}

func (a *Agent) ready(c *api.Client) bool {
	if l, err := c.Status().Leader(); err != nil || l == "" {
		return false
	}
	if a.opts.ACLToken != "" {
		// Bootstrap once; a restarted agent is bootstrapped already.
		if _, _, err := c.ACLTokens().Self(nil); err != nil {
			if _, _, err := c.ACLTokens().BootstrapOpts(a.opts.ACLToken, nil); err != nil {
				return false
			}
		}
	}
	// A new leader initialises the keyring a moment after it is elected;
	// until then every variable write fails ("keyring has not been
	// initialized yet"). Ready means a variable can be written.
	probe := &api.Variable{Path: "nomadtest/ready", Items: api.VariableItems{"ready": "yes"}}
	if _, _, err := c.Variables().Create(probe, nil); err != nil {
		return false
	}
	if _, err := c.Variables().Delete(probe.Path, nil); err != nil {
		return false
	}
	if !a.opts.WaitForNode {
		return true
	}
	nodes, _, err := c.Nodes().List(nil)
	if err != nil {
		return false
	}
	for _, n := range nodes {
		if n.Status == api.NodeStatusReady {
			return true
		}
	}
	return false
}

// Stop shuts the agent down gracefully (SIGINT), killing its process group
// if it has not exited within 30s. A Persistent client leaves its tasks
// running; a dev agent stops them.
func (a *Agent) Stop(tb testing.TB) {
	tb.Helper()
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-a.exited:
	case <-time.After(stopTimeout):
		tb.Logf("nomad agent did not exit within %s of SIGINT; killing it", stopTimeout)
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.exited
	}
	a.cmd = nil
}

// Kill SIGKILLs the agent process alone, as a crash would, leaving its
// plugin processes behind.
func (a *Agent) Kill(tb testing.TB) {
	tb.Helper()
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Kill()
	<-a.exited
	a.cmd = nil
}

func (a *Agent) client() (*api.Client, error) {
	return api.NewClient(&api.Config{Address: a.Addr, SecretID: a.opts.ACLToken})
}

// Client returns an API client for the agent, failing tb on error.
func (a *Agent) Client(tb testing.TB) *api.Client {
	tb.Helper()
	c, err := a.client()
	if err != nil {
		tb.Fatalf("nomad client: %v", err)
	}
	return c
}

// Log returns the agent's output so far.
func (a *Agent) Log() string { return a.logs.String() }

// CLI runs the nomad binary with args against the agent and returns its
// combined output and exit code; it fails tb when the binary cannot run.
func (a *Agent) CLI(tb testing.TB, args ...string) (string, int) {
	tb.Helper()
	cmd := exec.Command(a.Bin, args...)
	cmd.Env = append(os.Environ(), "NOMAD_ADDR="+a.Addr, "NOMAD_TOKEN="+a.opts.ACLToken)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		tb.Fatalf("nomad %v: %v", args, err)
	}
	return string(out), 0
}

// Buffer is an io.Writer safe to read while a process writes to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// freePorts returns n distinct loopback ports, free when it returns.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
