package consul

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/consultest"
)

func TestRegistrarAgainstConsul(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	gw := newHealthServer(t, DefaultHealthPath)
	host, port := gw.hostPort(t)
	ctx := context.Background()

	r, err := NewRegistrar(client.Agent(), RegistrarConfig{
		Address:       host,
		Port:          port,
		Tags:          []string{"http"},
		Meta:          map[string]string{"build": "test"},
		CheckInterval: time.Second,
		CheckTimeout:  time.Second,
		URLTags:       []string{"lambda-url"},
	}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	// URL functions set before Register wait for it.
	if err := r.SetURLFunctions(ctx, []URLFunction{
		{Function: "hello", Qualifier: "$LATEST", Auth: "NONE", InvokeMode: "BUFFERED"},
		{Function: "snake_case", Qualifier: "live", Auth: "AWS_IAM", InvokeMode: "RESPONSE_STREAM"},
	}); err != nil {
		t.Fatal(err)
	}
	if svcs := agentServices(t, client); len(svcs) != 0 {
		t.Fatalf("services registered before Register: %v", keys(svcs))
	}
	if err := r.Register(ctx); err != nil {
		t.Fatal(err)
	}

	// The gateway passes its HTTP check against the health path.
	eventually(t, checkWait, "the gateway to pass its health check", func() bool {
		return len(passing(t, client, "nimbus-gateway")) == 1
	})
	g := passing(t, client, "nimbus-gateway")[0].Service
	if g.ID != r.ServiceID() || g.Address != host || g.Port != port || !slices.Equal(g.Tags, []string{"http"}) ||
		g.Meta["build"] != "test" || g.Meta[MetaGateway] != r.ServiceID() {
		t.Fatalf("gateway service = %+v", g)
	}
	if gw.hits.Load() == 0 {
		t.Fatal("the check passed without calling the health path")
	}

	// Each function URL is its own service at the gateway's address.
	snake := URLServiceName("snake_case", "-url")
	for name, want := range map[string]map[string]string{
		"hello-url": {MetaFunction: "hello", MetaQualifier: "$LATEST", MetaAuth: "NONE", MetaInvokeMode: "BUFFERED"},
		snake:       {MetaFunction: "snake_case", MetaQualifier: "live", MetaAuth: "AWS_IAM", MetaInvokeMode: "RESPONSE_STREAM"},
	} {
		svcs, _, err := client.Catalog().Service(name, "", nil)
		if err != nil || len(svcs) != 1 {
			t.Fatalf("catalog service %s: %v %v", name, svcs, err)
		}
		s := svcs[0]
		if s.ServiceAddress != host || s.ServicePort != port {
			t.Fatalf("%s at %s:%d, want the gateway's %s:%d", name, s.ServiceAddress, s.ServicePort, host, port)
		}
		if !slices.Equal(s.ServiceTags, []string{"function=" + want[MetaFunction], "lambda-url"}) {
			t.Fatalf("%s tags %v", name, s.ServiceTags)
		}
		for k, v := range want {
			if s.ServiceMeta[k] != v {
				t.Fatalf("%s meta %s = %q, want %q (meta %v)", name, k, s.ServiceMeta[k], v, s.ServiceMeta)
			}
		}
	}

	// <fn>-url.service.consul resolves to the gateway through Consul DNS.
	res := resolver(agent)
	lookup := func(name string) ([]*srv, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, recs, err := res.LookupSRV(ctx, "", "", name+".service.consul")
		out := make([]*srv, len(recs))
		for i, r := range recs {
			out[i] = &srv{target: r.Target, port: int(r.Port)}
		}
		return out, err
	}
	for _, name := range []string{"hello-url", snake} {
		eventually(t, checkWait, name+" to resolve", func() bool {
			recs, err := lookup(name)
			return err == nil && len(recs) == 1 && recs[0].port == port
		})
	}
	ctxA, cancel := context.WithTimeout(ctx, 5*time.Second)
	addrs, err := res.LookupHost(ctxA, "hello-url.service.consul")
	cancel()
	if err != nil || !slices.Equal(addrs, []string{host}) {
		t.Fatalf("A hello-url.service.consul = %v, %v; want [%s]", addrs, err, host)
	}

	// A failing gateway takes its URL services out of DNS (alias checks).
	gw.healthy.Store(false)
	eventually(t, checkWait, "hello-url to leave DNS while the gateway is unhealthy", func() bool {
		recs, _ := lookup("hello-url")
		return len(recs) == 0
	})
	if n := len(passing(t, client, "nimbus-gateway")); n != 0 {
		t.Fatalf("%d passing gateways while its health path answers 503", n)
	}
	gw.healthy.Store(true)
	eventually(t, checkWait, "hello-url to come back", func() bool {
		recs, _ := lookup("hello-url")
		return len(recs) == 1
	})

	// Removing a function's URL removes its service; the others stay.
	if err := r.SetURLFunctions(ctx, []URLFunction{{Function: "hello", Qualifier: "$LATEST", Auth: "NONE", InvokeMode: "BUFFERED"}}); err != nil {
		t.Fatal(err)
	}
	if got := keys(agentServices(t, client)); !slices.Equal(got, []string{r.ServiceID(), r.ServiceID() + ":hello-url"}) {
		t.Fatalf("after removing snake_case: %v", got)
	}
	// A changed URL config is re-registered.
	if err := r.SetURLFunctions(ctx, []URLFunction{{Function: "hello", Qualifier: "prod", Auth: "AWS_IAM", InvokeMode: "BUFFERED"}}); err != nil {
		t.Fatal(err)
	}
	if s := agentServices(t, client)[r.ServiceID()+":hello-url"]; s == nil || s.Meta[MetaQualifier] != "prod" || s.Meta[MetaAuth] != "AWS_IAM" {
		t.Fatalf("hello-url after change: %+v", s)
	}

	// Shutdown removes everything this gateway registered, and nothing else.
	other := &api.AgentServiceRegistration{ID: "someone-else", Name: "someone-else", Port: 1}
	if err := client.Agent().ServiceRegister(other); err != nil {
		t.Fatal(err)
	}
	if err := r.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if got := agentServices(t, client); len(got) != 0 {
		t.Fatalf("left after Deregister: %v", keys(got))
	}
	all, err := client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all["someone-else"]; !ok {
		t.Fatalf("Deregister removed a service it does not own: %v", keys(all))
	}
	// Changes while deregistered wait for the next Register.
	if err := r.SetURLFunctions(ctx, []URLFunction{{Function: "late"}}); err != nil {
		t.Fatal(err)
	}
	if got := agentServices(t, client); len(got) != 0 {
		t.Fatalf("registered while deregistered: %v", keys(got))
	}
}

func TestRegistrarResyncRestoresRegistrations(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	gw := newHealthServer(t, "/healthz")
	host, port := gw.hostPort(t)
	r, err := NewRegistrar(client.Agent(), RegistrarConfig{
		ServiceName:    "edge",
		ServiceID:      "edge-1",
		Address:        host,
		Port:           port,
		HealthPath:     "/healthz",
		CheckInterval:  time.Second,
		CheckTimeout:   time.Second,
		ResyncInterval: 20 * time.Millisecond,
	}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.SetURLFunctions(ctx, []URLFunction{{Function: "a"}, {Function: "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"edge-1", "edge-1:a-url", "edge-1:b-url"}
	if got := keys(agentServices(t, client)); !slices.Equal(got, want) {
		t.Fatalf("registered %v, want %v", got, want)
	}
	chk, _, err := client.Agent().Service("edge-1", nil)
	if err != nil || chk.Service != "edge" {
		t.Fatalf("gateway service: %+v %v", chk, err)
	}
	checks, err := client.Agent().ChecksWithFilter(`ServiceID == "edge-1"`)
	if err != nil || len(checks) != 1 {
		t.Fatalf("checks: %v %v", checks, err)
	}
	for _, c := range checks {
		if c.Type != "http" {
			t.Fatalf("check = %+v", c)
		}
	}
	// The check calls the configured path (the server counts only that one).
	eventually(t, checkWait, "the check to call /healthz", func() bool { return gw.hits.Load() > 0 })

	// Stop Run and wait for it before the agent and the test end: a resync
	// still running would log into a finished test and call a stopped agent.
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		r.Run(ctx)
	}()
	defer func() {
		cancel()
		<-ran
	}()
	// Someone (an agent restart, an operator) drops a registration.
	if err := client.Agent().ServiceDeregister("edge-1:b-url"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "resync to restore b-url", func() bool {
		return slices.Equal(keys(agentServices(t, client)), want)
	})
	// An orphan carrying this gateway's marker (e.g. from before a crash) goes.
	if err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "edge-1:stale-url", Name: "stale-url", Port: port, Meta: map[string]string{MetaGateway: "edge-1"},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "resync to remove the orphan", func() bool {
		return slices.Equal(keys(agentServices(t, client)), want)
	})
}

func TestRegistrarConfig(t *testing.T) {
	c := RegistrarConfig{Address: "10.0.0.5", Port: 9000}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ServiceName != "nimbus-gateway" || c.ServiceID != "nimbus-gateway-10.0.0.5-9000" || c.HealthPath != DefaultHealthPath ||
		c.CheckInterval != 10*time.Second || c.CheckTimeout != 2*time.Second || c.URLSuffix != "-url" ||
		c.DeregisterCriticalAfter != 10*time.Minute || c.ResyncInterval != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	bad := RegistrarConfig{ServiceName: "no_underscores", Port: 70000, HealthPath: "health", URLSuffix: ".url",
		Meta: map[string]string{"a.b": "x", "consul-x": "y"}, CheckInterval: time.Second, CheckTimeout: 2 * time.Second}
	bad.Defaults()
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"address is required", "port 70000", `service name "no_underscores"`, `health path "health"`,
		`url suffix ".url"`, `meta key "a.b"`, `meta key "consul-x"`, "check timeout 2s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := NewRegistrar(nil, RegistrarConfig{}, nil); err == nil || !strings.Contains(err.Error(), "consul registrar config") {
		t.Fatalf("NewRegistrar with an empty config: %v", err)
	}
}

func TestURLServiceName(t *testing.T) {
	long := strings.Repeat("a", 70)
	for _, c := range []struct{ fn, want string }{
		{"hello", "hello-url"},
		{"Hello-World2", "Hello-World2-url"},
		{"snake_case", "snake-case-" + hash8("snake_case") + "-url"},
		{"snake-case", "snake-case-url"}, // no collision with the one above
		{"__", hash8("__") + "-url"},
		{long, strings.Repeat("a", 63-len("-12345678-url")) + "-" + hash8(long) + "-url"},
	} {
		got := URLServiceName(c.fn, "-url")
		if got != c.want {
			t.Errorf("URLServiceName(%q) = %q, want %q", c.fn, got, c.want)
		}
		if !serviceName.MatchString(got) {
			t.Errorf("URLServiceName(%q) = %q is not a DNS label", c.fn, got)
		}
	}
}

func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

type srv struct {
	target string
	port   int
}

// agentServices lists the agent's services owned by any nimbus gateway.
func agentServices(t *testing.T, c *api.Client) map[string]*api.AgentService {
	t.Helper()
	all, err := c.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*api.AgentService{}
	for id, s := range all {
		if s.Meta[MetaGateway] != "" {
			out[id] = s
		}
	}
	return out
}

func passing(t *testing.T, c *api.Client, service string) []*api.ServiceEntry {
	t.Helper()
	e, _, err := c.Health().Service(service, "", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// flakyAgent lists nothing (the listing fails) and records deregistrations.
type flakyAgent struct {
	registered   []string
	deregistered []string
}

func (a *flakyAgent) ServiceRegisterOpts(s *api.AgentServiceRegistration, _ api.ServiceRegisterOpts) error {
	a.registered = append(a.registered, s.ID)
	return nil
}

func (a *flakyAgent) ServiceDeregisterOpts(id string, _ *api.QueryOptions) error {
	a.deregistered = append(a.deregistered, id)
	return nil
}

func (a *flakyAgent) ServicesWithFilterOpts(string, *api.QueryOptions) (map[string]*api.AgentService, error) {
	return nil, errors.New("rpc error: leader unavailable")
}

// At shutdown a failed listing still removes what this gateway registers,
// URL services before the gateway; while running it changes nothing.
func TestRegistrarDeregistersWhenListingFails(t *testing.T) {
	a := &flakyAgent{}
	r, err := NewRegistrar(a, RegistrarConfig{ServiceID: "gw", Address: "127.0.0.1", Port: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.SetURLFunctions(ctx, []URLFunction{{Function: "a"}, {Function: "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx); err == nil || len(a.registered) != 0 {
		t.Fatalf("Register with a failing listing: %v, registered %v", err, a.registered)
	}
	err = r.Deregister(ctx)
	if err == nil || !strings.Contains(err.Error(), "leader unavailable") {
		t.Fatalf("Deregister error %v; want the listing error reported", err)
	}
	if len(a.deregistered) != 3 || a.deregistered[2] != "gw" || !slices.Contains(a.deregistered, "gw:a-url") || !slices.Contains(a.deregistered, "gw:b-url") {
		t.Fatalf("deregistered %v; want both URL services, then the gateway", a.deregistered)
	}
}

// With a mesh port, the function URL services are Connect-native at the
// mesh listener (so /v1/health/connect finds them), while the gateway
// service stays plain on its own port.
func TestRegistrarMeshPortRegistersURLsConnectNative(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	gw := newHealthServer(t, DefaultHealthPath)
	host, port := gw.hostPort(t)
	ctx := context.Background()
	const meshPort = 19443
	r, err := NewRegistrar(client.Agent(), RegistrarConfig{
		Address: host, Port: port, CheckInterval: time.Second, CheckTimeout: time.Second, MeshPort: meshPort,
	}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetURLFunctions(ctx, []URLFunction{{Function: "hello", Qualifier: "$LATEST", Auth: "NONE"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Deregister(ctx) }()
	eventually(t, checkWait, "hello-url to pass as a Connect-native service", func() bool {
		e, _, err := client.Health().Connect("hello-url", "", true, nil)
		return err == nil && len(e) == 1 && e[0].Service.Port == meshPort && e[0].Service.Address == host &&
			e[0].Service.Connect != nil && e[0].Service.Connect.Native
	})
	if e, _, err := client.Health().Connect("nimbus-gateway", "", false, nil); err != nil || len(e) != 0 {
		t.Fatalf("the gateway service is Connect-capable: %v %v", e, err)
	}
	g := passing(t, client, "nimbus-gateway")
	if len(g) != 1 || g[0].Service.Port != port {
		t.Fatalf("gateway service %+v, want plain on port %d", g, port)
	}
	if err := (&RegistrarConfig{Address: host, Port: port, MeshPort: 70000}).Validate(); err == nil {
		t.Fatal("a mesh port above 65535 was accepted")
	}
}
