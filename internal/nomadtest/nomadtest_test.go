package nomadtest

import (
	"strings"
	"testing"
)

func TestAgentConfigCarriesOptions(t *testing.T) {
	cfg := agentConfig(Options{
		Persistent: true, PluginDir: "/p", ConsulAddr: "127.0.0.1:1", LogLevel: "DEBUG",
		HCL: "plugin \"raw_exec\" {}\n", NetworkInterface: "lo", ACLToken: "t",
	}, "/d", []int{1, 2, 3})
	for _, want := range []string{
		`data_dir  = "/d/data"`, `plugin_dir = "/p"`, `log_level = "DEBUG"`,
		"http = 1", "rpc  = 2", "serf = 3", "bootstrap_expect = 1",
		"consul {\n  address = \"127.0.0.1:1\"\n}", "plugin \"raw_exec\" {}\n",
		"client {\n  enabled = true\n  network_interface = \"lo\"\n", `"fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"`,
		"publish_allocation_metrics = true", "acl {\n  enabled = true\n}",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	dev := agentConfig(Options{}, "/d", []int{1, 2, 3})
	if !strings.Contains(dev, "fingerprint.denylist") || !strings.Contains(dev, "publish_allocation_metrics = true") {
		t.Errorf("dev config lacks the cloud fingerprint denylist or allocation metrics:\n%s", dev)
	}
	for _, absent := range []string{"plugin_dir", "server {", "consul {", "log_level", "enabled = true", "network_interface", "acl {"} {
		if strings.Contains(dev, absent) {
			t.Errorf("dev config has %q:\n%s", absent, dev)
		}
	}
}

func TestFreePortsAreDistinct(t *testing.T) {
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 3 || ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Fatalf("ports %v", ports)
	}
}

// With NOMAD_BINARY: a dev agent answers with a leader and a ready node,
// the CLI reaches it, and it stops.
func TestDevAgent(t *testing.T) {
	a := Start(t, Options{WaitForNode: true, SkipMessage: "NOMAD_BINARY is not set: skipping the nomadtest dev agent test"})
	c := a.Client(t)
	nodes, _, err := c.Nodes().List(nil)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes %v, %v", nodes, err)
	}
	if out, code := a.CLI(t, "node", "status"); code != 0 || !strings.Contains(out, nodes[0].ID[:8]) {
		t.Fatalf("nomad node status = %d:\n%s", code, out)
	}
	if out, code := a.CLI(t, "job", "status", "no-such-job"); code == 0 {
		t.Fatalf("nomad job status of a missing job exited 0:\n%s", out)
	}
	a.Stop(t)
	if _, err := c.Status().Leader(); err == nil {
		t.Fatal("agent still answers after Stop")
	}
}

// With NOMAD_BINARY: a persistent agent keeps its node identity across a
// crash and a restart.
func TestPersistentAgentRestarts(t *testing.T) {
	a := Start(t, Options{Persistent: true, WaitForNode: true, SkipMessage: "NOMAD_BINARY is not set: skipping the nomadtest persistent agent test"})
	before := nodeID(t, a)
	a.Kill(t)
	a.Restart(t)
	if after := nodeID(t, a); after != before {
		t.Fatalf("node %s after a restart, was %s", after, before)
	}
}

func nodeID(t *testing.T, a *Agent) string {
	t.Helper()
	nodes, _, err := a.Client(t).Nodes().List(nil)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes %v, %v", nodes, err)
	}
	return nodes[0].ID
}
