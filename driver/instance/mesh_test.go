package instance

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/mesh"
)

// meshSource follows service's leaf through the test agent.
func meshSource(t *testing.T, cc *api.Client, service string) *mesh.Source {
	t.Helper()
	src, err := mesh.NewSource(cc.Agent(), mesh.SourceConfig{Service: service, WaitTime: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := src.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return src
}

// meshInvoke runs one echo invocation through c.
func meshInvoke(c *invokeapi.Client, addr, payload string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, addr, &invokeapi.Request{Payload: []byte(payload)})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String(), nil
}

func setIntention(t *testing.T, cc *api.Client, src, dst, action string) {
	t.Helper()
	in := &api.Intention{SourceName: src, DestinationName: dst, Action: api.IntentionAction(action)}
	if _, err := cc.Connect().IntentionUpsert(in, nil); err != nil {
		t.Fatalf("intention %s → %s %s: %v", src, dst, action, err)
	}
}

// TestMeshEndpoint runs an instance as a Connect-native service against a
// real Consul dev agent: the gateway's leaf gets in, intentions decide, a
// leaf of another service, a forged certificate and no certificate do
// not, and a CA rotation keeps calls working.
func TestMeshEndpoint(t *testing.T) {
	agent := consultest.Start(t)
	cc := agent.Client(t)
	cfg := testConfig(t, "echo")
	svc := "nimbus-" + cfg.Function
	cfg.Mesh = &MeshConfig{Service: svc, Address: agent.HTTPAddr}
	var asked atomic.Int32
	in := startWith(t, cfg, func(in *Instance) {
		in.wrapAuthz = func(a mesh.AuthorizeAgent) mesh.AuthorizeAgent { return countingAgent{a, &asked} }
	})

	gw := meshSource(t, cc, "nimbus-gateway")
	gwClient := &invokeapi.Client{TLS: gw.ClientTLSConfig(svc)}
	if got, err := meshInvoke(gwClient, in.Addr(), `{"via":"mesh"}`); err != nil || got != `{"via":"mesh"}` {
		t.Fatalf("gateway → instance over mTLS: %q, %v", got, err)
	}

	t.Run("intentions asked once per connection and second", func(t *testing.T) {
		c := &invokeapi.Client{TLS: gw.ClientTLSConfig(svc)}
		before := asked.Load()
		start := time.Now()
		for range 20 {
			if _, err := meshInvoke(c, in.Addr(), `{}`); err != nil {
				t.Fatal(err)
			}
		}
		// One connection: one question, plus one per meshAuthzTTL the
		// calls took.
		limit := int32(1 + time.Since(start)/meshAuthzTTL)
		if n := asked.Load() - before; n < 1 || n > limit {
			t.Fatalf("the agent was asked %d times for 20 calls on one connection, want 1..%d", n, limit)
		}
	})

	t.Run("plain HTTP is refused", func(t *testing.T) {
		_, err := meshInvoke(&invokeapi.Client{}, in.Addr(), `{}`)
		if err == nil {
			t.Fatal("a plain HTTP call reached a Connect-native instance")
		}
	})

	t.Run("health needs no client certificate", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // Consul's check does the same
		resp, err := hc.Get("https://" + in.Addr() + invokeapi.PathHealth)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("health without a client certificate: %d", resp.StatusCode)
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		c := gw.ClientTLSConfig(svc)
		c.GetClientCertificate = nil
		_, err := meshInvoke(&invokeapi.Client{TLS: c}, in.Addr(), `{}`)
		if !errors.Is(err, invokeapi.ErrUnauthorized) {
			t.Fatalf("a call without a client certificate: %v, want Unauthorized", err)
		}
		st, err := (&invokeapi.Client{TLS: c}).Status(context.Background(), in.Addr())
		if st != nil || !errors.Is(err, invokeapi.ErrUnauthorized) {
			t.Fatalf("status without a client certificate: %v, %v", st, err)
		}
	})

	t.Run("forged certificate", func(t *testing.T) {
		forged := consultest.ForgedLeaf(t, gw.Leaf().ID.String())
		c := gw.ClientTLSConfig(svc)
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &forged, nil }
		_, err := meshInvoke(&invokeapi.Client{TLS: c}, in.Addr(), `{}`)
		var ie *invokeapi.Error
		if err == nil || errors.As(err, &ie) {
			t.Fatalf("a self-signed nimbus-gateway certificate: %v, want the handshake refused", err)
		}
	})

	t.Run("instance must prove the function's identity", func(t *testing.T) {
		_, err := meshInvoke(&invokeapi.Client{TLS: gw.ClientTLSConfig("nimbus-other")}, in.Addr(), `{}`)
		if err == nil || !strings.Contains(err.Error(), "not service") {
			t.Fatalf("calling %s while expecting nimbus-other: %v", svc, err)
		}
	})

	t.Run("impostor service", func(t *testing.T) {
		// The operator's intentions for the function: only the gateway.
		setIntention(t, cc, "nimbus-gateway", svc, "allow")
		setIntention(t, cc, "*", svc, "deny")
		web := meshSource(t, cc, "web")
		webClient := &invokeapi.Client{TLS: web.ClientTLSConfig(svc)}
		eventually(t, 10*time.Second, "web refused by intentions", func() bool {
			_, err := meshInvoke(webClient, in.Addr(), `{}`)
			return errors.Is(err, invokeapi.ErrForbidden)
		})
		if _, err := meshInvoke(gwClient, in.Addr(), `{}`); err != nil {
			t.Fatalf("the gateway after its allow intention: %v", err)
		}
	})

	t.Run("intention deny", func(t *testing.T) {
		setIntention(t, cc, "nimbus-gateway", svc, "deny")
		var last error
		eventually(t, 10*time.Second, "the gateway refused once denied", func() bool {
			_, last = meshInvoke(gwClient, in.Addr(), `{}`)
			return errors.Is(last, invokeapi.ErrForbidden)
		})
		if !strings.Contains(last.Error(), "intentions deny nimbus-gateway") {
			t.Fatalf("refusal does not say why: %v", last)
		}
		setIntention(t, cc, "nimbus-gateway", svc, "allow")
		eventually(t, 10*time.Second, "the gateway admitted again", func() bool {
			_, err := meshInvoke(gwClient, in.Addr(), `{}`)
			return err == nil
		})
	})

	t.Run("CA rotation", func(t *testing.T) {
		var handshakes atomic.Int32
		c := gw.ClientTLSConfig(svc)
		c.VerifyConnection = func(tls.ConnectionState) error { handshakes.Add(1); return nil }
		counted := &invokeapi.Client{TLS: c}
		if _, err := meshInvoke(counted, in.Addr(), `{}`); err != nil {
			t.Fatal(err)
		}
		gwSerial, instSerial := gw.Leaf().Serial, in.mesh.source.Leaf().Serial
		consultest.RotateCA(t, cc)
		eventually(t, 30*time.Second, "both leaves re-issued", func() bool {
			return gw.Leaf().Serial != gwSerial && in.mesh.source.Leaf().Serial != instSerial
		})
		// The pooled connection (old leaves) keeps working, and so does a
		// new one with the new leaves.
		if _, err := meshInvoke(counted, in.Addr(), `{"after":"rotation"}`); err != nil {
			t.Fatalf("pooled connection after the rotation: %v", err)
		}
		if got := handshakes.Load(); got != 1 {
			t.Fatalf("%d handshakes for two calls on one pooled connection", got)
		}
		if got, err := meshInvoke(&invokeapi.Client{TLS: gw.ClientTLSConfig(svc)}, in.Addr(), `{"new":"conn"}`); err != nil || got != `{"new":"conn"}` {
			t.Fatalf("new connection after the rotation: %q, %v", got, err)
		}
	})
}

func TestMeshConfigValidation(t *testing.T) {
	cfg := testConfig(t, "echo")
	cfg.Mesh = &MeshConfig{Service: "nimbus-x", Address: "127.0.0.1:8500"}
	cfg.InvokeSecret = "s"
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "mesh replaces invoke_secret") {
		t.Fatalf("mesh with a secret: %v", err)
	}
	cfg.InvokeSecret = ""
	cfg.Mesh.Address = ""
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "mesh.address") {
		t.Fatalf("mesh without an agent: %v", err)
	}
}

// countingAgent counts the intention questions put to the real agent.
type countingAgent struct {
	mesh.AuthorizeAgent
	n *atomic.Int32
}

func (c countingAgent) ConnectAuthorize(p *api.AgentAuthorizeParams) (*api.AgentAuthorize, error) {
	c.n.Add(1)
	return c.AuthorizeAgent.ConnectAuthorize(p)
}
