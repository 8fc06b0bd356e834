// Command nimbus-autoscaler-strategy is the Nomad Autoscaler strategy plugin
// for provisioned concurrency (target tracking with a warm floor and
// scheduled windows). The autoscaler agent starts it from its plugin_dir; it
// takes no flags and is configured per check through the job's
// `strategy "nimbus-target" { … }` block (see autoscaler/strategy).
package main

import (
	"os"

	"github.com/nimbus-fn/nimbus/autoscaler/plugin"
	"github.com/nimbus-fn/nimbus/autoscaler/policy"
	"github.com/nimbus-fn/nimbus/autoscaler/strategy"
)

func main() {
	logger := plugin.NewLogger(policy.StrategyDriver)
	if err := plugin.Serve(strategy.New(logger), logger); err != nil {
		logger.Error("serving plugin", "error", err)
		os.Exit(1)
	}
}
