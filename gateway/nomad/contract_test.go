package nomad

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/specs"
)

// The Nomad catalog passes the contract every gateway catalog passes.
func TestCatalogContract(t *testing.T) {
	gatewaytest.CatalogContract(t, func(t *testing.T, fns []*specs.Function) gatewaytest.Catalog {
		f := newFakeNomad(t)
		f.update(func() {
			for i, fn := range fns {
				id, _ := DefaultJobID(fn.Name, LatestVersion)
				f.jobs[id] = functionJob(t, id, fn.Name, LatestVersion, fn, uint64(11+i))
			}
		})
		c, err := NewCatalog(f.client().Jobs(), nil, CatalogConfig{NoVariables: true}, gatewaytest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		runCatalog(t, c)
		<-c.Ready()
		return c
	})
}

// Scaler and Discovery together pass the capacity contract: the double
// stands in for Nomad's scheduler by registering one service per on-demand
// allocation when the group's count changes.
func TestCapacityContract(t *testing.T) {
	f := newFakeNomad(t)
	f.update(func() {
		f.groups["nimbus-cap-4"] = map[string]int{discovery.GroupProvisioned: 0, discovery.GroupOnDemand: 0}
		f.onScale = func(job, group string, count int) {
			var regs []*api.ServiceRegistration
			for i := range count {
				regs = append(regs, reg(fmt.Sprintf("_nomad-task-alloc%d-%s", i, group), "10.0.0.9", 30000+i, "cap", "4", group))
			}
			f.services["nimbus-cap"] = regs
		}
	})
	client := f.client()
	s, err := NewScaler(client.Jobs(), ScalerConfig{GatewayID: "gw"}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDiscovery(client.Services(), DiscoveryConfig{Watch: discovery.WatchConfig{MinInterval: time.Millisecond}}, gatewaytest.Logger(t))
	defer d.Close()
	gatewaytest.CapacityContract(t, struct {
		*Scaler
		*Discovery
	}{s, d}, "cap", "4", 5*time.Second)
	var scales []string
	for _, r := range f.log() {
		if strings.HasPrefix(r, "PUT ") {
			scales = append(scales, r)
		}
	}
	if len(scales) != 3 {
		t.Fatalf("scale requests %v, want 3 (2, 1, 0)", scales)
	}
}
