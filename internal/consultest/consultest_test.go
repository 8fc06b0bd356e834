package consultest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestAgentServesHTTPAndDNS(t *testing.T) {
	a := Start(t)
	c := a.Client(t)
	leader, err := c.Status().Leader()
	if err != nil || leader == "" {
		t.Fatalf("leader = %q, %v", leader, err)
	}
	self, err := c.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if v := self["Config"]["Version"]; os.Getenv(EnvBinary) == "" && v != Version {
		t.Fatalf("agent version %v, want %s", v, Version)
	}

	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, a.DNSAddr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := r.LookupHost(ctx, "consul.service.consul")
	if err != nil {
		t.Fatalf("DNS lookup through %s: %v", a.DNSAddr, err)
	}
	if len(addrs) != 1 || addrs[0] != "127.0.0.1" {
		t.Fatalf("consul.service.consul = %v, want [127.0.0.1]", addrs)
	}

	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status().Leader(); err == nil {
		t.Fatal("agent still answers after Stop")
	}
}

func TestTwoAgentsDoNotCollide(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.HTTPAddr == b.HTTPAddr || a.DNSAddr == b.DNSAddr {
		t.Fatalf("agents share ports: %+v %+v", a, b)
	}
	for _, x := range []*Agent{a, b} {
		nodes, _, err := x.Client(t).Catalog().Nodes(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 1 || nodes[0].Node != x.NodeName {
			t.Fatalf("agent %s sees nodes %v; want only itself", x.HTTPAddr, nodes)
		}
	}
}

// The cache is keyed by Version; it must be the version tools/consul pins,
// and Consul's own submodules must stay at the versions v1.16.1 requires
// (newer ones are not MPL-licensed and may not build with it).
func TestVersionMatchesToolsModule(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "tools", "consul", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"github.com/hashicorp/consul":                 "v" + Version,
		"github.com/hashicorp/consul/api":             "v1.24.0",
		"github.com/hashicorp/consul/envoyextensions": "v0.4.1",
		"github.com/hashicorp/consul/proto-public":    "v0.4.1",
		"github.com/hashicorp/consul/sdk":             "v0.14.1",
		"github.com/hashicorp/consul/troubleshoot":    "v0.3.1",
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 {
			if _, ok := want[f[0]]; ok {
				got[f[0]] = f[1]
			}
		}
	}
	for mod, v := range want {
		if got[mod] != v {
			t.Errorf("tools/consul requires %s %q, want %s", mod, got[mod], v)
		}
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{max: 8}
	tb.Write([]byte("0123456789"))
	tb.Write([]byte("ab"))
	if got := tb.String(); got != "456789ab" {
		t.Fatalf("tail = %q", got)
	}
}

// A persistent agent killed with SIGKILL comes back on the same address
// with what was registered through it, and a -dev agent refuses to restart.
func TestPersistentAgentSurvivesKill(t *testing.T) {
	a := StartPersistent(t)
	c := a.Client(t)
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "kept-1", Name: "kept", Port: 1234}); err != nil {
		t.Fatal(err)
	}
	if err := a.Restart(); err == nil {
		t.Fatal("Restart of a running agent succeeded")
	}
	a.Kill()
	if _, err := c.Status().Leader(); err == nil {
		t.Fatal("agent still answers after Kill")
	}
	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	svcs, err := c.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if s := svcs["kept-1"]; s == nil || s.Service != "kept" || s.Port != 1234 {
		t.Fatalf("after the restart the agent holds %v, want kept-1", svcs)
	}

	d := Start(t)
	d.Kill()
	if err := d.Restart(); err == nil || !strings.Contains(err.Error(), "StartPersistent") {
		t.Fatalf("restarting a -dev agent: %v", err)
	}
}

// An agent with ACLs refuses the anonymous token, accepts its management
// token, and TokenFor makes a token with exactly the given rules.
func TestAgentWithACLs(t *testing.T) {
	a := StartWithACLs(t)
	if a.Token == "" {
		t.Fatal("no management token")
	}
	mgmt := a.Client(t)
	reg := &api.AgentServiceRegistration{Name: "svc-a", Port: 1}
	if err := mgmt.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("the management token cannot register: %v", err)
	}
	anon, err := api.NewClient(&api.Config{Address: a.HTTPAddr, Token: "anonymous"})
	if err != nil {
		t.Fatal(err)
	}
	if err := anon.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "svc-b", Port: 1}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("anonymous registration: %v, want 403", err)
	}
	scoped, err := api.NewClient(&api.Config{Address: a.HTTPAddr, Token: a.TokenFor(t, `service "svc-c" { policy = "write" }`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := scoped.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "svc-c", Port: 1}); err != nil {
		t.Fatalf("a token for svc-c cannot register it: %v", err)
	}
	if err := scoped.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "svc-d", Port: 1}); err == nil {
		t.Fatal("a token for svc-c registered svc-d")
	}
}
