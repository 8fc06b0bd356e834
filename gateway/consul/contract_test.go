package consul

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/consultest"
)

// consulPlacer stands in for Nomad placing and stopping on-demand
// allocations: OnDemand(n) keeps n instance services registered in the real
// agent, each with an HTTP check on its own loopback health endpoint.
type consulPlacer struct {
	t      *testing.T
	client *api.Client
	mu     sync.Mutex
	live   []string
}

func (p *consulPlacer) OnDemand(_ context.Context, function, version string, want int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.live) < want {
		id := fmt.Sprintf("_nomad-task-alloc%d", len(p.live))
		registerInstance(p.t, p.client, id, "nimbus-"+function, function, version, discovery.GroupOnDemand, newHealthServer(p.t, invokeapi.PathHealth))
		p.live = append(p.live, id)
	}
	for len(p.live) > want {
		id := p.live[len(p.live)-1]
		if err := p.client.Agent().ServiceDeregister(id); err != nil {
			return err
		}
		p.live = p.live[:len(p.live)-1]
	}
	return nil
}

// Consul Discovery passes the capacity contract every scaler+source pair
// passes, against a real agent.
func TestCapacityContractWithConsulDiscovery(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	d := NewDiscovery(client.Health(), DiscoveryConfig{}, gatewaytest.Logger(t))
	defer d.Close()
	gatewaytest.CapacityContract(t, struct {
		*consulPlacer
		*Discovery
	}{&consulPlacer{t: t, client: client}, d}, "cap", "$LATEST", checkWait)
}
