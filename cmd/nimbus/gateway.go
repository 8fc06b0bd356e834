package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/jobs"
)

// clusterDeps builds the cluster adapters (Nomad catalog and scaler, Consul
// or Nomad discovery, Consul registrar) for `nimbus gateway` outside dev
// mode.
var clusterDeps = startCluster

// startCluster wires gateway/cluster: instance services are named as the
// job compiler names them.
func startCluster(_ context.Context, cfg *config.Config, logger hclog.Logger) (server.Deps, func(), error) {
	c, err := cluster.New(cfg, cluster.Options{ServiceName: jobs.ServiceName}, logger)
	if err != nil {
		return server.Deps{}, nil, err
	}
	refs, err := artifactRefs(cfg, logger)
	if err != nil {
		c.Close()
		return server.Deps{}, nil, err
	}
	c.Start()
	deps := c.Deps(logger)
	deps.ArtifactRefs = refs
	nc, err := gatewayNomadClient(cfg)
	if err != nil {
		c.Close()
		return server.Deps{}, nil, err
	}
	manage, run := clusterManagement(cfg, nc, deps.MappingBackend, deps.Source, c.GatewayID(), logger)
	// A management write answers once this gateway's catalog lists the
	// jobs it registered or removed: a read that follows sees them.
	manage.Changed = func(ctx context.Context) {
		if err := c.Catalog().Sync(ctx); err != nil {
			logger.Warn("listing the function jobs after a management write", "error", err)
		}
	}
	deps.Manage = manage
	deps.ArtifactRefs = append(deps.ArtifactRefs, manage.Functions)
	runCtx, stop := context.WithCancel(context.Background())
	run(runCtx)
	return deps, func() { stop(); c.Close() }, nil
}

func gatewayNomadClient(cfg *config.Config) (*nomadapi.Client, error) {
	nc, err := nomadapi.NewClient(&nomadapi.Config{
		Address: cfg.Nomad.Address, SecretID: cfg.Nomad.Token,
		Region: cfg.Nomad.Region, Namespace: cfg.Nomad.Namespace,
	})
	if err != nil {
		return nil, fmt.Errorf("nomad client for %s: %w", cfg.Nomad.Address, err)
	}
	return nc, nil
}

// artifactRefs are what the artifact store's GC keeps in a cluster: code
// and layers of published versions and layer versions (Nomad Variables,
// read afresh each collection) and every bundle a function job fetches.
func artifactRefs(cfg *config.Config, logger hclog.Logger) ([]artifacts.Referencer, error) {
	nc, err := gatewayNomadClient(cfg)
	if err != nil {
		return nil, err
	}
	return []artifacts.Referencer{
		versions.New(versions.NewNomad(nc.Variables(), cfg.Nomad.Namespace), logger),
		&artifacts.JobReferences{Jobs: nc.Jobs(), Prefix: cfg.Nomad.JobPrefix},
	}, nil
}

func init() {
	register("gateway", command{
		summary: "run the gateway (Invoke API, function URLs, routing, metrics)",
		run:     runGateway,
	})
}

func runGateway(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "gateway", "")
	cfgPath := fs.String("config", "", "gateway config file (HCL)")
	listen := fs.String("listen", "", "listen address (overrides the config)")
	specDir := fs.String("specs", "", "dev mode: spec file or directory to serve (default: the dev sample)")
	dev := fs.Bool("dev", false, "dev mode: local catalog and launcher, no authentication unless access keys are configured")
	logLevel := fs.String("log-level", "info", "log level (trace, debug, info, warn, error)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *dev {
		cfg.Dev = true
	}
	// NOMAD_ADDR, CONSUL_HTTP_ADDR and their tokens fill what the file left empty.
	consulBlock := cfg.Consul != nil
	cfg.Environment(env.getenv)
	logger := newLogger(env, "nimbus", *logLevel)
	if cfg.Dev {
		if !consulBlock {
			cfg.Consul = nil // dev mode registers in Consul only when the file says so
		}
		return runDevGateway(ctx, env, cfg, *specDir, logger)
	}
	deps, cleanup, err := clusterDeps(ctx, cfg, logger)
	if err != nil {
		return fmt.Errorf("starting cluster adapters: %w", err)
	}
	defer cleanup()
	deps.Blueprints = consoleBlueprints{}
	return server.Run(ctx, cfg, deps)
}

func newLogger(env *cliEnv, name, level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   name,
		Level:  hclog.LevelFromString(level),
		Output: env.stderr,
	})
}
