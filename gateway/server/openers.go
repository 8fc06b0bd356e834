package server

import (
	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// DefaultOpeners are the event-source types built into the gateway.
func DefaultOpeners() map[string]sources.Opener {
	return map[string]sources.Opener{}
}
