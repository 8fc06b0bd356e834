package rabbittest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	// ServerScript is the Debian package's start script that runs the node
	// as the calling user (/usr/sbin/rabbitmq-server would switch to the
	// rabbitmq user).
	ServerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	// User is the user every node has (with a random password).
	User = "nimbus"
	// ExtraVhost is a second virtual host every node has, besides "/". Its
	// name has a slash so URLs must percent-encode it.
	ExtraVhost = "nimbus/test"
)

const (
	readyTimeout  = 60 * time.Second
	stopTimeout   = 30 * time.Second
	dialTimeout   = 5 * time.Second
	startAttempts = 2
	logTail       = 32 * 1024
)

// Server is one RabbitMQ node run by the test process.
type Server struct {
	// Node is the Erlang node name (nimbus-<random>@localhost).
	Node string
	// Password is User's password.
	Password string
	// Port is the AMQP port on 127.0.0.1.
	Port int

	dir      string
	distPort int
	epmdPort int
	out      *tail

	mu   sync.Mutex // guards node and epmd
	node *proc      // the start script (and beam.smp, in its group)
	epmd *proc
}

// URL is the AMQP URL of the node's "/" virtual host, with credentials.
func (s *Server) URL() string { return s.VhostURL("/") }

// VhostURL is the AMQP URL of one of the node's virtual hosts, with
// credentials.
func (s *Server) VhostURL(vhost string) string {
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	return "amqp://" + User + ":" + s.Password + "@" + host + "/" + url.PathEscape(vhost)
}

// Log returns the tail of the node's output.
func (s *Server) Log() string { return s.out.String() }

// Installed says why no node can run here ("" when one can).
func Installed() (skip string) {
	if _, err := os.Stat(ServerScript); err != nil {
		return "rabbitmq-server not installed: " + ServerScript + " missing (apt-get install rabbitmq-server)"
	}
	for _, bin := range []string{"erl", "epmd"} {
		if _, err := exec.LookPath(bin); err != nil {
			return "rabbitmq-server not usable: " + bin + " (Erlang) not on PATH"
		}
	}
	return ""
}

var shared struct {
	inMain atomic.Bool
	once   sync.Once
	dir    string
	srv    *Server
	err    error
}

// Main runs a package's tests and then stops the package's shared node (if
// a test started one). Call it from TestMain: os.Exit(rabbittest.Main(m)).
func Main(m *testing.M) int {
	shared.inMain.Store(true)
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "rabbittest: stopping the shared node: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	return code
}

// Start returns the URL ("/" virtual host, with credentials) of the
// package's shared node, booting it on first use. The package's TestMain
// must call Main, which stops the node after the last test.
func Start(tb testing.TB) (url string) {
	tb.Helper()
	return Shared(tb).URL()
}

// Shared returns the package's shared node (see Start). Tests that restart
// it must not run in parallel with others.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	if skip := Installed(); skip != "" {
		tb.Skip(skip)
	}
	if !shared.inMain.Load() {
		tb.Fatal("rabbittest: the package's TestMain must call rabbittest.Main so the shared node is stopped after the tests")
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "nimbus-rabbit-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		shared.srv, shared.err = launch(dir)
	})
	if shared.err != nil {
		tb.Fatalf("starting the shared rabbitmq node: %v", shared.err)
	}
	return shared.srv
}

// New boots a node for this test alone and stops it on cleanup (for tests
// that stop or restart their broker).
func New(tb testing.TB) *Server {
	tb.Helper()
	if skip := Installed(); skip != "" {
		tb.Skip(skip)
	}
	s, err := launch(tb.TempDir())
	if err != nil {
		tb.Fatalf("starting a rabbitmq node: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("rabbitmq node %s output (tail):\n%s", s.Node, s.Log())
		}
		if err := s.Stop(); err != nil {
			tb.Errorf("stopping rabbitmq node %s: %v", s.Node, err)
		}
	})
	return s
}

// launch writes a node's files under dir and boots it, retrying with fresh
// ports when the first attempt fails (a port picked as free may be taken
// before the node binds it).
func launch(dir string) (*Server, error) {
	var last error
	for attempt := 0; attempt < startAttempts; attempt++ {
		s, err := prepare(dir)
		if err != nil {
			return nil, err
		}
		if err = s.start(); err == nil {
			return s, nil
		}
		_ = s.Stop()
		last = err
	}
	return nil, fmt.Errorf("%d attempts: %w", startAttempts, last)
}

func prepare(parent string) (*Server, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	id, err := randomHex(6)
	if err != nil {
		return nil, err
	}
	password, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Node:     "nimbus-" + id + "@localhost",
		Password: password,
		Port:     ports[0],
		dir:      filepath.Join(parent, "rabbit-"+id),
		distPort: ports[1],
		epmdPort: ports[2],
		out:      &tail{max: logTail},
	}
	for _, d := range []string{s.dir, filepath.Join(s.dir, "mnesia"), filepath.Join(s.dir, "log")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	defs, err := definitions(password)
	if err != nil {
		return nil, err
	}
	conf := strings.Join([]string{
		"loopback_users = none",
		"default_user = " + User,
		"default_pass = " + password,
		"disk_free_limit.absolute = 1MB",
		"load_definitions = " + filepath.Join(s.dir, "definitions.json"),
		"",
	}, "\n")
	files := map[string][]byte{
		"rabbitmq.conf":    []byte(conf),
		"enabled_plugins":  []byte("[].\n"),
		"definitions.json": defs,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// definitions is the node's boot-time definitions file: User with the
// password on both virtual hosts.
func definitions(password string) ([]byte, error) {
	salt := make([]byte, 4)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append(append([]byte{}, salt...), password...))
	hash := base64.StdEncoding.EncodeToString(append(salt, sum[:]...))
	type perm struct {
		User      string `json:"user"`
		Vhost     string `json:"vhost"`
		Configure string `json:"configure"`
		Write     string `json:"write"`
		Read      string `json:"read"`
	}
	defs := map[string]any{
		"users": []map[string]any{{
			"name": User, "password_hash": hash,
			"hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator",
		}},
		"vhosts": []map[string]string{{"name": "/"}, {"name": ExtraVhost}},
		"permissions": []perm{
			{User, "/", ".*", ".*", ".*"},
			{User, ExtraVhost, ".*", ".*", ".*"},
		},
	}
	return json.Marshal(defs)
}

// env is the node's environment: the test process's minus anything that
// configures RabbitMQ or Erlang, plus the node's own files and ports.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RABBITMQ_") || strings.HasPrefix(kv, "ERL_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+s.dir, // the Erlang cookie lives here
		"RABBITMQ_NODENAME="+s.Node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(s.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(s.distPort),
		"ERL_EPMD_PORT="+strconv.Itoa(s.epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_MNESIA_BASE="+filepath.Join(s.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(s.dir, "log"),
		"RABBITMQ_LOGS=-",
		"RABBITMQ_CONFIG_FILE="+filepath.Join(s.dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(s.dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(s.dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(s.dir, "enabled_plugins"),
		"RABBITMQ_PLUGINS_EXPAND_DIR="+filepath.Join(s.dir, "plugins-expand"),
		"RABBITMQ_PID_FILE="+filepath.Join(s.dir, "rabbitmq.pid"),
	)
}

// start boots the node (after its epmd) and waits until it accepts an
// AMQP connection.
func (s *Server) start() error {
	epmd, err := s.startEpmd()
	s.mu.Lock()
	s.epmd = epmd
	s.mu.Unlock()
	if err != nil {
		return err
	}
	cmd := exec.Command(ServerScript)
	cmd.Dir = s.dir
	cmd.Env = s.env()
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	// SIGTERM, which the script turns into a clean node stop, if the test
	// process dies without stopping the node.
	node, err := spawn(cmd, syscall.SIGTERM)
	if err != nil {
		return fmt.Errorf("running %s: %w", ServerScript, err)
	}
	s.mu.Lock()
	s.node = node
	s.mu.Unlock()
	return s.waitReady(node.done)
}

// startEpmd runs the node's epmd as a child of the test process (left to
// the node, epmd would daemonise out of reach) and waits until it listens.
func (s *Server) startEpmd() (*proc, error) {
	bin, err := exec.LookPath("epmd")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-port", strconv.Itoa(s.epmdPort), "-address", "127.0.0.1")
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	p, err := spawn(cmd, syscall.SIGKILL)
	if err != nil {
		return nil, fmt.Errorf("running epmd: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.epmdPort))
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("epmd did not listen on %s within %s; output:\n%s", addr, readyTimeout, s.Log())
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("epmd exited while starting; output:\n%s", s.Log())
		case <-tick.C:
		}
	}
}

func (s *Server) waitReady(done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := amqp.DialConfig(s.URL(), amqp.Config{Dial: amqp.DefaultDial(dialTimeout)})
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s accepted no AMQP connection within %s (last: %v); output:\n%s",
				s.Node, readyTimeout, err, s.Log())
		}
		select {
		case <-done:
			return fmt.Errorf("node %s exited while starting; output:\n%s", s.Node, s.Log())
		case <-tick.C:
		}
	}
}

// Stop stops the node (SIGTERM to its process group: the start script,
// beam.smp and its helpers; SIGKILL after 30 s) and then its epmd.
// Stopping a stopped node does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	node, epmd := s.node, s.epmd
	s.node, s.epmd = nil, nil
	s.mu.Unlock()
	var err error
	if node != nil && node.stop(syscall.SIGTERM, stopTimeout) {
		err = fmt.Errorf("node %s did not stop within %s of SIGTERM; killed", s.Node, stopTimeout)
	}
	if epmd != nil && epmd.stop(syscall.SIGTERM, stopTimeout) && err == nil {
		err = fmt.Errorf("epmd of node %s did not stop within %s of SIGTERM; killed", s.Node, stopTimeout)
	}
	return err
}

// proc is a child process leading its own process group.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
}

// spawn starts cmd in a process group of its own; deathSig reaches it if
// the test process dies first.
func spawn(cmd *exec.Cmd, deathSig syscall.Signal) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop signals the process group and waits for the leader to exit,
// killing the group after grace; it reports whether it had to.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) (killed bool) {
	select {
	case <-p.done:
		return false
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return true
	}
}

// Restart stops the node and boots it again with the same name, ports and
// data: durable queues and persistent messages survive, connections do not.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if err := s.Stop(); err != nil {
		tb.Fatalf("restarting rabbitmq node: %v", err)
	}
	s.Boot(tb)
}

// Boot starts a stopped node again with the same name, ports and data.
func (s *Server) Boot(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	running := s.node != nil
	s.mu.Unlock()
	if running {
		tb.Fatalf("rabbitmq node %s is running", s.Node)
	}
	if err := s.start(); err != nil {
		tb.Fatalf("booting rabbitmq node again: %v", err)
	}
}

// QueueKind is a queue type.
type QueueKind string

// Queue types.
const (
	Classic QueueKind = "classic"
	Quorum  QueueKind = "quorum"
)

// DeclareQueue declares a durable queue of the given kind.
func DeclareQueue(tb testing.TB, amqpURL, name string, kind QueueKind) {
	tb.Helper()
	withChannel(tb, amqpURL, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": string(kind)})
		return err
	})
}

// DeleteQueue deletes a queue (and its messages).
func DeleteQueue(tb testing.TB, amqpURL, name string) {
	tb.Helper()
	withChannel(tb, amqpURL, func(ch *amqp.Channel) error {
		_, err := ch.QueueDelete(name, false, false, false)
		return err
	})
}

// Inspect returns a queue's ready-message and consumer counts.
func Inspect(tb testing.TB, amqpURL, name string) amqp.Queue {
	tb.Helper()
	var q amqp.Queue
	withChannel(tb, amqpURL, func(ch *amqp.Channel) (err error) {
		q, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
		return err
	})
	return q
}

// Publish sends messages to a queue through the default exchange and waits
// until the broker has confirmed every one.
func Publish(tb testing.TB, amqpURL, queue string, msgs ...amqp.Publishing) {
	tb.Helper()
	withChannel(tb, amqpURL, func(ch *amqp.Channel) error {
		if err := ch.Confirm(false); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var confirms []*amqp.DeferredConfirmation
		for _, m := range msgs {
			c, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, m)
			if err != nil {
				return err
			}
			confirms = append(confirms, c)
		}
		for i, c := range confirms {
			ok, err := c.WaitContext(ctx)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("broker nacked message %d", i)
			}
		}
		return nil
	})
}

func withChannel(tb testing.TB, amqpURL string, f func(*amqp.Channel) error) {
	tb.Helper()
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Dial: amqp.DefaultDial(dialTimeout)})
	if err != nil {
		tb.Fatalf("rabbittest: connecting: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatalf("rabbittest: opening a channel: %v", err)
	}
	if err := f(ch); err != nil {
		tb.Fatalf("rabbittest: %v", err)
	}
	_ = ch.Close()
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
