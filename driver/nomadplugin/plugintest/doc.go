// Package plugintest is a conformance harness that drives the nimbus task
// driver the way a Nomad client does, for tests: it builds
// cmd/nimbus-driver, launches it through go-plugin's client with Nomad's
// handshake (cookie in the environment, gRPC only) or reattaches to it,
// encodes agent and task config exactly as Nomad does (hclspec → hcldec →
// HCL-JSON decode → go-cty msgpack), lays out alloc/task directories, and
// plays logmon's part by creating and draining the stdout/stderr FIFOs.
// It also holds the driver tests' shared helpers: a test logger that drops
// go-plugin's late lines, Eventually, and /proc process checks.
//
// It imports only driver/nomadplugin (and its protos) from the module.
package plugintest
