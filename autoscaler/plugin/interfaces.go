package plugin

import (
	"context"

	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

// Base is what every served plugin implements.
type Base interface {
	// PluginInfo reports the plugin's name (its executable's name) and type.
	PluginInfo() sdk.Info
	// SetConfig receives the agent block's config; it is called once after
	// launch and again on every agent reload, possibly while other calls
	// are running.
	SetConfig(ctx context.Context, config map[string]string) error
}

// APM answers a check's query with time-stamped points. It must return at
// least one point: the host treats an empty answer as an error.
type APM interface {
	Base
	Query(ctx context.Context, query string, r sdk.TimeRange) ([]sdk.Metric, error)
}

// Strategy turns one evaluation into an action.
type Strategy interface {
	Base
	Run(ctx context.Context, req sdk.RunRequest) (sdk.Action, error)
}
