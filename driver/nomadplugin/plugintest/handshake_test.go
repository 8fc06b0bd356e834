package plugintest_test

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
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
