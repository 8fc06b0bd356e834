package instance

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

type netReport struct {
	Interfaces []string          `json:"interfaces"`
	Connect    map[string]string `json:"connect"`
	Lookup     string            `json:"lookup"`
}

func probeNetwork(t *testing.T, in *Instance, connect []string) (netReport, bool) {
	t.Helper()
	ev, _ := json.Marshal(map[string]any{"connect": connect, "lookup": "example.com"})
	r := invoke(t, in, &invokeapi.Request{Payload: ev})
	if r.resp.FunctionError != "" {
		t.Fatalf("netprobe: %s", r.body)
	}
	var rep netReport
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	t.Logf("netprobe: %s", r.body)
	return rep, r.report.ColdStart
}

// hostListeners listens on the host's loopback and, when it has one, on a
// non-loopback IPv4 address of the host; they accept until the test ends.
func hostListeners(t *testing.T) (loop, other string) {
	t.Helper()
	listen := func(addr string) string {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return ln.Addr().String()
	}
	loop = listen("127.0.0.1:0")
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return loop, listen(net.JoinHostPort(ipn.IP.String(), "0"))
		}
	}
	return loop, ""
}

// TestNetworkNone: a function with network "none" sees only lo, cannot
// reach a listener on the host's loopback (its 127.0.0.1 is its own) or
// the host's other addresses, resolves nothing, and still answers through
// its Runtime API, cold and warm. The host network default is unchanged.
func TestNetworkNone(t *testing.T) {
	loop, other := hostListeners(t)
	targets := []string{loop}
	if other != "" {
		targets = append(targets, other)
	}

	host := start(t, testConfig(t, "netprobe"))
	if !host.isolated {
		t.Skipf("environments are not isolated on this host: %v", host.isolationMissing)
	}
	hrep, _ := probeNetwork(t, host, targets)
	if hrep.Connect[loop] != "ok" {
		t.Errorf("host network: dialling the host's %s: %s, want ok", loop, hrep.Connect[loop])
	}
	if other != "" && len(hrep.Interfaces) < 2 {
		t.Errorf("host network: interfaces %v, want the host's", hrep.Interfaces)
	}

	cfg := testConfig(t, "netprobe")
	cfg.Network = NetworkNone
	in := start(t, cfg)
	for i, wantCold := range []bool{true, false} {
		rep, cold := probeNetwork(t, in, targets)
		if cold != wantCold {
			t.Errorf("invocation %d: cold %v, want %v", i, cold, wantCold)
		}
		if len(rep.Interfaces) != 1 || rep.Interfaces[0] != "lo" {
			t.Errorf("interfaces %v, want only lo", rep.Interfaces)
		}
		if got := rep.Connect[loop]; !strings.Contains(got, "connection refused") {
			t.Errorf("dialling the host's %s: %q, want connection refused", loop, got)
		}
		if other != "" {
			if got := rep.Connect[other]; !strings.Contains(got, "network is unreachable") {
				t.Errorf("dialling the host's %s: %q, want network is unreachable", other, got)
			}
		}
		if rep.Lookup == "ok" || rep.Lookup == "" {
			t.Errorf("resolving example.com: %q, want an error", rep.Lookup)
		}
	}
}

// TestNetworkNoneNeedsTheSandbox: where environments are not isolated, a
// function with network "none" is refused, never given the host's network.
func TestNetworkNoneNeedsTheSandbox(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.Network = NetworkNone
	cfg.Isolation.Disabled = true
	if _, err := New(cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), `network "none" needs the sandbox`) {
		t.Fatalf("New: %v, want network none refused", err)
	}
	cfg.Network = "bridge"
	cfg.Isolation.Disabled = false
	if _, err := New(cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "network") {
		t.Fatalf("New: %v, want an unknown network refused", err)
	}
}
