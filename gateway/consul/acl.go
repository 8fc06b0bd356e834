package consul

// GatewayACLPolicy is the Consul ACL policy (HCL rules) a gateway's token
// needs on a Consul with ACLs on and the default policy deny:
//
//   - service write on every name: the gateway registers itself and one
//     "<fn>-url" service per function URL (any function name), and with
//     connect on it fetches a leaf certificate for each of those and asks
//     /v1/agent/connect/authorize about them, which both need write on the
//     service;
//   - service and node read (implied by the above for services): Consul
//     health lists the function instances ("nimbus-<fn>") and their nodes;
//   - agent read: a gateway listening on a wildcard address asks its agent
//     for its advertise address (/v1/agent/self).
//
// It grants no intention, key/value, ACL or operator rights. Write on every
// service name is broader than the gateway's own names, because function
// URL services are named after functions; run the gateways in their own
// Consul admin partition or namespace (Consul Enterprise) to narrow it.
const GatewayACLPolicy = `service_prefix "" {
  policy = "write"
}
node_prefix "" {
  policy = "read"
}
agent_prefix "" {
  policy = "read"
}
`
