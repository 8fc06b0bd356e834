package versions

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNomad runs `nomad agent -dev` on loopback and returns its address
// once it has a leader.
func startNomad(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	httpPort, rpc, serf := freePort(t), freePort(t), freePort(t)
	cfg := fmt.Sprintf("bind_addr = \"127.0.0.1\"\nports {\n  http = %d\n  rpc  = %d\n  serf = %d\n}\n", httpPort, rpc, serf)
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "agent", "-dev", "-config", cfgPath, "-data-dir", filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nomad: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nomad agent log:\n%s", logs.String())
		}
	})
	addr := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	client, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if leader, err := client.Status().Leader(); err == nil && leader != "" {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nomad agent at %s has no leader after 60s", addr)
		}
		<-time.After(200 * time.Millisecond)
	}
}
