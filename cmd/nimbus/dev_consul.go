package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/gateway/versions"
)

// devConsul is `nimbus dev`'s Consul registration, on when its config has
// a consul block: the dev gateway registers itself (service_name, with an
// HTTP check on its health path) and a "<fn>-url" service per function URL
// as a cluster gateway does, keeps them in step with the functions, and
// re-registers what the agent lost (a restarted agent) on the registrar's
// resync. The server registers it after listening and deregisters it at
// shutdown. A nil *devConsul does nothing.
//
// With connect enabled the dev gateway also joins the mesh: its mesh
// listener and identity come from cluster.NewMesh, and the URL services
// are registered Connect-native there.
type devConsul struct {
	ln     net.Listener
	r      *consul.Registrar
	mesh   *server.MeshDeps // nil without connect
	fns    *versions.Catalog
	logger hclog.Logger
}

// newDevConsul checks the consul block, binds the gateway's listener (the
// registered port is the bound one) and builds the registrar.
func newDevConsul(cfg *config.Config, fns *versions.Catalog, logger hclog.Logger) (*devConsul, error) {
	c := cfg.Consul
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	cc, err := cluster.ConsulClient(c)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	host, port, err := cluster.Advertise(c.Advertise, ln.Addr(), cc.Agent())
	var md *server.MeshDeps
	var meshHost string
	var meshPort int
	if err == nil && cfg.ConnectEnabled() {
		md, meshHost, meshPort, err = cluster.NewMesh(cfg, cc, nil, host, logger)
	}
	if err == nil {
		var r *consul.Registrar
		r, err = consul.NewRegistrar(cc.Agent(), consul.RegistrarConfig{
			ServiceName: c.ServiceName, Address: host, Port: port, Tags: c.Tags, HealthPath: server.HealthPath,
			CheckInterval: c.CheckIntervalD, CheckTimeout: min(2*time.Second, c.CheckIntervalD),
			MeshAddress: meshHost, MeshPort: meshPort, MeshService: cluster.MeshService(cfg),
		}, logger)
		if err == nil {
			logger.Info("registering in consul", "consul", c.Address, "service_id", r.ServiceID(), "mesh", md != nil)
			return &devConsul{ln: ln, r: r, mesh: md, fns: fns, logger: logger}, nil
		}
	}
	if md != nil {
		md.Source.Close()
		_ = md.Listener.Close()
	}
	_ = ln.Close()
	return nil, err
}

// close stops the mesh identity (the server has closed its listeners).
func (d *devConsul) close() {
	if d == nil {
		return
	}
	_ = d.ln.Close()
	if d.mesh != nil {
		d.mesh.Source.Close()
		_ = d.mesh.Listener.Close()
	}
}

// sync registers the function URL services of the functions served now.
func (d *devConsul) sync(ctx context.Context) {
	if d == nil {
		return
	}
	fns, err := d.fns.Functions(ctx)
	if err == nil {
		err = d.r.SetURLFunctions(ctx, consul.URLFunctions(fns))
	}
	if err != nil && ctx.Err() == nil {
		d.logger.Warn("syncing function URL services in consul", "error", err)
	}
}

// run starts the registrar's resync until ctx ends.
func (d *devConsul) run(ctx context.Context) {
	if d != nil {
		go d.r.Run(ctx)
	}
}
