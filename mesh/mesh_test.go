package mesh_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/mesh"
)

func TestParseSpiffeID(t *testing.T) {
	for _, c := range []struct {
		in   string
		want mesh.SpiffeID
		ok   bool
	}{
		{"spiffe://1111.consul/ns/default/dc/dc1/svc/web", mesh.SpiffeID{TrustDomain: "1111.consul", Namespace: "default", Datacenter: "dc1", Service: "web"}, true},
		{"spiffe://1111.consul/ap/part/ns/ns1/dc/dc1/svc/web", mesh.SpiffeID{TrustDomain: "1111.consul", Partition: "part", Namespace: "ns1", Datacenter: "dc1", Service: "web"}, true},
		{"spiffe://1111.consul/agent/client/dc/dc1/id/node", mesh.SpiffeID{}, false},
		{"https://1111.consul/ns/default/dc/dc1/svc/web", mesh.SpiffeID{}, false},
		{"spiffe://1111.consul/ns/default/dc/dc1/svc/", mesh.SpiffeID{}, false},
		{"spiffe:///ns/default/dc/dc1/svc/web", mesh.SpiffeID{}, false},
	} {
		got, err := mesh.ParseSpiffeID(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSpiffeID(%q) = %+v, %v; want %+v ok=%t", c.in, got, err, c.want, c.ok)
		}
		if c.ok && got.String() != c.in {
			t.Errorf("String() = %q, want %q", got.String(), c.in)
		}
		if !c.ok && !errors.Is(err, mesh.ErrNotService) {
			t.Errorf("ParseSpiffeID(%q): error %v is not ErrNotService", c.in, err)
		}
	}
}

func TestServiceSNI(t *testing.T) {
	sni := mesh.ServiceSNI("hello-url", "", "dc1", "1111.consul")
	if sni != "hello-url.default.dc1.internal.1111.consul" {
		t.Fatalf("ServiceSNI = %q", sni)
	}
	svc, ns, dc, td, ok := mesh.ParseServiceSNI(sni)
	if !ok || svc != "hello-url" || ns != "default" || dc != "dc1" || td != "1111.consul" {
		t.Fatalf("ParseServiceSNI(%q) = %q %q %q %q %t", sni, svc, ns, dc, td, ok)
	}
	for _, bad := range []string{"hello-url.lambda-url.localhost", "", "a.b.c.external.d"} {
		if _, _, _, _, ok := mesh.ParseServiceSNI(bad); ok {
			t.Errorf("ParseServiceSNI(%q) ok", bad)
		}
	}
}

// meshServer is a Connect-native HTTP service: it serves with src's
// leaves, and authorizes every request with Consul's intentions against
// the service the client's SNI named.
type meshServer struct {
	addr string
	port int
}

func startMeshServer(t *testing.T, src *mesh.Source, authz *mesh.Authorizer) *meshServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: src.ServerTLSConfig(nil),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			peer, err := mesh.PeerFromState(r.TLS)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			target := src.Service()
			if svc, _, _, _, ok := mesh.ParseServiceSNI(r.TLS.ServerName); ok {
				target = svc
			}
			if err := authz.Authorize(r.Context(), target, peer); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			fmt.Fprintf(w, "%s -> %s", peer.ID, target)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return &meshServer{addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}
}

func registerNative(t *testing.T, c *api.Client, name string, port int) {
	t.Helper()
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: name, Name: name, Address: "127.0.0.1", Port: port,
		Connect: &api.AgentServiceConnect{Native: true},
	})
	if err != nil {
		t.Fatalf("registering %s: %v", name, err)
	}
}

func newSource(t *testing.T, c *api.Client, service string) *mesh.Source {
	t.Helper()
	src, err := mesh.NewSource(c.Agent(), mesh.SourceConfig{Service: service, WaitTime: 30 * time.Second})
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

func get(c *http.Client, u string) (int, string, *tls.ConnectionState, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.TLS, err
}

func TestMeshWithConsul(t *testing.T) {
	agent := consultest.Start(t)
	cc := agent.Client(t)

	web := newSource(t, cc, "web")
	leaf, roots := web.Leaf(), web.Roots()
	if leaf.ID.Service != "web" || leaf.ID.Datacenter != consultest.Datacenter || leaf.ID.TrustDomain != roots.TrustDomain {
		t.Fatalf("web leaf identity %s, roots trust domain %s", leaf.ID, roots.TrustDomain)
	}
	if !strings.HasSuffix(roots.TrustDomain, ".consul") {
		t.Fatalf("trust domain %q", roots.TrustDomain)
	}

	apiSrc := newSource(t, cc, "api")
	srv := startMeshServer(t, apiSrc, mesh.NewAuthorizer(cc.Agent()))
	registerNative(t, cc, "api", srv.port)
	client := mesh.HTTPClient(web, cc.Health(), "api")
	t.Cleanup(client.CloseIdleConnections)

	t.Run("allowed by default", func(t *testing.T) {
		code, body, cs, err := get(client, "https://api/")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET = %d %q, %v", code, body, err)
		}
		if want := leaf.ID.String() + " -> api"; body != want {
			t.Fatalf("body %q, want %q", body, want)
		}
		if cs.ServerName != apiSrc.SNI("api") {
			t.Fatalf("client sent SNI %q, want %q", cs.ServerName, apiSrc.SNI("api"))
		}
		if id, _ := mesh.CertSpiffeID(cs.PeerCertificates[0]); id.Service != "api" {
			t.Fatalf("server presented %s", id)
		}
	})

	t.Run("intention deny then allow", func(t *testing.T) {
		deny := &api.Intention{SourceName: "web", DestinationName: "api", Action: api.IntentionActionDeny}
		if _, err := cc.Connect().IntentionUpsert(deny, nil); err != nil {
			t.Fatal(err)
		}
		// The same keep-alive connection: authorization is per request.
		gatewaytest.Eventually(t, 10*time.Second, func() bool {
			code, _, _, err := get(client, "https://api/")
			return err == nil && code == http.StatusForbidden
		}, "a deny intention refuses web -> api")
		deny.Action = api.IntentionActionAllow
		if _, err := cc.Connect().IntentionUpsert(deny, nil); err != nil {
			t.Fatal(err)
		}
		gatewaytest.Eventually(t, 10*time.Second, func() bool {
			code, _, _, err := get(client, "https://api/")
			return err == nil && code == http.StatusOK
		}, "an allow intention lets web -> api through again")
		if _, err := cc.Connect().IntentionDeleteExact("web", "api", nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("authorizer reports denials as ErrDenied", func(t *testing.T) {
		deny := &api.Intention{SourceName: "web", DestinationName: "db", Action: api.IntentionActionDeny}
		if _, err := cc.Connect().IntentionUpsert(deny, nil); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = cc.Connect().IntentionDeleteExact("web", "db", nil) }()
		peer := mesh.Peer{ID: leaf.ID, URI: leaf.ID.String(), Serial: leaf.Serial, Cert: leaf.X509}
		err := mesh.NewAuthorizer(cc.Agent()).Authorize(context.Background(), "db", peer)
		var de *mesh.DeniedError
		if !errors.Is(err, mesh.ErrDenied) || !errors.As(err, &de) || de.Target != "db" {
			t.Fatalf("Authorize = %v, want a DeniedError for db", err)
		}
	})

	t.Run("server must prove the target identity", func(t *testing.T) {
		// "impostor" resolves to the api server, which has no impostor leaf.
		registerNative(t, cc, "impostor", srv.port)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := mesh.Dial(ctx, web, cc.Health(), "impostor")
		if err == nil {
			c.Close()
			t.Fatal("dialing impostor succeeded against a server holding only api's leaf")
		}
		if !strings.Contains(err.Error(), `not service "impostor"`) {
			t.Fatalf("error %v does not name the identity mismatch", err)
		}
	})

	t.Run("served services present their own leaf", func(t *testing.T) {
		apiSrc.SetServedServices([]string{"api-extra"})
		gatewaytest.Eventually(t, 20*time.Second, func() bool { return apiSrc.LeafFor("api-extra") != nil }, "api-extra leaf")
		registerNative(t, cc, "api-extra", srv.port)
		c := mesh.HTTPClient(web, cc.Health(), "api-extra")
		defer c.CloseIdleConnections()
		code, body, cs, err := get(c, "https://api-extra/")
		if err != nil || code != http.StatusOK || body != leaf.ID.String()+" -> api-extra" {
			t.Fatalf("GET api-extra = %d %q, %v", code, body, err)
		}
		if id, _ := mesh.CertSpiffeID(cs.PeerCertificates[0]); id.Service != "api-extra" {
			t.Fatalf("server presented %s for api-extra", id)
		}
		apiSrc.SetServedServices(nil)
		if apiSrc.LeafFor("api-extra") != nil {
			t.Fatal("api-extra leaf kept after it was dropped")
		}
	})

	t.Run("clients outside the mesh are refused", func(t *testing.T) {
		// No client certificate.
		plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's point
		if _, err := plain.Get("https://" + srv.addr + "/"); err == nil {
			t.Fatal("a client without a certificate was served")
		}
		// A self-made certificate claiming web's identity.
		fake := consultest.ForgedLeaf(t, leaf.ID.String())
		forged := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, Certificates: []tls.Certificate{fake}, //nolint:gosec // the test's point
		}}}
		if _, err := forged.Get("https://" + srv.addr + "/"); err == nil {
			t.Fatal("a client with a certificate outside the mesh's CA was served")
		}
	})

	t.Run("ca rotation reaches leaves and roots without a restart", func(t *testing.T) {
		oldRoot, oldAPI, oldWeb := apiSrc.Roots().ActiveID, apiSrc.Leaf().Serial, web.Leaf().Serial
		changed := apiSrc.Changed()
		consultest.RotateCA(t, cc)
		select {
		case <-changed:
		case <-time.After(60 * time.Second):
			t.Fatal("no leaf or roots change within 60s of a CA rotation")
		}
		gatewaytest.Eventually(t, 90*time.Second, func() bool {
			return apiSrc.Roots().ActiveID != oldRoot && web.Roots().ActiveID != oldRoot &&
				apiSrc.Leaf().Serial != oldAPI && web.Leaf().Serial != oldWeb
		}, "new root and new leaves after rotation")
		client.CloseIdleConnections()
		code, _, cs, err := get(client, "https://api/")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET after rotation = %d, %v", code, err)
		}
		got := cs.PeerCertificates[0]
		if want := apiSrc.Leaf().X509; !got.Equal(want) {
			t.Fatalf("server presented serial %x, want the new leaf %s", got.SerialNumber, apiSrc.Leaf().Serial)
		}
	})
}
