package consul

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// Health is the part of the Consul health API Discovery uses (*api.Health).
type Health interface {
	ServiceMultipleTags(service string, tags []string, passingOnly bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error)
}

var _ Health = (*api.Health)(nil)

// DiscoveryConfig configures Discovery. Zero values take the defaults noted.
type DiscoveryConfig struct {
	// ServiceName maps a function to the service its instances register.
	// Default "nimbus-<fn>"; cmd/ passes jobs.ServiceName so names the
	// compiler had to sanitise match.
	ServiceName func(function string) string
	// WaitTime bounds each blocking query. Default 5m (Consul caps it at 10m).
	WaitTime time.Duration
	// Datacenter to query. Default: the agent's.
	Datacenter string
	// AllowStale lets any server answer, not only the leader. Default false.
	AllowStale bool
	// Watch tunes the per-function-version cache (idle stop, backoff).
	Watch discovery.WatchConfig
	// IncludeFailing lists instances whose checks do not pass (yet), with
	// Instance.Health saying which pass. A starting instance is listed as
	// soon as Nomad registers it, instead of after its first passing check
	// (Consul runs the first one up to a whole check interval later), so a
	// caller that probes the instance itself (cluster.ReadySource) can
	// route to it the moment it answers. Default false: passing only.
	IncludeFailing bool
}

// Defaults fills empty fields.
func (c *DiscoveryConfig) Defaults() {
	if c.ServiceName == nil {
		c.ServiceName = func(fn string) string { return "nimbus-" + fn }
	}
	if c.WaitTime <= 0 {
		c.WaitTime = 5 * time.Minute
	}
}

// Discovery is a discovery.Source over Consul health: the passing instances
// of a function version, kept current by one blocking query per watched
// function version. Close stops every query.
type Discovery struct {
	*discovery.Watcher
	health Health
	cfg    DiscoveryConfig
}

var _ discovery.Source = (*Discovery)(nil)

// NewDiscovery returns a Discovery; it queries nothing until asked.
func NewDiscovery(health Health, cfg DiscoveryConfig, logger hclog.Logger) *Discovery {
	cfg.Defaults()
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	d := &Discovery{health: health, cfg: cfg}
	d.Watcher = discovery.NewWatcher(d.fetch, cfg.Watch, logger.Named("consul-discovery"))
	return d
}

func (d *Discovery) fetch(ctx context.Context, function, version string, index uint64) ([]discovery.Instance, uint64, error) {
	service := d.cfg.ServiceName(function)
	q := (&api.QueryOptions{
		WaitIndex:  index,
		WaitTime:   d.cfg.WaitTime,
		Datacenter: d.cfg.Datacenter,
		AllowStale: d.cfg.AllowStale,
	}).WithContext(ctx)
	entries, meta, err := d.health.ServiceMultipleTags(service, []string{"function=" + function, "version=" + version}, !d.cfg.IncludeFailing, q)
	if err != nil {
		return nil, 0, fmt.Errorf("querying consul health of %s: %w", service, err)
	}
	out := make([]discovery.Instance, 0, len(entries))
	for _, e := range entries {
		if e.Service == nil {
			continue
		}
		addr := e.Service.Address
		if addr == "" && e.Node != nil {
			addr = e.Node.Address
		}
		if addr == "" || e.Service.Port == 0 {
			continue
		}
		health := discovery.HealthPassing
		if e.Checks.AggregatedStatus() != api.HealthPassing {
			health = discovery.HealthFailing
		}
		out = append(out, discovery.Instance{
			ID:       e.Service.ID,
			Address:  net.JoinHostPort(addr, strconv.Itoa(e.Service.Port)),
			Function: function,
			Version:  version,
			Group:    group(e.Service.Tags, e.Service.Meta),
			Health:   health,
			Mesh:     e.Service.Connect != nil && e.Service.Connect.Native,
		})
	}
	var next uint64
	if meta != nil {
		next = meta.LastIndex
	}
	return out, next, nil
}

// group reads the task group from the "group=<g>" tag, else the "group" meta.
func group(tags []string, meta map[string]string) string {
	for _, t := range tags {
		if g, ok := strings.CutPrefix(t, "group="); ok {
			return g
		}
	}
	return meta["group"]
}
