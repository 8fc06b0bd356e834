package main

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/mesh"
)

// `nimbus dev` with a consul block registers itself with a passing HTTP
// check and a service per function URL, follows a spec edit that adds a
// URL, and deregisters everything when it stops.
func TestDevRegistersInConsul(t *testing.T) {
	agent := consultest.Start(t)
	ca := agent.Client(t).Agent()
	services := func() map[string]*api.AgentService {
		s, err := ca.Services()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Cleanup(func() { // after nimbus dev stopped (cleanups run last-in first-out)
		for id, s := range services() {
			if s.Service != "consul" {
				t.Errorf("after nimbus dev stopped, %s (%s) is still registered", id, s.Service)
			}
		}
	})
	dir := t.TempDir()
	spec := func(plainURL string) string {
		return "function \"hello\" {\n  runtime = \"python3.12\"\n  handler = \"app.handler\"\n  code {\n    dir = \".\"\n  }\n  url {\n    auth = \"NONE\"\n  }\n}\n" +
			"function \"plain\" {\n  runtime = \"python3.12\"\n  handler = \"app.handler\"\n  code {\n    dir = \".\"\n  }\n" + plainURL + "}\n"
	}
	writeTree(t, dir, map[string]string{"nimbus.hcl": spec(""), "app.py": "def handler(event, context):\n    return 1\n"})
	conf := filepath.Join(t.TempDir(), "gateway.hcl")
	writeTree(t, filepath.Dir(conf), map[string]string{filepath.Base(conf): "consul {\n  check_interval = \"1s\"\n}\n"})
	dev := startDev(t, map[string]string{envStateDir: filepath.Join(dir, "state"), "CONSUL_HTTP_ADDR": agent.HTTPAddr}, "--config", conf, dir)
	u, err := url.Parse(dev.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())

	byName := func() map[string]*api.AgentService {
		out := map[string]*api.AgentService{}
		for _, s := range services() {
			out[s.Service] = s
		}
		return out
	}
	gw := byName()["nimbus-gateway"]
	if gw == nil || gw.Port != port || gw.Address != "127.0.0.1" {
		t.Fatalf("gateway registration %+v, want 127.0.0.1:%d", gw, port)
	}
	if s := byName(); s["hello-url"] == nil || s["hello-url"].Port != port || s["plain-url"] != nil {
		t.Fatalf("URL services %v, want hello-url only", s)
	}
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		entries, _, err := agent.Client(t).Health().Service("nimbus-gateway", "", true, (&api.QueryOptions{}).WithContext(context.Background()))
		return err == nil && len(entries) == 1
	}, "the gateway's health check to pass")

	writeTree(t, dir, map[string]string{"nimbus.hcl": spec("  url {\n    auth = \"NONE\"\n  }\n")})
	gatewaytest.Eventually(t, 30*time.Second, func() bool { return byName()["plain-url"] != nil }, "a URL added in the spec to be registered")
}

// A consul block nimbus dev cannot use is refused, not ignored.
func TestDevRefusesABadConsulBlock(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"nimbus.hcl": ""})
	conf := filepath.Join(t.TempDir(), "gateway.hcl")
	writeTree(t, filepath.Dir(conf), map[string]string{filepath.Base(conf): "consul {\n  check_interval = \"100ms\"\n}\n"})
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &syncBuffer{}, stderr: &syncBuffer{}, getenv: func(k string) string {
		if k == envStateDir {
			return filepath.Join(dir, "state")
		}
		return ""
	}}
	err := runDev(context.Background(), env, []string{"--listen", "127.0.0.1:0", "--config", conf, dir})
	if err == nil || !strings.Contains(err.Error(), "check_interval") {
		t.Fatalf("nimbus dev with check_interval 100ms: %v", err)
	}
}

// `nimbus dev` with connect on serves its function URLs in the mesh: the
// URL service is Connect-native at the mesh listener, and a mesh caller's
// handshake there proves the URL service's identity.
func TestDevJoinsTheMesh(t *testing.T) {
	agent := consultest.Start(t)
	cc := agent.Client(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"nimbus.hcl": "function \"hello\" {\n  runtime = \"python3.12\"\n  handler = \"app.handler\"\n  code {\n    dir = \".\"\n  }\n  url {\n    auth = \"NONE\"\n  }\n}\n",
		"app.py":     "def handler(event, context):\n    return 1\n",
	})
	conf := filepath.Join(t.TempDir(), "gateway.hcl")
	writeTree(t, filepath.Dir(conf), map[string]string{filepath.Base(conf): "consul {\n  check_interval = \"1s\"\n}\nconnect {\n  enabled = true\n  listen = \"127.0.0.1:0\"\n}\n"})
	dev := startDev(t, map[string]string{envStateDir: filepath.Join(dir, "state"), "CONSUL_HTTP_ADDR": agent.HTTPAddr}, "--config", conf, dir)
	u, err := url.Parse(dev.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	plainPort, _ := strconv.Atoi(u.Port())
	var meshPort int
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		e, _, err := cc.Health().Connect("hello-url", "", true, nil)
		if err != nil || len(e) != 1 || e[0].Service.Connect == nil || !e[0].Service.Connect.Native {
			return false
		}
		meshPort = e[0].Service.Port
		return true
	}, "hello-url to pass as a Connect-native service")
	if meshPort == plainPort {
		t.Fatalf("hello-url registered at the plain port %d", plainPort)
	}
	web, err := mesh.NewSource(cc.Agent(), mesh.SourceConfig{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := web.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	var conn *tls.Conn
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		conn, err = mesh.Dial(ctx, web, cc.Health(), "hello-url")
		return err == nil
	}, "a mesh handshake with hello-url")
	defer conn.Close()
	if id, _ := mesh.CertSpiffeID(conn.ConnectionState().PeerCertificates[0]); id.Service != "hello-url" {
		t.Fatalf("the dev gateway proved %s, want hello-url", id)
	}
	// The dev gateway is in the mesh under its own name too.
	if e, _, err := cc.Health().Connect("nimbus-gateway", "", false, nil); err != nil || len(e) != 1 || e[0].Service.Port != meshPort {
		t.Fatalf("nimbus-gateway's Connect-native registration: %v %v, want one at mesh port %d", e, err, meshPort)
	}
	// Unlike a cluster gateway, dev keeps serving function URLs on its
	// plain listener with connect on.
	resp, err := http.Get(dev.endpoint + "/url/hello/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dev's plain listener answered the function URL %d, want 200", resp.StatusCode)
	}
}

// connect without a consul block is refused: the mesh lives in Consul.
func TestDevRefusesConnectWithoutConsul(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"nimbus.hcl": ""})
	conf := filepath.Join(t.TempDir(), "gateway.hcl")
	writeTree(t, filepath.Dir(conf), map[string]string{filepath.Base(conf): "connect {\n  enabled = true\n}\n"})
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &syncBuffer{}, stderr: &syncBuffer{}, getenv: func(k string) string {
		if k == envStateDir {
			return filepath.Join(dir, "state")
		}
		return ""
	}}
	err := runDev(context.Background(), env, []string{"--listen", "127.0.0.1:0", "--config", conf, dir})
	if err == nil || !strings.Contains(err.Error(), "connect needs a consul block") {
		t.Fatalf("nimbus dev with connect and no consul block: %v", err)
	}
}
