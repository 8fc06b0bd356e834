package cluster

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/gateway/nomad"
)

func clusterConfig(listen, consulAddr string) *config.Config {
	c := &config.Config{
		Listen: listen, InvokeKey: "0123456789abcdef0123",
		AccessKeys: []config.AccessKey{{ID: "AKID", Secret: "s"}},
		Nomad:      &config.NomadConfig{Address: "http://127.0.0.1:1"},
		Consul:     &config.ConsulConfig{Address: consulAddr},
	}
	return c
}

// consulSelf answers only GET /v1/agent/self, with the agent's advertise
// address, as a Consul agent does.
func consulSelf(t *testing.T, advertise string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/agent/self" {
			t.Errorf("unexpected consul request %s %s", r.Method, r.URL)
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Config":{"AdvertiseAddr":"` + advertise + `","NodeName":"n1"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestNewAdvertisesTheAgentAddressForAWildcardListener(t *testing.T) {
	cfg := clusterConfig("0.0.0.0:0", consulSelf(t, "10.9.8.7"))
	c, err := New(cfg, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.ln.Addr().(*net.TCPAddr).Port
	if want := "10.9.8.7:" + strconv.Itoa(port); c.GatewayID() != want {
		t.Fatalf("gateway id %q, want %q", c.GatewayID(), want)
	}
	if want := "nimbus-gateway-10.9.8.7-" + strconv.Itoa(port); c.Registrar() == nil || c.Registrar().ServiceID() != want {
		t.Fatalf("registrar %+v, want service id %s", c.Registrar(), want)
	}
	d := c.Deps(nil)
	rs, ok := d.Source.(*ReadySource)
	if ok {
		_, ok = rs.inner.(*consul.Discovery)
	}
	if !ok || d.Scaler != c.scaler || d.Listener != c.ln || len(d.Registrars) != 1 {
		t.Fatalf("deps %+v", d)
	}
}

func TestNewWithNomadDiscoveryAndNoRegistration(t *testing.T) {
	cfg := clusterConfig("127.0.0.1:0", "127.0.0.1:1") // never asked: advertise is set, registration off
	off := false
	cfg.Discovery, cfg.GatewayID = config.DiscoveryNomad, "gw-1"
	cfg.Consul.Register, cfg.Consul.Advertise = &off, "192.0.2.1:9000"
	c, err := New(cfg, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := c.Deps(nil)
	rs, ok := d.Source.(*ReadySource)
	if !ok || len(d.Registrars) != 0 || c.GatewayID() != "gw-1" {
		t.Fatalf("deps %+v, gateway id %q", d, c.GatewayID())
	}
	if _, ok := rs.inner.(*nomad.Discovery); !ok {
		t.Fatalf("deps %+v, gateway id %q", d, c.GatewayID())
	}
}

func TestNewRefusesDevModeAndBadConfig(t *testing.T) {
	dev := clusterConfig("127.0.0.1:0", "127.0.0.1:1")
	dev.Dev = true
	if _, err := New(dev, Options{}, nil); err == nil {
		t.Fatal("dev mode accepted")
	}
	bad := clusterConfig("127.0.0.1:0", "127.0.0.1:1")
	bad.Discovery = "zookeeper"
	if _, err := New(bad, Options{}, nil); err == nil || !strings.Contains(err.Error(), "zookeeper") {
		t.Fatalf("bad discovery: %v", err)
	}
}

type selfFunc func() (map[string]map[string]any, error)

func (f selfFunc) Self() (map[string]map[string]any, error) { return f() }

func TestAdvertise(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	wild := &net.TCPAddr{IP: net.IPv6unspecified, Port: 4001}
	agent := selfFunc(func() (map[string]map[string]any, error) {
		return map[string]map[string]any{"Config": {"AdvertiseAddr": "10.0.0.2"}}, nil
	})
	down := selfFunc(func() (map[string]map[string]any, error) { return nil, errors.New("connection refused") })
	for _, c := range []struct {
		configured string
		bound      net.Addr
		agent      selfReader
		want       string
		err        string
	}{
		{"", bound, down, "127.0.0.1:4000", ""},
		{"", wild, agent, "10.0.0.2:4001", ""},
		{"", wild, down, "", "connection refused"},
		{"192.0.2.9:80", wild, down, "192.0.2.9:80", ""},
		{"0.0.0.0:81", bound, agent, "10.0.0.2:81", ""},
		{"192.0.2.9", bound, agent, "", "missing port"},
	} {
		host, port, err := advertise(c.configured, c.bound, c.agent)
		got := ""
		if err == nil {
			got = net.JoinHostPort(host, strconv.Itoa(port))
		}
		if got != c.want || (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("advertise(%q, %s) = %q, %v; want %q, %q", c.configured, c.bound, got, err, c.want, c.err)
		}
	}
}
