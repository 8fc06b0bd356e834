package plugintest_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// TestHandshakeLine checks the binary's first stdout line is go-plugin's
// handshake with Nomad's versions and gRPC over a Unix socket, and that
// without the cookie it refuses to serve.
func TestHandshakeLine(t *testing.T) {
	bin := plugintest.BuildDriver(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		nomadplugin.Handshake.MagicCookieKey+"="+nomadplugin.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=2",
		"PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^1\|2\|unix\|/[^|]+\|grpc\|\n$`).MatchString(line) {
		t.Errorf("handshake line = %q", line)
	}

	noCookie := exec.Command(bin)
	noCookie.Env = []string{"PATH=" + os.Getenv("PATH")}
	b, err := noCookie.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "This binary is a plugin") {
		t.Errorf("without the cookie: err %v, output %q", err, b)
	}
}

// TestSurvivesBrokenStderr is the agent-crash case: the plugin's stderr
// pipe loses its reader, the plugin keeps logging into it, and a new client
// must still be able to reattach and call it.
func TestSurvivesBrokenStderr(t *testing.T) {
	bin := plugintest.BuildDriver(t)
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), nomadplugin.Handshake.MagicCookieKey+"="+nomadplugin.Handshake.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=2")
	cmd.Stderr = errW
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errW.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(line), "|")
	if len(f) < 5 || f[2] != "unix" {
		t.Fatalf("handshake line %q", line)
	}
	errR.Close() // the agent is gone: every stderr write now fails with EPIPE
	rc := &plugin.ReattachConfig{Protocol: plugin.ProtocolGRPC, ProtocolVersion: 2, Addr: &net.UnixAddr{Name: f[3], Net: "unix"}, Pid: cmd.Process.Pid}
	for i := 0; i < 3; i++ { // each round logs (SetConfig, stream close) into the broken pipe
		h := plugintest.Reattach(t, rc, nil)
		if _, err := h.Configure(testCtx(t), nil, true); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		c, cancel := context.WithCancel(testCtx(t))
		fp, err := h.Driver.Fingerprint(c, &driverpb.FingerprintRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fp.Recv(); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		cancel()
		select {
		case err := <-exited:
			t.Fatalf("plugin died after writing to a broken stderr: %v", err)
		default:
		}
	}
}
