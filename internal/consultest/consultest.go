package consultest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Version is the Consul version tools/consul pins and the cache is keyed by.
const Version = "1.16.1"

// EnvBinary names the environment variable that points at a ready consul
// binary; when set, nothing is built.
const EnvBinary = "CONSUL_BINARY"

// Datacenter is the datacenter of every test agent.
const Datacenter = "dc1"

const (
	startAttempts = 3
	readyTimeout  = 60 * time.Second
	stopTimeout   = 10 * time.Second
	logTail       = 16 * 1024
)

// Agent is one running `consul agent -dev`.
type Agent struct {
	// HTTPAddr is the HTTP API's host:port.
	HTTPAddr string
	// DNSAddr is the DNS interface's host:port (UDP and TCP).
	DNSAddr string
	// GRPCAddr is the gRPC (xDS) port's host:port.
	GRPCAddr string
	// NodeName is the agent's node name.
	NodeName string
	// Token is the management token of an agent started with ACLs on
	// (StartWithACLs); "" otherwise. Config and Client use it.
	Token string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, valid after done is closed
	log  *tailBuffer

	// bin and args start the agent again (Restart); dataDir is where a
	// persistent agent keeps its state ("" for -dev).
	bin     string
	args    []string
	dataDir string
}

// Config returns a Consul API client config for the agent.
func (a *Agent) Config() *api.Config {
	c := api.DefaultNonPooledConfig()
	c.Address = a.HTTPAddr
	c.Scheme = "http"
	c.Datacenter = Datacenter
	c.Token = a.Token
	c.TokenFile = ""
	return c
}

// Client returns a Consul API client for the agent, failing tb on error.
func (a *Agent) Client(tb testing.TB) *api.Client {
	tb.Helper()
	c, err := api.NewClient(a.Config())
	if err != nil {
		tb.Fatalf("consul client: %v", err)
	}
	return c
}

// Log returns the tail of the agent's output.
func (a *Agent) Log() string { return a.log.String() }

// Start runs a dev agent for the test and stops it on cleanup. It skips tb
// when no binary is available and none can be built.
func Start(tb testing.TB) *Agent {
	tb.Helper()
	return startFor(tb, false, false)
}

// StartWithACLs runs a dev agent with ACLs on and the default policy
// deny: a request without a token (or with one whose policies do not
// allow it) is refused. Agent.Token is its management token; the agent's
// own token (node registration, anti-entropy) is set too, so only the
// callers' tokens matter. It stops on cleanup and skips tb as Start does.
func StartWithACLs(tb testing.TB) *Agent {
	tb.Helper()
	return startFor(tb, false, true)
}

// startFor starts a dev agent, or a persistent one keeping its state in
// a data dir, retrying with fresh ports, and stops it on cleanup.
func startFor(tb testing.TB, persistent, acl bool) *Agent {
	tb.Helper()
	bin, skip, err := Binary()
	if skip != "" {
		tb.Skip(skip)
	}
	if err != nil {
		tb.Fatalf("consul binary: %v", err)
	}
	var last error
	for attempt := 0; attempt < startAttempts; attempt++ {
		dir, data := tb.TempDir(), ""
		if persistent {
			data = filepath.Join(dir, "data")
		}
		a, err := startAgent(bin, dir, data, acl)
		if err == nil {
			tb.Cleanup(func() {
				if tb.Failed() {
					tb.Logf("consul agent output (tail):\n%s", a.Log())
				}
				if err := a.Stop(); err != nil {
					tb.Logf("stopping consul agent: %v", err)
				}
			})
			return a
		}
		// A port picked as free can be taken by another process before the
		// agent binds it; a fresh set of ports usually fixes that.
		last = err
	}
	tb.Fatalf("starting consul agent (%d attempts, persistent %t): %v", startAttempts, persistent, last)
	return nil
}

// Stop terminates the agent and waits for it to exit.
func (a *Agent) Stop() error {
	select {
	case <-a.done:
		return nil
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.done
	return fmt.Errorf("consul agent did not exit within %s of SIGTERM; killed", stopTimeout)
}

// StartPersistent runs a single-server agent (not -dev) that keeps its state
// in a data dir, so Kill and Restart act as a crash and a restart of a real
// agent: the same ports, node and data dir, with the catalog and the
// services registered through the agent restored from disk. It stops on
// cleanup, and skips tb as Start does.
func StartPersistent(tb testing.TB) *Agent {
	tb.Helper()
	return startFor(tb, true, false)
}

// Kill sends SIGKILL to the agent (a crash: nothing is saved or left) and
// waits until it has exited.
func (a *Agent) Kill() {
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.done
}

// Restart starts a killed or stopped persistent agent again on the same
// ports and data dir, and waits until it has a leader and its node is
// healthy.
func (a *Agent) Restart() error {
	select {
	case <-a.done:
	default:
		return errors.New("consul agent still runs; Kill or Stop it first")
	}
	if a.dataDir == "" {
		return errors.New("a -dev agent keeps no state to restart with; use StartPersistent")
	}
	a.done = make(chan struct{})
	if err := a.run(); err != nil {
		return err
	}
	if err := a.waitReady(); err != nil {
		_ = a.Stop()
		return fmt.Errorf("%w\n%s", err, a.Log())
	}
	return nil
}

// run starts the agent process.
func (a *Agent) run() error {
	cmd := exec.Command(a.bin, a.args...)
	cmd.Stdout, cmd.Stderr = a.log, a.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", a.bin, err)
	}
	a.cmd = cmd
	done := a.done
	go func() {
		a.err = cmd.Wait()
		close(done)
	}()
	return nil
}

// startAgent starts an agent configured in dir: -dev when dataDir is empty,
// else a single server keeping its state in dataDir.
func startAgent(bin, dir, dataDir string, acl bool) (*Agent, error) {
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	node := fmt.Sprintf("nimbus-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	cfg := map[string]any{
		"node_name":            node,
		"datacenter":           Datacenter,
		"bind_addr":            "127.0.0.1",
		"advertise_addr":       "127.0.0.1",
		"client_addr":          "127.0.0.1",
		"disable_update_check": true,
		"log_level":            "info",
		"ports": map[string]int{
			"http":     ports[0],
			"dns":      ports[1],
			"serf_lan": ports[2],
			"serf_wan": ports[3],
			"server":   ports[4],
			"grpc":     ports[5],
			"grpc_tls": -1,
			"https":    -1,
		},
	}
	token := ""
	if acl {
		token = randomUUID()
		cfg["acl"] = map[string]any{
			"enabled":                  true,
			"default_policy":           "deny",
			"enable_token_persistence": false,
			"tokens": map[string]string{
				"initial_management": token,
				"agent":              token,
			},
		}
	}
	if dataDir != "" {
		cfg["server"] = true
		cfg["bootstrap_expect"] = 1
		cfg["data_dir"] = dataDir
		// Elect at once after a restart, as -dev does.
		cfg["performance"] = map[string]int{"raft_multiplier": 1}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, fmt.Sprintf("consul-%d.json", ports[0]))
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	a := &Agent{
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", ports[0]),
		DNSAddr:  fmt.Sprintf("127.0.0.1:%d", ports[1]),
		GRPCAddr: fmt.Sprintf("127.0.0.1:%d", ports[5]),
		NodeName: node,
		Token:    token,
		done:     make(chan struct{}),
		log:      &tailBuffer{max: logTail},
		bin:      bin, args: []string{"agent", "-dev", "-config-file", cfgPath},
		dataDir: dataDir,
	}
	if dataDir != "" {
		a.args = []string{"agent", "-config-file", cfgPath}
	}
	if err := a.run(); err != nil {
		return nil, err
	}
	if err := a.waitReady(); err != nil {
		_ = a.Stop()
		return nil, fmt.Errorf("%w\n%s", err, a.Log())
	}
	return a, nil
}

// waitReady polls until the agent has a leader and its own node is in the
// catalog with a passing serf health check.
func (a *Agent) waitReady() error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-a.done:
			return fmt.Errorf("consul agent exited before it was ready: %v", a.err)
		default:
		}
		last = a.ready(hc)
		if last == nil {
			return nil
		}
		select {
		case <-a.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("consul agent not ready after %s: %w", readyTimeout, last)
}

func (a *Agent) ready(hc *http.Client) error {
	var leader string
	if err := a.getJSON(hc, "http://"+a.HTTPAddr+"/v1/status/leader", &leader); err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	var checks []struct {
		CheckID string
		Status  string
	}
	if err := a.getJSON(hc, "http://"+a.HTTPAddr+"/v1/health/node/"+a.NodeName, &checks); err != nil {
		return err
	}
	for _, c := range checks {
		if c.CheckID == "serfHealth" && c.Status == "passing" {
			return nil
		}
	}
	return errors.New("node not yet registered with a passing serfHealth")
}

func (a *Agent) getJSON(hc *http.Client, url string, out any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if a.Token != "" {
		req.Header.Set("X-Consul-Token", a.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// freePorts returns n distinct loopback ports that were free for both TCP and
// UDP (DNS uses both) when asked.
func freePorts(n int) ([]int, error) {
	var (
		ports   []int
		closers []io.Closer
	)
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		closers = append(closers, l)
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // taken for UDP; keep the TCP listener so it is not picked again
		}
		closers = append(closers, u)
		ports = append(ports, p)
	}
	return ports, nil
}

var buildMu sync.Mutex

// Binary returns the consul binary to run: $CONSUL_BINARY, or the cached
// build of tools/consul (building it when missing). skip is non-empty when
// there is no binary and none can be built.
func Binary() (path, skip string, err error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		return p, "", nil
	}
	dir, err := CacheDir()
	if err != nil {
		return "", fmt.Sprintf("consul: %s is unset and there is no cache dir to build into: %v", EnvBinary, err), nil
	}
	bin := filepath.Join(dir, "consul")
	buildMu.Lock()
	defer buildMu.Unlock()
	if ok, err := checkVersion(bin); ok {
		return bin, "", nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	tools, skip := toolsDir()
	if skip != "" {
		return "", skip, nil
	}
	if err := build(tools, dir, bin); err != nil {
		return "", "", err
	}
	return bin, "", nil
}

// CacheDir is where the built agent is kept: <user cache dir>/nimbus/consul-<Version>.
func CacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "nimbus", "consul-"+Version), nil
}

// checkVersion reports whether bin exists and is Consul Version.
func checkVersion(bin string) (bool, error) {
	if _, err := os.Stat(bin); err != nil {
		return false, err
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return false, fmt.Errorf("running %s version: %w", bin, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if strings.TrimSpace(first) != "Consul v"+Version {
		return false, fmt.Errorf("%s is %q, want Consul v%s", bin, strings.TrimSpace(first), Version)
	}
	return true, nil
}

// toolsDir finds tools/consul relative to this source file; skip says why
// building is impossible.
func toolsDir() (dir, skip string) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Sprintf("consul: %s is unset and there is no go toolchain to build Consul v%s: %v", EnvBinary, Version, err)
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Sprintf("consul: %s is unset and the tools/consul module cannot be located", EnvBinary)
	}
	dir = filepath.Join(filepath.Dir(file), "..", "..", "tools", "consul")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Sprintf("consul: %s is unset and tools/consul is missing: %v", EnvBinary, err)
	}
	return dir, ""
}

// build compiles the agent into bin, holding a file lock so that test
// processes running in parallel build it once.
func build(tools, dir, bin string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("taking build lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if ok, _ := checkVersion(bin); ok {
		return nil // another process built it while we waited
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".consul-%d", os.Getpid()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// The same command CI's warm-up step runs, so the Go build cache is shared.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "github.com/hashicorp/consul")
	cmd.Dir = tools
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("building consul v%s in %s (set %s to use a prebuilt binary): %w\n%s", Version, tools, EnvBinary, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("installing consul into %s: %w", dir, err)
	}
	if _, err := checkVersion(bin); err != nil {
		return err
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// randomUUID is a random version-4 UUID (Consul's token format).
func randomUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// TokenFor creates a policy with rules (Consul's ACL HCL) and a token
// holding only that policy on an agent started with StartWithACLs, and
// returns the token's secret.
func (a *Agent) TokenFor(tb testing.TB, rules string) string {
	tb.Helper()
	if a.Token == "" {
		tb.Fatal("TokenFor needs an agent started with StartWithACLs")
	}
	acl := a.Client(tb).ACL()
	p, _, err := acl.PolicyCreate(&api.ACLPolicy{Name: "p-" + randomUUID()[:8], Rules: rules}, nil)
	if err != nil {
		tb.Fatalf("creating a consul ACL policy: %v", err)
	}
	tok, _, err := acl.TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
	if err != nil {
		tb.Fatalf("creating a consul ACL token: %v", err)
	}
	return tok.SecretID
}
