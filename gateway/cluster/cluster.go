package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/nomad"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/mesh"
)

// Options are the inputs that are not configuration.
type Options struct {
	// ServiceName maps a function to the service its instances register;
	// cmd/ passes jobs.ServiceName so names the compiler sanitised match.
	// Default "nimbus-<fn>".
	ServiceName func(function string) string
	// Listener, when set, is used instead of listening on the config's
	// listen address.
	Listener net.Listener
	// MeshListener, when set, is used instead of listening on connect
	// listen (connect enabled).
	MeshListener net.Listener
}

// Cluster holds one gateway's cluster adapters and their background loops.
type Cluster struct {
	logger    hclog.Logger
	ln        net.Listener
	gatewayID string
	catalog   *nomad.Catalog
	overlay   *versions.Catalog
	mappings  *versions.Nomad // API-created event-source mappings
	scaler    *Scaler
	source    discovery.Source
	closer    func()            // stops the discovery queries
	registrar *consul.Registrar // nil when registration is off
	// mesh is the gateway's Connect identity and intentions, with its
	// listener (connect enabled; nil otherwise).
	mesh *server.MeshDeps
	// instanceTLS calls Connect-native instances with the gateway's leaf
	// (set with mesh).
	instanceTLS router.InstanceTLSFunc

	startOnce sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// New checks cfg (filling defaults; call cfg.Environment first to take the
// NOMAD_* and CONSUL_HTTP_* variables), binds the listener and builds the
// adapters. Nothing talks to Nomad until Start; Consul is asked for its
// advertise address when the gateway listens on a wildcard address.
func New(cfg *config.Config, opts Options, logger hclog.Logger) (*Cluster, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	if cfg.Dev {
		return nil, errors.New("the cluster adapters are not used in dev mode")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	nc, err := nomadapi.NewClient(&nomadapi.Config{
		Address: cfg.Nomad.Address, SecretID: cfg.Nomad.Token,
		Region: cfg.Nomad.Region, Namespace: cfg.Nomad.Namespace,
	})
	if err != nil {
		return nil, fmt.Errorf("nomad client for %s: %w", cfg.Nomad.Address, err)
	}
	cc, err := ConsulClient(cfg.Consul)
	if err != nil {
		return nil, err
	}

	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
		}
	}
	c := &Cluster{logger: logger.Named("cluster"), ln: ln}
	ok := false
	defer func() {
		if !ok {
			_ = ln.Close()
		}
	}()
	host, port, err := advertise(cfg.Consul.Advertise, ln.Addr(), cc.Agent())
	if err != nil {
		return nil, err
	}
	c.gatewayID = cfg.GatewayID
	if c.gatewayID == "" {
		c.gatewayID = net.JoinHostPort(host, strconv.Itoa(port))
	}

	c.catalog, err = nomad.NewCatalog(nc.Jobs(), nc.Variables(), nomad.CatalogConfig{
		JobPrefix: cfg.Nomad.JobPrefix, Namespace: cfg.Nomad.Namespace, Region: cfg.Nomad.Region,
	}, logger)
	if err != nil {
		return nil, err
	}
	// Published versions come from their own jobs; aliases from the Nomad
	// Variables the catalog already watches (no extra requests).
	c.overlay = versions.NewCatalog(c.catalog, versions.New(versions.NewReadOnly(c.catalog.Variables), logger), versions.CatalogConfig{}, logger)
	// API-created event-source mappings live in Nomad Variables too.
	c.mappings = versions.NewNomad(nc.Variables(), cfg.Nomad.Namespace)

	inner, err := nomad.NewScaler(nc.Jobs(), nomad.ScalerConfig{
		JobID: c.catalog.JobID, Namespace: cfg.Nomad.Namespace, Region: cfg.Nomad.Region,
		GatewayID: c.gatewayID,
		// The shared Scaler compares with Nomad's count before every write.
		Repeat: -1,
	}, logger)
	if err != nil {
		return nil, err
	}
	if c.scaler, err = NewScaler(inner, ScalerConfig{GatewayID: c.gatewayID}, logger); err != nil {
		return nil, err
	}

	switch cfg.Discovery {
	case config.DiscoveryNomad:
		d := nomad.NewDiscovery(nc.Services(), nomad.DiscoveryConfig{
			ServiceName: opts.ServiceName, Namespace: cfg.Nomad.Namespace, Region: cfg.Nomad.Region,
		}, logger)
		// Nomad lists a service before its instance listens: probe first.
		c.source, c.closer = NewReadySource(d, time.Second, logger), d.Close
	default:
		// Instances are listed from registration on and probed directly
		// until Consul's own check passes, so a cold start does not wait
		// for Consul's first check run (staggered over the interval).
		d := consul.NewDiscovery(cc.Health(), consul.DiscoveryConfig{
			ServiceName: opts.ServiceName, Datacenter: cfg.Consul.Datacenter, IncludeFailing: true,
		}, logger)
		c.source, c.closer = NewReadySource(d, time.Second, logger), d.Close
	}

	var meshHost string
	var meshPort int
	if cfg.ConnectEnabled() {
		md, h, p, err := NewMesh(cfg, cc, opts.MeshListener, host, logger)
		if err != nil {
			c.closer()
			return nil, err
		}
		c.mesh, meshHost, meshPort = md, h, p
		name := opts.ServiceName
		if name == nil {
			name = func(fn string) string { return "nimbus-" + fn }
		}
		c.instanceTLS = func(fn string) *tls.Config { return md.Source.ClientTLSConfig(name(fn)) }
	}
	if cfg.Consul.Registers() {
		c.registrar, err = consul.NewRegistrar(cc.Agent(), consul.RegistrarConfig{
			ServiceName: cfg.Consul.ServiceName, Address: host, Port: port,
			Tags: cfg.Consul.Tags, HealthPath: server.HealthPath,
			CheckInterval: cfg.Consul.CheckIntervalD, CheckTimeout: min(2*time.Second, cfg.Consul.CheckIntervalD),
			MeshAddress: meshHost, MeshPort: meshPort, MeshService: meshService(cfg),
		}, logger)
		if err != nil {
			c.closeMesh()
			c.closer()
			return nil, err
		}
	}
	ok = true
	c.logger.Info("cluster adapters ready", "gateway_id", c.gatewayID, "nomad", cfg.Nomad.Address,
		"consul", cfg.Consul.Address, "discovery", cfg.Discovery, "registers", c.registrar != nil)
	return c, nil
}

// ConsulClient is the Consul API client of a consul block: its address,
// datacenter and ACL token (token, else token_file, read now; fill the
// block from the CONSUL_HTTP_* environment with Config.Environment first).
// The agent's TLS settings come from the CONSUL_HTTP_SSL, CONSUL_CACERT,
// CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY variables, as for every
// consul/api client. Every Consul client of the gateway (cluster and
// `nimbus dev`) is built here.
func ConsulClient(c *config.ConsulConfig) (*consulapi.Client, error) {
	token, err := c.ReadToken()
	if err != nil {
		return nil, err
	}
	cc, err := consulapi.NewClient(&consulapi.Config{Address: c.Address, Token: token, Datacenter: c.Datacenter})
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", c.Address, err)
	}
	return cc, nil
}

// meshService is the gateway's own Connect-native registration's name
// (the connect service), or "" without connect.
func meshService(cfg *config.Config) string {
	if !cfg.ConnectEnabled() {
		return ""
	}
	return cfg.Connect.Service
}

// MeshService is meshService for `nimbus dev`.
func MeshService(cfg *config.Config) string { return meshService(cfg) }

// Advertise is the host and port a gateway bound to bound registers in
// Consul: the configured advertise address (ConsulConfig.Advertise), else
// the bound one, with a wildcard host replaced by the agent's advertise
// address. `nimbus dev` registers through it too.
func Advertise(configured string, bound net.Addr, agent *consulapi.Agent) (string, int, error) {
	return advertise(configured, bound, agent)
}

// selfReader is the part of the Consul agent API advertise uses.
type selfReader interface {
	Self() (map[string]map[string]any, error)
}

// advertise picks the registered host and port: the configured advertise
// address, else the bound one, with a wildcard host replaced by the Consul
// agent's advertise address.
func advertise(configured string, bound net.Addr, agent selfReader) (string, int, error) {
	tcp, _ := bound.(*net.TCPAddr)
	host, port := "", 0
	if tcp != nil {
		host, port = tcp.IP.String(), tcp.Port
	}
	if configured != "" {
		h, p, err := net.SplitHostPort(configured)
		if err != nil {
			return "", 0, fmt.Errorf("consul advertise %q: %w", configured, err)
		}
		host = h
		if port, err = strconv.Atoi(p); err != nil {
			return "", 0, fmt.Errorf("consul advertise port %q: %w", p, err)
		}
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		self, err := agent.Self()
		if err != nil {
			return "", 0, fmt.Errorf("asking the consul agent for its address (the gateway listens on a wildcard; set consul advertise): %w", err)
		}
		a, _ := self["Config"]["AdvertiseAddr"].(string)
		if a == "" {
			return "", 0, errors.New("the consul agent reports no advertise address; set consul advertise")
		}
		host = a
	}
	if port <= 0 {
		return "", 0, fmt.Errorf("no port to advertise for %s", bound)
	}
	return host, port, nil
}

// GatewayID is this gateway's name in scaling events.
func (c *Cluster) GatewayID() string { return c.gatewayID }

// Catalog is the Nomad catalog (before the versions overlay).
func (c *Cluster) Catalog() *nomad.Catalog { return c.catalog }

// Registrar is the Consul registrar, nil when registration is off.
func (c *Cluster) Registrar() *consul.Registrar { return c.registrar }

// Start runs the catalog's watches, the versions overlay, the function-URL
// sync into the registrar and the registrar's resync until Close. Call it
// once, before the server starts.
func (c *Cluster) Start() {
	c.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		c.catalog.Watch(func(s *catalog.Snapshot) {
			if err := c.overlay.Refresh(ctx); err != nil && ctx.Err() == nil {
				c.logger.Warn("reloading aliases after a catalog change", "error", err)
			}
			if c.registrar == nil {
				return
			}
			if err := c.registrar.SetURLFunctions(ctx, consul.URLFunctions(s.Functions())); err != nil && ctx.Err() == nil {
				c.logger.Warn("syncing function URL services", "error", err)
			}
		})
		c.goRun(func() { c.catalog.Run(ctx) })
		c.goRun(func() { c.overlay.Run(ctx) })
		if c.registrar != nil {
			c.goRun(func() { c.registrar.Run(ctx) })
		}
	})
}

func (c *Cluster) goRun(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// Deps returns the adapters for server.New. The Nomad catalog is a
// readiness check: while its queries fail the gateway's health says "not
// ready" with the reason, and lookups fail fast with it (ErrUnavailable)
// instead of waiting.
func (c *Cluster) Deps(logger hclog.Logger) server.Deps {
	d := server.Deps{Catalog: c.overlay, Source: c.source, Scaler: c.scaler, Logger: logger, Listener: c.ln,
		MappingBackend: c.mappings, Member: c.gatewayID,
		Readiness: []server.ReadinessChecker{c.catalog}}
	if c.registrar != nil {
		d.Registrars = []server.Registrar{c.registrar}
	}
	d.Mesh = c.mesh
	d.InstanceTLS = c.instanceTLS
	return d
}

// NewMesh binds the mesh listener (ln, else connect listen) and starts the
// gateway's Connect identity: a mesh.Source for connect service fed by the
// Consul agent, and an Authorizer asking it about intentions. It returns
// the host and port the "<fn>-url" services are registered at: connect
// advertise, else plainHost (the plain listener's advertised host) with the
// bound port. `nimbus dev` calls it too. The Source runs until the
// returned deps' Source is closed.
func NewMesh(cfg *config.Config, cc *consulapi.Client, ln net.Listener, plainHost string, logger hclog.Logger) (*server.MeshDeps, string, int, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Connect.Listen); err != nil {
			return nil, "", 0, fmt.Errorf("listening on %s (connect): %w", cfg.Connect.Listen, err)
		}
	}
	host, port := plainHost, ln.Addr().(*net.TCPAddr).Port
	if adv := cfg.Connect.Advertise; adv != "" {
		h, p, err := net.SplitHostPort(adv)
		if err == nil {
			port, err = strconv.Atoi(p)
		}
		if err != nil {
			_ = ln.Close()
			return nil, "", 0, fmt.Errorf("connect advertise %q: %w", adv, err)
		}
		host = h
	}
	src, err := mesh.NewSource(cc.Agent(), mesh.SourceConfig{Service: cfg.Connect.Service, Logger: logger.Named("mesh")})
	if err != nil {
		_ = ln.Close()
		return nil, "", 0, err
	}
	return &server.MeshDeps{Source: src, Authorizer: mesh.NewAuthorizer(cc.Agent()), Listener: ln}, host, port, nil
}

func (c *Cluster) closeMesh() {
	if c.mesh != nil {
		c.mesh.Source.Close()
		_ = c.mesh.Listener.Close()
	}
}

// Close stops the background loops and discovery queries. Call it after
// the server has shut down (which deregisters from Consul).
func (c *Cluster) Close() {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	c.closer()
	c.closeMesh()
	_ = c.ln.Close() // already closed when the server ran
}
