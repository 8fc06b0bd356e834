package redistest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// send runs one command on a fresh connection and returns the reply line.
func send(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(command(args...)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestStartStopRestart(t *testing.T) {
	s := StartServer(t, Options{})
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Fatalf("URL %q, want %q", s.URL(), want)
	}
	if r, err := send(t, s.Addr(), "SET", "k", "v"); err != nil || r != "+OK" {
		t.Fatalf("SET: %q %v", r, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, s.Addr(), "PING"); err == nil {
		t.Fatal("PING answered after Stop")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("starting a running server succeeded")
	}
	// Same port, no data kept.
	if r, err := send(t, s.Addr(), "EXISTS", "k"); err != nil || r != ":0" {
		t.Fatalf("EXISTS after restart: %q %v", r, err)
	}
}

func TestPassword(t *testing.T) {
	s := StartServer(t, Options{Password: "p w"})
	if want := "redis://:p%20w@" + s.Addr() + "/0"; s.URL() != want {
		t.Fatalf("URL %q, want %q", s.URL(), want)
	}
	if r, _ := send(t, s.Addr(), "PING"); !strings.HasPrefix(r, "-NOAUTH") {
		t.Fatalf("PING without AUTH answered %q", r)
	}
	if err := s.ping(); err != nil {
		t.Fatalf("PING with AUTH: %v", err)
	}
}

func TestStartReturnsAURL(t *testing.T) {
	url := Start(t)
	if !strings.HasPrefix(url, "redis://127.0.0.1:") || !strings.HasSuffix(url, "/0") {
		t.Fatalf("URL %q", url)
	}
}
