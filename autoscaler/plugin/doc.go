// Package plugin serves our APM and strategy implementations to the Nomad
// Autoscaler over go-plugin in gRPC mode, with the autoscaler's handshake and
// plugin-set keys ("base" plus "apm" or "strategy", both services on one gRPC
// server), and converts between the autoscaler/sdk model and the generated
// protobuf messages. Every handler recovers panics (the host never restarts
// a crashed plugin) and runs under a deadline (the host sets none on Query
// and Run).
//
// It also holds the client side of the same protocol (what the autoscaler
// agent does), used by autoscaler/harness to drive real plugin processes.
//
// It imports autoscaler/sdk and autoscaler/proto/..., go-plugin, grpc,
// protobuf and hclog.
package plugin
