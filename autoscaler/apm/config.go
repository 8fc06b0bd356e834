package apm

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Agent config keys (the `apm "nimbus-apm" { config = { … } }` block).
const (
	KeyGateways         = "gateways"
	KeyConsulAddress    = "consul_address"
	KeyConsulToken      = "consul_token"
	KeyConsulDatacenter = "consul_datacenter"
	KeyConsulService    = "consul_service"
	KeyScheme           = "scheme"
	KeyMetricsPath      = "metrics_path"
	KeyScrapeTimeout    = "scrape_timeout"
	KeyCacheTTL         = "cache_ttl"
	KeyRetention        = "retention"
)

var configKeys = []string{KeyGateways, KeyConsulAddress, KeyConsulToken, KeyConsulDatacenter, KeyConsulService,
	KeyScheme, KeyMetricsPath, KeyScrapeTimeout, KeyCacheTTL, KeyRetention}

// Defaults.
const (
	DefaultConsulAddress = "127.0.0.1:8500"
	DefaultConsulService = "nimbus-gateway"
	DefaultScheme        = "http"
	DefaultMetricsPath   = "/metrics"
	DefaultScrapeTimeout = 5 * time.Second
	DefaultCacheTTL      = time.Second
	DefaultRetention     = 15 * time.Minute
)

// ErrBadConfig is wrapped by every config error.
var ErrBadConfig = errors.New("invalid apm config")

// Config is the APM's agent-level configuration.
type Config struct {
	// Gateways is a comma-separated list of gateway addresses, each
	// host:port or a full URL of the metrics endpoint. When empty, gateways
	// are found in Consul. Default: empty.
	Gateways []string
	// ConsulAddress is the Consul HTTP address, host:port or URL.
	// Default "127.0.0.1:8500".
	ConsulAddress string
	// ConsulToken is the ACL token. Default: none.
	ConsulToken string
	// ConsulDatacenter to query. Default: the agent's.
	ConsulDatacenter string
	// ConsulService is the gateways' service name. Default "nimbus-gateway".
	ConsulService string
	// Scheme for host:port gateway addresses. Default "http".
	Scheme string
	// MetricsPath for host:port gateway addresses. Default "/metrics".
	MetricsPath string
	// ScrapeTimeout bounds one gateway scrape. Default 5s.
	ScrapeTimeout time.Duration
	// CacheTTL: one scrape of all gateways serves every query this long.
	// 0 scrapes on every query. Default 1s.
	CacheTTL time.Duration
	// Retention of each query's samples; the longest query_window this
	// plugin can fill. Default 15m.
	Retention time.Duration
}

// ParseConfig reads the agent block's config. Keys the agent adds itself
// (nomad_*) are ignored; any other unknown key is an error.
func ParseConfig(m map[string]string) (Config, error) {
	cfg := Config{
		ConsulAddress: DefaultConsulAddress, ConsulService: DefaultConsulService,
		Scheme: DefaultScheme, MetricsPath: DefaultMetricsPath,
		ScrapeTimeout: DefaultScrapeTimeout, CacheTTL: DefaultCacheTTL, Retention: DefaultRetention,
	}
	var errs []error
	bad := func(key, problem string) {
		errs = append(errs, fmt.Errorf("%w: %s = %q: %s", ErrBadConfig, key, m[key], problem))
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(m[k])
		switch k {
		case KeyGateways:
			for _, g := range strings.Split(v, ",") {
				if g = strings.TrimSpace(g); g != "" {
					cfg.Gateways = append(cfg.Gateways, g)
				}
			}
		case KeyConsulAddress:
			if v != "" {
				cfg.ConsulAddress = v
			}
		case KeyConsulToken:
			cfg.ConsulToken = v
		case KeyConsulDatacenter:
			cfg.ConsulDatacenter = v
		case KeyConsulService:
			if v != "" {
				cfg.ConsulService = v
			}
		case KeyScheme:
			if v != "http" && v != "https" {
				bad(k, "want http or https")
			}
			cfg.Scheme = v
		case KeyMetricsPath:
			if !strings.HasPrefix(v, "/") {
				bad(k, "want an absolute path such as /metrics")
			}
			cfg.MetricsPath = v
		case KeyScrapeTimeout, KeyCacheTTL, KeyRetention:
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || (d == 0 && k != KeyCacheTTL) {
				bad(k, "want a positive Go duration such as 5s")
				continue
			}
			switch k {
			case KeyScrapeTimeout:
				cfg.ScrapeTimeout = d
			case KeyCacheTTL:
				cfg.CacheTTL = d
			default:
				cfg.Retention = d
			}
		default:
			if !strings.HasPrefix(k, "nomad_") {
				bad(k, "unknown key (known: "+strings.Join(configKeys, ", ")+")")
			}
		}
	}
	for _, g := range cfg.Gateways {
		if _, err := cfg.metricsURL(g); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %v", ErrBadConfig, KeyGateways, err))
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// metricsURL turns a gateway address into its metrics URL.
func (c Config) metricsURL(addr string) (string, error) {
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("gateway %q: want host:port or an http(s) URL", addr)
		}
		if u.Path == "" {
			u.Path = c.MetricsPath
		}
		return u.String(), nil
	}
	if strings.ContainsAny(addr, "/ ") || !strings.Contains(addr, ":") {
		return "", fmt.Errorf("gateway %q: want host:port or an http(s) URL", addr)
	}
	return (&url.URL{Scheme: c.Scheme, Host: addr, Path: c.MetricsPath}).String(), nil
}
