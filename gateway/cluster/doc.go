// Package cluster wires one gateway for a Nomad cluster: the Nomad catalog
// (function jobs, with published versions and aliases overlaid from the
// Nomad Variables it watches), the on-demand Scaler over Nomad's job scale
// API, discovery through Consul health or Nomad's native services (behind
// ReadySource, since Nomad lists a service before its instance listens and
// carries no check status), and the Consul registrations of the gateway
// and its function URLs, kept in step with the catalog. New builds
// everything from the gateway's config and binds the listener first, so
// the registered port is the bound one; Deps hands the adapters to
// gateway/server; Close stops the background loops.
//
// Scaling with several gateways. Each gateway computes its own on-demand
// target from the traffic it sees, and they all write the same group
// count. The Scaler's rule, so that no gateway undoes another's scale-out:
//
//   - Raising: a gateway writes its target only when Nomad's count is below
//     it; a target at or below the current count writes nothing, so a
//     gateway never lowers a count while it is busy.
//   - Lowering: a gateway lowers the count only when its own view has been
//     idle for the idle window (the router asks only then) AND Nomad's
//     count is exactly the count this gateway last set — remembered, or,
//     after a restart, read from the newest count-setting scaling event
//     carrying this gateway's id. A count another gateway raised since is
//     that gateway's to lower when it is idle; this gateway leaves it alone
//     and forgets it.
//
// Check-and-set: the count is read from the job with its JobModifyIndex
// and written with Nomad's scale request carrying that index, which Nomad
// refuses when the job changed in between. The Scaler then reads again and
// decides again (up to eight rounds), so two gateways raising at once end
// at the higher of their targets, and a scale-in that raced a raise is
// dropped instead of undoing it.
//
// Limit: a count set by a gateway that went away for good stays until an
// operator lowers it or a gateway with the same gateway_id raises and
// idles again.
//
// With connect enabled, NewMesh binds the mesh listener and starts the
// gateway's mesh identity (mesh.Source and mesh.Authorizer on the Consul
// agent), and the registrar puts the URL services, and a second
// registration of the gateway service, Connect-native there.
//
// ConsulClient builds every Consul client of the gateway (cluster and
// `nimbus dev`) from the consul block: address, datacenter and the ACL
// token (token, or token_file read at start).
//
// It may import gateway/**, specs, driver/invokeapi and mesh.
package cluster
