// Package mesh makes a Go program a Connect-native member of Consul's service
// mesh, using only the local Consul agent's HTTP API (consul/api) and the
// standard library's crypto/tls:
//
//   - Source holds one service identity: the leaf certificate the agent issues
//     for that service (/v1/agent/connect/ca/leaf/<service>) and the CA roots
//     (/v1/agent/connect/ca/roots), each followed with a blocking query, so a
//     renewed leaf or a rotated CA reaches every new TLS handshake without a
//     restart. It hands out server and client *tls.Config values whose
//     certificates and trust anchors are looked up per handshake.
//   - Peer certificates are verified against the current roots, and the peer's
//     identity is its SPIFFE URI SAN
//     (spiffe://<trust-domain>/ns/<ns>/dc/<dc>/svc/<service>), parsed by
//     ParseSpiffeID.
//   - Authorizer asks the agent whether a caller may reach a destination
//     service (/v1/agent/connect/authorize), which is where Consul's
//     intentions are enforced.
//   - Dial and HTTPClient are a small Connect-native client: they find the
//     target's Connect-capable instances through the health API, dial one with
//     the caller's leaf and accept only a server that proves the target's
//     identity.
//
// # Authorization and caching
//
// Authorizer adds no cache of its own. The agent answers /connect/authorize
// from its local cache of intention matches, which it keeps current with a
// blocking query against the servers, so a call costs one loopback HTTP
// request and no server round trip, and an intention change (for instance
// `consul intention create -deny web api`) is applied as soon as the agent's
// blocking query returns. A second, time-based cache here could only make a
// new deny take effect later than Consul does; since the agent's answer is
// already local, it would save little. Errors talking to the agent deny the
// call (fail closed).
//
// Authorization is per call, not per TLS connection: a keep-alive connection
// opened while an intention allowed it is refused on its next request once a
// deny exists.
//
// # Imports
//
// mesh is a leaf: it imports only consul/api and the standard library, so
// both driver/** and gateway/** may use it.
package mesh
