package nomadplugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
)

// InstanceRunner runs one instance until ctx is done (instance.Run).
type InstanceRunner func(ctx context.Context, cfg *instance.Config, logger hclog.Logger) error

// InstanceOptions are the flags of `nimbus-driver instance`.
type InstanceOptions struct {
	// ConfigPath is the instance config (JSON) the driver wrote. Required.
	ConfigPath string
	// StatusPath, when set, receives the exit status (JSON) when the
	// instance returns, for a driver that is not this process's parent
	// (after a plugin restart).
	StatusPath string
}

// RunInstance is the body of the instance subcommand: load the config, run
// the instance until ctx is done (the driver's stop signal), record the exit
// status. It returns the process exit code.
func RunInstance(ctx context.Context, opts InstanceOptions, run InstanceRunner, logger hclog.Logger) int {
	code, err := runInstance(ctx, opts, run, logger)
	if err != nil {
		logger.Error("instance ended", "error", err)
	}
	if opts.StatusPath != "" {
		if werr := writeExitStatus(opts.StatusPath, code, err); werr != nil {
			logger.Error("recording exit status", "error", werr)
		}
	}
	return code
}

func runInstance(ctx context.Context, opts InstanceOptions, run InstanceRunner, logger hclog.Logger) (int, error) {
	if opts.ConfigPath == "" {
		return 2, errors.New("instance: --config is required")
	}
	cfg, err := instance.LoadConfig(opts.ConfigPath)
	if err != nil {
		return 2, err
	}
	logger = logger.With("function", cfg.Function, "version", cfg.Version)
	if err := run(ctx, cfg, logger); err != nil && !errors.Is(err, context.Canceled) {
		return 1, fmt.Errorf("running instance: %w", err)
	}
	return 0, nil
}
