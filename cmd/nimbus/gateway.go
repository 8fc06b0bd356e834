package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/server"
)

// clusterDeps builds the cluster adapters (Nomad catalog and scaler, Consul
// or Nomad discovery, Consul registrar) for `nimbus gateway` outside dev
// mode. The integrator sets it from a file that wires gateway/nomad and
// gateway/consul; until then a non-dev gateway refuses to start.
var clusterDeps func(ctx context.Context, cfg *config.Config, logger hclog.Logger) (server.Deps, func(), error)

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
	if err := fs.Parse(args); err != nil {
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
	logger := newLogger(env, "nimbus", *logLevel)
	if cfg.Dev {
		return runDevGateway(ctx, env, cfg, *specDir, logger)
	}
	if clusterDeps == nil {
		return errors.New("this build has no cluster adapters wired (Nomad catalog, Consul discovery); run with -dev or set dev = true")
	}
	deps, cleanup, err := clusterDeps(ctx, cfg, logger)
	if err != nil {
		return fmt.Errorf("starting cluster adapters: %w", err)
	}
	defer cleanup()
	return server.Run(ctx, cfg, deps)
}

func newLogger(env *cliEnv, name, level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   name,
		Level:  hclog.LevelFromString(level),
		Output: env.stderr,
	})
}
