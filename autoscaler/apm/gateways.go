package apm

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/consul/api"
)

// gatewayLister returns the metrics URLs of the gateways to scrape.
type gatewayLister interface {
	MetricsURLs(ctx context.Context) ([]string, error)
}

// staticGateways is the configured address list.
type staticGateways []string

func (s staticGateways) MetricsURLs(context.Context) ([]string, error) { return s, nil }

// healthAPI is the one Consul call the APM makes; *api.Health satisfies it.
type healthAPI interface {
	Service(service, tag string, passingOnly bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error)
}

var _ healthAPI = (*api.Health)(nil)

// consulGateways lists the passing instances of the gateway service.
type consulGateways struct {
	health     healthAPI
	service    string
	datacenter string
	cfg        Config
}

func newConsulGateways(cfg Config) (*consulGateways, error) {
	// Fields left empty (token, datacenter) fall back to api.NewClient's
	// defaults, which read the CONSUL_HTTP_* environment like every Consul
	// client; the address always comes from our config.
	client, err := api.NewClient(&api.Config{
		Address:    cfg.ConsulAddress,
		Token:      cfg.ConsulToken,
		Datacenter: cfg.ConsulDatacenter,
	})
	if err != nil {
		return nil, fmt.Errorf("creating consul client for %s: %w", cfg.ConsulAddress, err)
	}
	return &consulGateways{health: client.Health(), service: cfg.ConsulService, datacenter: cfg.ConsulDatacenter, cfg: cfg}, nil
}

func (c *consulGateways) MetricsURLs(ctx context.Context) ([]string, error) {
	q := (&api.QueryOptions{Datacenter: c.datacenter}).WithContext(ctx)
	entries, _, err := c.health.Service(c.service, "", true, q)
	if err != nil {
		return nil, fmt.Errorf("listing consul service %s: %w", c.service, err)
	}
	urls := make([]string, 0, len(entries))
	for _, e := range entries {
		// A connect-enabled gateway registers its service a second time,
		// Connect-native at its mutual-TLS mesh listener; metrics are on
		// the plain registration.
		if e.Service == nil || (e.Service.Connect != nil && e.Service.Connect.Native) {
			continue
		}
		host := e.Service.Address
		if host == "" && e.Node != nil {
			host = e.Node.Address
		}
		if host == "" || e.Service.Port == 0 {
			continue
		}
		u, err := c.cfg.metricsURL(net.JoinHostPort(host, strconv.Itoa(e.Service.Port)))
		if err != nil {
			return nil, err
		}
		urls = append(urls, u)
	}
	return urls, nil
}
