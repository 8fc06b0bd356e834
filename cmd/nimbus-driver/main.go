// Command nimbus-driver is the Nomad task driver plugin "nimbus".
//
// Without arguments (as Nomad starts it from plugin_dir) it serves the
// plugin over go-plugin. `nimbus-driver instance --config FILE` is the
// per-task instance process the driver starts.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin"
)

// version is set at build time (-X main.version=...).
var version = "0.1.0"

func main() {
	// After the Nomad agent (or logmon) dies, a write to the stderr pipe or a
	// log FIFO must fail with EPIPE, not kill the plugin or an instance:
	// reattaching depends on it. Notify rather than Ignore, so that processes
	// started from here (environments, exec sessions) get the default
	// SIGPIPE disposition instead of inheriting SIG_IGN. The channel is never
	// read; signals that do not fit are dropped.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	if len(os.Args) > 1 && os.Args[1] == "instance" {
		os.Exit(runInstance(os.Args[2:]))
	}
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "usage: nimbus-driver               (started by Nomad)\n       nimbus-driver instance --config FILE [--status-file FILE]\n")
		os.Exit(2)
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       nomadplugin.PluginName,
		Level:      hclog.Trace, // the agent filters by its own log_level
		JSONFormat: true,
		Output:     os.Stderr,
	})
	exe, err := os.Executable()
	if err != nil {
		logger.Error("locating own executable", "error", err)
		os.Exit(1)
	}
	d, err := nomadplugin.New(nomadplugin.Options{Executable: exe, Version: version, Logger: logger})
	if err != nil {
		logger.Error("creating driver", "error", err)
		os.Exit(1)
	}
	nomadplugin.Serve(d)
}

func runInstance(args []string) int {
	fs := flag.NewFlagSet("nimbus-driver instance", flag.ContinueOnError)
	var opts nomadplugin.InstanceOptions
	fs.StringVar(&opts.ConfigPath, "config", "", "instance config file (JSON)")
	fs.StringVar(&opts.StatusPath, "status-file", "", "file receiving the exit status")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "nimbus-instance", Level: hclog.Info, Output: os.Stderr})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return nomadplugin.RunInstance(ctx, opts, instance.Run, logger)
}
