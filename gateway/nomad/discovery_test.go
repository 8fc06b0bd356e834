package nomad

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
)

func reg(id, addr string, port int, fn, version, group string) *api.ServiceRegistration {
	return &api.ServiceRegistration{
		ID: id, ServiceName: "nimbus-" + fn, Namespace: "default", JobID: "nimbus-" + fn, AllocID: id,
		Address: addr, Port: port,
		Tags: []string{"function=" + fn, "version=" + version, "group=" + group},
	}
}

func TestNomadDiscovery(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.services["nimbus-hello"] = []*api.ServiceRegistration{
			reg("_nomad-task-a", "10.0.0.1", 20001, "hello", "$LATEST", discovery.GroupProvisioned),
			reg("_nomad-task-b", "10.0.0.2", 20002, "hello", "1", discovery.GroupOnDemand),
			reg("_nomad-task-c", "", 0, "hello", "$LATEST", discovery.GroupOnDemand), // not yet addressed
		}
	})
	d := NewDiscovery(f.client().Services(), DiscoveryConfig{
		Namespace: "fns",
		WaitTime:  time.Minute,
		Watch:     discovery.WatchConfig{MinInterval: time.Millisecond, IdleTimeout: time.Minute},
	}, gatewaytest.Logger(t))
	defer d.Close()
	ctx := context.Background()
	get := func(v string) []discovery.Instance {
		t.Helper()
		ins, err := d.Instances(ctx, "hello", v)
		if err != nil {
			t.Fatal(err)
		}
		return ins
	}
	want := []discovery.Instance{{ID: "_nomad-task-a", Address: "10.0.0.1:20001", Function: "hello", Version: "$LATEST", Group: discovery.GroupProvisioned}}
	if got := get("$LATEST"); !slices.Equal(got, want) {
		t.Fatalf("$LATEST = %+v, want %+v", got, want)
	}
	if got := get("1"); len(got) != 1 || got[0].Address != "10.0.0.2:20002" || got[0].Group != discovery.GroupOnDemand {
		t.Fatalf("version 1 = %+v", got)
	}

	// A new allocation's registration arrives through the blocking query.
	f.update(func() {
		f.services["nimbus-hello"] = append(f.services["nimbus-hello"], reg("_nomad-task-d", "10.0.0.4", 20004, "hello", "$LATEST", discovery.GroupOnDemand))
	})
	eventually(t, 5*time.Second, "the new instance", func() bool { return len(get("$LATEST")) == 2 })
	// A stopped allocation's registration goes.
	f.update(func() { f.services["nimbus-hello"] = f.services["nimbus-hello"][1:] })
	eventually(t, 5*time.Second, "the stopped instance to go", func() bool {
		ins := get("$LATEST")
		return len(ins) == 1 && ins[0].ID == "_nomad-task-d"
	})

	var blocking, first int
	for _, r := range f.log() {
		if !strings.HasPrefix(r, "GET /v1/service/nimbus-hello?") {
			t.Fatalf("unexpected request %q", r)
		}
		if !strings.Contains(r, "namespace=fns") {
			t.Fatalf("request %q lacks the namespace", r)
		}
		if strings.Contains(r, "index=") && strings.Contains(r, "wait=60000ms") {
			blocking++
		} else {
			first++
		}
	}
	if first != 2 || blocking == 0 {
		t.Fatalf("%d first queries (want 2: one per version), %d blocking: %v", first, blocking, f.log())
	}
}

func TestNomadDiscoveryErrorsAndCustomName(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.services["fn-x"] = []*api.ServiceRegistration{reg("i", "127.0.0.1", 1, "x", "$LATEST", discovery.GroupOnDemand)}
	})
	f.update(func() { f.failNext = http.StatusForbidden })
	d := NewDiscovery(f.client().Services(), DiscoveryConfig{
		ServiceName: func(fn string) string { return "fn-" + fn },
		Watch:       discovery.WatchConfig{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
	}, gatewaytest.Logger(t))
	defer d.Close()
	_, err := d.Instances(context.Background(), "x", "$LATEST")
	if err == nil || !strings.Contains(err.Error(), "reading nomad service fn-x") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("err = %v", err)
	}
	eventually(t, 5*time.Second, "recovery", func() bool {
		ins, err := d.Instances(context.Background(), "x", "$LATEST")
		return err == nil && len(ins) == 1 && ins[0].Address == "127.0.0.1:1"
	})
}
