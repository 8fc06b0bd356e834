package consul

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/consultest"
)

// recordingHealth passes calls to the real client and keeps the wait
// indexes asked for, to show the queries block on the previous answer's index.
type recordingHealth struct {
	Health
	mu      sync.Mutex
	asked   []uint64
	answers []uint64
}

func (h *recordingHealth) ServiceMultipleTags(service string, tags []string, passing bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	h.mu.Lock()
	h.asked = append(h.asked, q.WaitIndex)
	h.mu.Unlock()
	e, m, err := h.Health.ServiceMultipleTags(service, tags, passing, q)
	if err == nil {
		h.mu.Lock()
		h.answers = append(h.answers, m.LastIndex)
		h.mu.Unlock()
	}
	return e, m, err
}

// registerInstance registers an instance service the way Nomad does for a
// function's task: tags function/version/group and an HTTP check on the
// invoke endpoint's health path.
func registerInstance(t *testing.T, c *api.Client, id, service, fn, version, group string, inst *healthServer) {
	t.Helper()
	host, port := inst.hostPort(t)
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID:      id,
		Name:    service,
		Address: host,
		Port:    port,
		Tags:    []string{"function=" + fn, "version=" + version, "group=" + group},
		Meta:    map[string]string{"function": fn, "version": version, "group": group},
		Check: &api.AgentServiceCheck{
			Name:     "nimbus-health",
			HTTP:     "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + invokeapi.PathHealth,
			Interval: "1s",
			Timeout:  "1s",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveryAgainstConsul(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	latest := newHealthServer(t, invokeapi.PathHealth)
	provisioned := newHealthServer(t, invokeapi.PathHealth)
	v1 := newHealthServer(t, invokeapi.PathHealth)
	registerInstance(t, client, "_nomad-task-a1", "nimbus-hello", "hello", "$LATEST", discovery.GroupOnDemand, latest)
	registerInstance(t, client, "_nomad-task-a2", "nimbus-hello", "hello", "$LATEST", discovery.GroupProvisioned, provisioned)
	registerInstance(t, client, "_nomad-task-b1", "nimbus-hello", "hello", "1", discovery.GroupOnDemand, v1)

	var (
		mu      sync.Mutex
		changes []int
	)
	rec := &recordingHealth{Health: client.Health()}
	d := NewDiscovery(rec, DiscoveryConfig{
		WaitTime: 30 * time.Second,
		Watch: discovery.WatchConfig{
			IdleTimeout: time.Minute,
			OnChange: func(fn, v string, ins []discovery.Instance) {
				if fn == "hello" && v == "$LATEST" {
					mu.Lock()
					changes = append(changes, len(ins))
					mu.Unlock()
				}
			},
		},
	}, gatewaytest.Logger(t))
	defer d.Close()
	ctx := context.Background()

	get := func(version string) []discovery.Instance {
		t.Helper()
		ins, err := d.Instances(ctx, "hello", version)
		if err != nil {
			t.Fatal(err)
		}
		return ins
	}
	eventually(t, checkWait, "both $LATEST instances to pass", func() bool { return len(get("$LATEST")) == 2 })
	want := []discovery.Instance{
		{ID: "_nomad-task-a1", Address: latest.Listener.Addr().String(), Function: "hello", Version: "$LATEST", Group: discovery.GroupOnDemand, Health: discovery.HealthPassing},
		{ID: "_nomad-task-a2", Address: provisioned.Listener.Addr().String(), Function: "hello", Version: "$LATEST", Group: discovery.GroupProvisioned, Health: discovery.HealthPassing},
	}
	if got := get("$LATEST"); got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("instances = %+v, want %+v", got, want)
	}
	// Version tags keep versions apart.
	eventually(t, checkWait, "the version 1 instance", func() bool {
		ins := get("1")
		return len(ins) == 1 && ins[0].ID == "_nomad-task-b1" && ins[0].Address == v1.Listener.Addr().String()
	})
	if ins := get("2"); len(ins) != 0 {
		t.Fatalf("version 2 has no instances, got %+v", ins)
	}
	if ins, err := d.Instances(ctx, "nobody", "$LATEST"); err != nil || len(ins) != 0 {
		t.Fatalf("unknown function: %+v %v", ins, err)
	}

	// An instance whose health endpoint fails leaves the set, and comes back.
	latest.healthy.Store(false)
	eventually(t, checkWait, "the failing instance to leave", func() bool {
		ins := get("$LATEST")
		return len(ins) == 1 && ins[0].ID == "_nomad-task-a2"
	})
	latest.healthy.Store(true)
	eventually(t, checkWait, "the instance to return", func() bool { return len(get("$LATEST")) == 2 })

	// Deregistration (the alloc stopped) removes it too.
	if err := client.Agent().ServiceDeregister("_nomad-task-a2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, checkWait, "the deregistered instance to leave", func() bool {
		ins := get("$LATEST")
		return len(ins) == 1 && ins[0].ID == "_nomad-task-a1"
	})

	// The cache is updated before OnChange runs, so wait for the callback.
	eventually(t, 5*time.Second, "OnChange to see the flips (…, 1, 2, 1)", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(changes) >= 4 && changes[len(changes)-1] == 1
	})

	// Every query after the first waited on the index the previous one returned.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.asked) < 2 || rec.asked[0] != 0 {
		t.Fatalf("wait indexes %v", rec.asked)
	}
	blocked := 0
	for _, idx := range rec.asked[1:] {
		if idx != 0 {
			blocked++
		}
	}
	if blocked == 0 {
		t.Fatalf("no blocking query: wait indexes %v, answers %v", rec.asked, rec.answers)
	}
}

func TestDiscoveryStopsIdleWatchesAndReportsErrors(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	inst := newHealthServer(t, invokeapi.PathHealth)
	registerInstance(t, client, "i1", "fn-svc", "fn", "$LATEST", discovery.GroupOnDemand, inst)

	d := NewDiscovery(client.Health(), DiscoveryConfig{
		ServiceName: func(fn string) string { return fn + "-svc" },
		Watch:       discovery.WatchConfig{IdleTimeout: 200 * time.Millisecond},
	}, gatewaytest.Logger(t))
	defer d.Close()
	eventually(t, checkWait, "the instance", func() bool {
		ins, err := d.Instances(context.Background(), "fn", "$LATEST")
		return err == nil && len(ins) == 1
	})
	if w := d.Watching(); len(w) != 1 || w[0] != "fn:$LATEST" {
		t.Fatalf("watching %v", w)
	}
	eventually(t, 10*time.Second, "the unused watch to stop", func() bool { return len(d.Watching()) == 0 })

	// With the agent gone, a fresh watch reports the query error.
	if err := agent.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := d.Instances(ctx, "fn", "$LATEST")
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the consul query error", err)
	}
}

// With IncludeFailing an instance is listed from its registration on, with
// its checks' status, before Consul has run its first check (an interval
// of an hour here: the check never runs during the test); a passing-only
// discovery does not list it.
func TestDiscoveryIncludeFailingListsUncheckedInstances(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	inst := newHealthServer(t, invokeapi.PathHealth)
	host, port := inst.hostPort(t)
	if err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "_nomad-task-s1", Name: "nimbus-slow", Address: host, Port: port,
		Tags: []string{"function=slow", "version=$LATEST", "group=" + discovery.GroupOnDemand},
		Check: &api.AgentServiceCheck{
			HTTP: "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + invokeapi.PathHealth, Interval: "1h", Timeout: "1s",
		},
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	all := NewDiscovery(client.Health(), DiscoveryConfig{IncludeFailing: true}, nil)
	defer all.Close()
	passing := NewDiscovery(client.Health(), DiscoveryConfig{}, nil)
	defer passing.Close()
	var got []discovery.Instance
	eventually(t, checkWait, "the registered instance to be listed", func() bool {
		var err error
		got, err = all.Instances(ctx, "slow", "$LATEST")
		return err == nil && len(got) == 1
	})
	if got[0].ID != "_nomad-task-s1" || got[0].Health != discovery.HealthFailing {
		t.Fatalf("listed %+v, want _nomad-task-s1 with failing health", got[0])
	}
	if ins, err := passing.Instances(ctx, "slow", "$LATEST"); err != nil || len(ins) != 0 {
		t.Fatalf("passing-only discovery listed %+v (%v)", ins, err)
	}
}
