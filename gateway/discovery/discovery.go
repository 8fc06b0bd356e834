package discovery

import "context"

// Task group names, as the compiler names them in each function job.
const (
	GroupProvisioned = "provisioned"
	GroupOnDemand    = "ondemand"
)

// Instance is one healthy instance's invoke endpoint.
type Instance struct {
	// ID is stable for the instance's life (alloc id + task, or a local id).
	ID string
	// Address is the invoke endpoint's host:port.
	Address string
	// Function and Version ("$LATEST" or a number) it serves.
	Function string
	Version  string
	// Group is GroupProvisioned or GroupOnDemand.
	Group string
	// Health is what the source knows of the instance's checks: empty
	// when it has none (Nomad's native services, the local launcher),
	// HealthPassing or HealthFailing when a source that runs checks
	// (Consul) lists instances whatever their status.
	Health string
	// Mesh is true when the instance is a Consul Connect-native service:
	// its invoke endpoint speaks mutual TLS and admits callers by
	// intentions, so gateways call it with their mesh identity (and no
	// invoke secret).
	Mesh bool
}

// Health values of an Instance.
const (
	HealthPassing = "passing"
	HealthFailing = "failing"
)

// Source returns the healthy instances of one function version.
// Implementations cache and refresh in the background (blocking queries) so
// that a call on the invocation path is cheap.
type Source interface {
	Instances(ctx context.Context, function, version string) ([]Instance, error)
}
