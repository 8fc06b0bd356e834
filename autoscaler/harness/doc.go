// Package harness drives our autoscaler plugins the way the Nomad
// Autoscaler agent does, for tests: it builds the real plugin binaries from
// cmd/, starts them through go-plugin with the autoscaler's handshake
// (gRPC only), checks PluginInfo against the configured driver and type,
// sends SetConfig, and replays an evaluation tick — Query over the check's
// window, Run with the sorted points and the current count, then the host's
// post-processing (clamp to the policy's [min, max], scale only on a
// direction other than None with a changed count).
//
// It is test support: it imports testing, and only autoscaler/** from this
// module.
package harness
