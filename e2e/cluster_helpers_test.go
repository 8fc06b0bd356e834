package e2e

import (
	"context"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/server"
)

// clusterGateway is a cluster gateway (gateway/cluster's dependencies and
// a server) that a test runs.
type clusterGateway struct {
	cl     *cluster.Cluster
	srv    *server.Server
	cancel context.CancelFunc
	served chan error
	once   sync.Once
	err    error
}

// serveClusterGateway builds a cluster gateway from cfg and serves it;
// edit, when not nil, adjusts its dependencies first. The test's cleanup
// stops it if the test did not.
func serveClusterGateway(tb testing.TB, cfg *config.Config, opts cluster.Options, logger hclog.Logger, edit func(*server.Deps)) *clusterGateway {
	tb.Helper()
	cl, err := cluster.New(cfg, opts, logger)
	if err != nil {
		tb.Fatal(err)
	}
	cl.Start()
	deps := cl.Deps(logger)
	if edit != nil {
		edit(&deps)
	}
	srv, err := server.New(cfg, deps)
	if err != nil {
		cl.Close()
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		cl.Close()
		tb.Fatal(err)
	}
	g := &clusterGateway{cl: cl, srv: srv, cancel: cancel, served: make(chan error, 1)}
	go func() { g.served <- srv.Serve(ctx) }()
	tb.Cleanup(func() { _ = g.Stop() })
	return g
}

// Stop ends serving, waits for the server and closes the cluster's
// clients; it answers the server's error (the same on every call).
func (g *clusterGateway) Stop() error {
	g.once.Do(func() {
		g.cancel()
		g.err = <-g.served
		g.cl.Close()
	})
	return g.err
}
