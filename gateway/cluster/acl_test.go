package cluster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/consultest"
)

// A gateway against a real Consul with ACLs on (default deny) works with
// the token its consul block names in token_file and the policy
// consul.GatewayACLPolicy: it fetches its mesh leaf, registers itself
// twice (plain, and Connect-native at the mesh listener) and its URL
// services; without the token, or with a token lacking the policy, the
// agent refuses it.
func TestClusterWithConsulACLs(t *testing.T) {
	agent := consultest.StartWithACLs(t)
	admin := agent.Client(t)
	dir := t.TempDir()
	writeToken := func(name, tok string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(tok+"\n"), 0o400); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writeToken("gateway.token", agent.TokenFor(t, consul.GatewayACLPolicy))
	weak := writeToken("weak.token", agent.TokenFor(t, `node_prefix "" { policy = "read" }`))
	ctx := context.Background()

	newCluster := func(t *testing.T, tokenFile string) *Cluster {
		t.Helper()
		cfg := clusterConfig("127.0.0.1:0", agent.HTTPAddr)
		cfg.Consul.TokenFile = tokenFile
		cfg.Consul.CheckInterval = "1s"
		cfg.Connect = &config.ConnectConfig{Enabled: true, Listen: "127.0.0.1:0"}
		c, err := New(cfg, Options{}, gatewaytest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}

	t.Run("with the gateway policy", func(t *testing.T) {
		c := newCluster(t, good)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := c.mesh.Source.Ready(rctx); err != nil {
			t.Fatalf("the gateway's leaf under ACLs: %v", err)
		}
		if err := c.registrar.SetURLFunctions(ctx, []consul.URLFunction{{Function: "hello", Qualifier: "$LATEST", Auth: "NONE"}}); err != nil {
			t.Fatal(err)
		}
		if err := c.registrar.Register(ctx); err != nil {
			t.Fatalf("registering with the gateway token: %v", err)
		}
		t.Cleanup(func() { _ = c.registrar.Deregister(ctx) })
		plainPort, meshPort := c.ln.Addr().(*net.TCPAddr).Port, c.mesh.Listener.Addr().(*net.TCPAddr).Port

		// nimbus-gateway: Connect-native at the mesh port for mesh callers
		// (/v1/health/connect), plus the plain registration.
		conn, _, err := admin.Health().Connect("nimbus-gateway", "", false, nil)
		if err != nil || len(conn) != 1 {
			t.Fatalf("connect-capable nimbus-gateway instances: %v %v", conn, err)
		}
		if s := conn[0].Service; s.Port != meshPort || s.Connect == nil || !s.Connect.Native || s.ID != c.registrar.ServiceID()+":mesh" {
			t.Fatalf("mesh registration %+v, want Connect-native at mesh port %d", s, meshPort)
		}
		all, _, err := admin.Health().Service("nimbus-gateway", "", false, nil)
		if err != nil || len(all) != 2 {
			t.Fatalf("nimbus-gateway instances: %d %v, want the plain and the mesh one", len(all), err)
		}
		for _, e := range all {
			native := e.Service.Connect != nil && e.Service.Connect.Native
			if native != (e.Service.Port == meshPort) || (!native && e.Service.Port != plainPort) {
				t.Fatalf("registration %s at port %d native %t (plain %d, mesh %d)", e.Service.ID, e.Service.Port, native, plainPort, meshPort)
			}
		}
		if u, _, err := admin.Health().Connect("hello-url", "", false, nil); err != nil || len(u) != 1 || u[0].Service.Port != meshPort {
			t.Fatalf("hello-url under ACLs: %v %v", u, err)
		}
		// Deregistering removes both gateway registrations.
		if err := c.registrar.Deregister(ctx); err != nil {
			t.Fatal(err)
		}
		if all, _, _ := admin.Health().Service("nimbus-gateway", "", false, nil); len(all) != 0 {
			t.Fatalf("%d nimbus-gateway instances left after Deregister", len(all))
		}
	})

	for name, file := range map[string]string{"without a token": "", "with a token lacking the policy": weak} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, file)
			err := c.registrar.Register(ctx)
			if err == nil || !strings.Contains(err.Error(), "403") {
				t.Fatalf("Register = %v, want Consul's 403", err)
			}
		})
	}
}
