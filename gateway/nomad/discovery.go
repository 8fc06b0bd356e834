package nomad

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// ServiceReader is the part of the Nomad services API Discovery uses
// (*api.Services).
type ServiceReader interface {
	Get(serviceName string, q *api.QueryOptions) ([]*api.ServiceRegistration, *api.QueryMeta, error)
}

var _ ServiceReader = (*api.Services)(nil)

// DiscoveryConfig configures Discovery. Zero values take the defaults noted.
type DiscoveryConfig struct {
	// ServiceName maps a function to the service its instances register.
	// Default "nimbus-<fn>"; cmd/ passes jobs.ServiceName.
	ServiceName func(function string) string
	// Namespace and Region to query. Default: the client's.
	Namespace string
	Region    string
	// WaitTime bounds each blocking query. Default 5m.
	WaitTime time.Duration
	// Watch tunes the per-function-version cache (idle stop, backoff).
	Watch discovery.WatchConfig
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

// Discovery is a discovery.Source over Nomad's native service registrations
// of a function's service, filtered by the function=<fn> and version=<v>
// tags, kept current by one blocking query per watched function version.
//
// Nomad's service list carries no check status: an instance is listed from
// its registration until its allocation stops. The router must treat a
// refused connection or a failing invoke as that instance being gone.
type Discovery struct {
	*discovery.Watcher
	services ServiceReader
	cfg      DiscoveryConfig
}

var _ discovery.Source = (*Discovery)(nil)

// NewDiscovery returns a Discovery; it queries nothing until asked.
func NewDiscovery(services ServiceReader, cfg DiscoveryConfig, logger hclog.Logger) *Discovery {
	cfg.Defaults()
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	d := &Discovery{services: services, cfg: cfg}
	d.Watcher = discovery.NewWatcher(d.fetch, cfg.Watch, logger.Named("nomad-discovery"))
	return d
}

func (d *Discovery) fetch(ctx context.Context, function, version string, index uint64) ([]discovery.Instance, uint64, error) {
	service := d.cfg.ServiceName(function)
	q := (&api.QueryOptions{
		Namespace: d.cfg.Namespace,
		Region:    d.cfg.Region,
		WaitIndex: index,
		WaitTime:  d.cfg.WaitTime,
	}).WithContext(ctx)
	regs, meta, err := d.services.Get(service, q)
	if err != nil {
		return nil, 0, fmt.Errorf("reading nomad service %s: %w", service, err)
	}
	fnTag, verTag := "function="+function, "version="+version
	out := make([]discovery.Instance, 0, len(regs))
	for _, r := range regs {
		if !slices.Contains(r.Tags, fnTag) || !slices.Contains(r.Tags, verTag) || r.Address == "" || r.Port == 0 {
			continue
		}
		out = append(out, discovery.Instance{
			ID:       r.ID,
			Address:  net.JoinHostPort(r.Address, strconv.Itoa(r.Port)),
			Function: function,
			Version:  version,
			Group:    tagValue(r.Tags, "group="),
		})
	}
	var next uint64
	if meta != nil {
		next = meta.LastIndex
	}
	return out, next, nil
}

func tagValue(tags []string, prefix string) string {
	for _, t := range tags {
		if v, ok := strings.CutPrefix(t, prefix); ok {
			return v
		}
	}
	return ""
}
