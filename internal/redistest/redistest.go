package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	binary        = "redis-server"
	startAttempts = 3
	readyTimeout  = 15 * time.Second
	stopTimeout   = 10 * time.Second
	logTail       = 16 * 1024
)

// Options configure a server.
type Options struct {
	// Password, when set, is the server's requirepass (the default user's
	// password); URL then carries it.
	Password string
}

// Server is one redis-server process on a fixed loopback port. It may be
// stopped and started again; the port stays the same, the data does not
// (there is no persistence).
type Server struct {
	// Port is the loopback TCP port the server listens on.
	Port     int
	password string
	bin      string
	dir      string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *tail
}

// Start runs a redis-server for the test, stops it on cleanup and returns
// its URL (redis://127.0.0.1:PORT/0). It skips tb when redis-server is not
// on PATH.
func Start(tb testing.TB) (url string) {
	tb.Helper()
	return StartServer(tb, Options{}).URL()
}

// StartServer is Start with options, returning the Server so the test can
// stop and restart it.
func StartServer(tb testing.TB, o Options) *Server {
	tb.Helper()
	bin, err := exec.LookPath(binary)
	if err != nil {
		tb.Skipf("redis-server not on PATH: %v (install the Debian package redis-server)", err)
	}
	var last error
	for attempt := 0; attempt < startAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s := &Server{Port: port, password: o.Password, bin: bin, dir: tb.TempDir(), log: &tail{}}
		if err := s.Start(); err != nil {
			// A port seen free can be taken before the server binds it;
			// another port usually fixes that.
			last = err
			continue
		}
		tb.Cleanup(func() {
			if tb.Failed() {
				tb.Logf("redis-server output (tail):\n%s", s.Log())
			}
			if err := s.Stop(); err != nil {
				tb.Logf("stopping redis-server: %v", err)
			}
		})
		return s
	}
	tb.Fatalf("redistest: starting redis-server (%d attempts): %v", startAttempts, last)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the server's redis:// URL with database 0, carrying the password
// when the server requires one.
func (s *Server) URL() string {
	u := url.URL{Scheme: "redis", Host: s.Addr(), Path: "/0"}
	if s.password != "" {
		u.User = url.UserPassword("", s.password)
	}
	return u.String()
}

// Log returns the tail of the server's output (all runs).
func (s *Server) Log() string { return s.log.String() }

// Start starts the server process (again) on its port and waits until it
// answers PING. Starting a running server is an error.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		select {
		case <-s.done:
		default:
			return errors.New("redis-server is already running")
		}
	}
	args := []string{
		"--save", "", "--appendonly", "no",
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--dir", s.dir,
	}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.ping()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited before it was ready: %w\n%s", err, s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("redis-server not ready within %s: %w", readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop terminates the server and waits for it to exit. Stopping a stopped
// server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused server must run to exit
	select {
	case <-s.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	return fmt.Errorf("redis-server did not exit within %s of SIGTERM; killed", stopTimeout)
}

// Pause freezes the running server (SIGSTOP): it keeps its port and
// connections but answers nothing, as a hung or unreachable Redis would.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT).
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("redis-server is not running")
	}
	select {
	case <-s.done:
		return errors.New("redis-server is not running")
	default:
	}
	return s.cmd.Process.Signal(sig)
}

// ping sends (AUTH and) PING over a fresh connection and expects PONG.
func (s *Server) ping() error {
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	rd := bufio.NewReader(conn)
	if s.password != "" {
		if _, err := conn.Write(command("AUTH", s.password)); err != nil {
			return err
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("AUTH answered %q", strings.TrimSpace(line))
		}
	}
	if _, err := conn.Write(command("PING")); err != nil {
		return err
	}
	line, err := rd.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// command encodes a RESP array of bulk strings.
func command(args ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return []byte(b.String())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last logTail bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > logTail {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-logTail:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
