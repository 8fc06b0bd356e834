package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/specs"
)

type snapCatalog struct{ s *catalog.Snapshot }

func (c snapCatalog) Function(_ context.Context, name string) (*catalog.Function, error) {
	return c.s.Function(name)
}
func (c snapCatalog) Functions(context.Context) ([]*catalog.Function, error) {
	return c.s.Functions(), nil
}

type registrar struct {
	mu     sync.Mutex
	events []string
}

func (r *registrar) Register(context.Context) error   { r.add("register"); return nil }
func (r *registrar) Deregister(context.Context) error { r.add("deregister"); return nil }
func (r *registrar) add(s string)                     { r.mu.Lock(); r.events = append(r.events, s); r.mu.Unlock() }
func (r *registrar) list() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, ",")
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerServesHealthMetricsAndDrains(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	in := gatewaytest.StartInstance(t, "web", "$LATEST", 1, "", func(w http.ResponseWriter, r *http.Request, p []byte) {
		entered <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`"done"`))
	})
	src := gatewaytest.NewSource()
	src.Set("web", "$LATEST", in.Discovery("i1", discovery.GroupOnDemand))
	fn := &specs.Function{Name: "web", EnvironmentsPerInstance: 1, URL: &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"}}
	reg := &registrar{}
	cfg := &config.Config{Dev: true, Listen: "127.0.0.1:0", ShutdownGrace: "20s"}
	s, err := server.New(cfg, server.Deps{
		Catalog:    snapCatalog{catalog.NewSnapshot(catalog.FromFile(&specs.File{Functions: []*specs.Function{fn}}))},
		Source:     src,
		Registrars: []server.Registrar{reg},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	base := "http://" + s.Addr()
	if code, body := get(t, base+server.HealthPath); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("health: %d %s", code, body)
	}
	result := make(chan string, 1)
	go func() { _, body := get(t, base+"/url/web/"); result <- body }()
	<-entered
	_, metrics := get(t, base+server.MetricsPath)
	for _, want := range []string{
		`nimbus_in_flight{function="web",group="ondemand",version="$LATEST"} 1`,
		`nimbus_environments{function="web",group="ondemand",version="$LATEST"} 1`,
		`nimbus_provisioned_utilization{function="web",version="$LATEST"} 0`,
		`nimbus_concurrent_executions{function="web"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cancel() // shutdown begins with one invocation in flight
	gatewaytest.Eventually(t, 5*time.Second, func() bool { return reg.list() == "register,deregister" }, "deregistered: %s", reg.list())
	select {
	case err := <-served:
		t.Fatalf("server stopped before draining: %v", err)
	default:
	}
	close(release)
	if got := <-result; got != `"done"` {
		t.Fatalf("in-flight request answered %q", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	_, metrics = get2(base + server.MetricsPath)
	if metrics != "" {
		t.Fatal("server still answering after shutdown")
	}
}

func get2(u string) (int, string) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readiness is a settable ReadinessChecker.
type readiness struct {
	mu  sync.Mutex
	err error
}

func (r *readiness) CheckReady() error { r.mu.Lock(); defer r.mu.Unlock(); return r.err }
func (r *readiness) set(err error)     { r.mu.Lock(); r.err = err; r.mu.Unlock() }

// Item 7 of issue 11: health answers 503 "not ready" with every failing
// adapter's reason, and 200 again once they recover.
func TestHealthSaysNotReadyWithTheReason(t *testing.T) {
	nomadCheck, other := &readiness{}, &readiness{}
	s, err := server.New(&config.Config{Dev: true, Listen: "127.0.0.1:0"}, server.Deps{
		Catalog:   snapCatalog{catalog.NewSnapshot(catalog.FromFile(&specs.File{}))},
		Source:    gatewaytest.NewSource(),
		Readiness: []server.ReadinessChecker{nomadCheck, other},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	u := "http://" + s.Addr() + server.HealthPath
	if code, body := get(t, u); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("ready: %d %s", code, body)
	}
	nomadCheck.set(errors.New("nomad: connection refused"))
	other.set(errors.New("consul: timeout"))
	if code, body := get(t, u); code != 503 || body != `{"reason":"nomad: connection refused; consul: timeout","status":"not ready"}`+"\n" {
		t.Fatalf("not ready: %d %s", code, body)
	}
	nomadCheck.set(nil)
	other.set(nil)
	if code, body := get(t, u); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("ready again: %d %s", code, body)
	}
}
