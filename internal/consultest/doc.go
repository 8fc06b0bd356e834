// Package consultest starts a real Consul agent (`consul agent -dev`) on
// loopback for tests: random free ports for HTTP, DNS, serf (LAN and WAN),
// server RPC and gRPC, a wait for a leader, and a stop on test cleanup.
// StartPersistent runs a single-server agent with a data dir instead, which
// a test can Kill (SIGKILL) and Restart on the same ports and state.
//
// The agent binary comes from CONSUL_BINARY when it is set; otherwise it is
// built once from the pinned tools module (tools/consul, Consul v1.16.1) and
// cached under the user cache directory, keyed by version
// ($HOME/.cache/nimbus/consul-1.16.1/consul), so only the first test run on a
// machine pays for the build. Tests skip, saying why, only when neither is
// possible (no CONSUL_BINARY and no Go toolchain or tools module).
//
// It is test support only: production packages must not import it. It may
// import anything.
package consultest
