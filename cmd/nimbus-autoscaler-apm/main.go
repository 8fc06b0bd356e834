// Command nimbus-autoscaler-apm is the Nomad Autoscaler APM plugin that
// reads provisioned-concurrency utilisation from the Nimbus gateways. The
// autoscaler agent starts it from its plugin_dir; it takes no flags and is
// configured through the agent's `apm "nimbus-apm" { config = { … } }`
// block (see autoscaler/apm).
package main

import (
	"os"

	"github.com/nimbus-fn/nimbus/autoscaler/apm"
	"github.com/nimbus-fn/nimbus/autoscaler/plugin"
	"github.com/nimbus-fn/nimbus/autoscaler/policy"
)

func main() {
	logger := plugin.NewLogger(policy.APMDriver)
	if err := plugin.Serve(apm.New(logger), logger); err != nil {
		logger.Error("serving plugin", "error", err)
		os.Exit(1)
	}
}
