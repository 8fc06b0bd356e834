// Package proto holds our own .proto files for the Nomad Autoscaler's
// external-plugin gRPC protocol and the Go code generated from them, one Go
// package per proto package: sharedpb (shared messages), basepb
// (BasePluginService), apmpb (APMPluginService) and strategypb
// (StrategyPluginService). The proto package names, service and method names,
// field numbers and types match the autoscaler's schema exactly (see
// nomad-autoscaler-protocol.md §3), because the gRPC method paths and the
// wire encoding depend on them; Go package paths and file paths are ours.
//
// The generated files are committed. scripts/gen-autoscaler-proto.sh
// regenerates them (`make generate` runs it through the directive below) and
// the drift test in this package fails when they no longer match the .proto
// files. This package itself has no code; the subpackages import only
// google.golang.org/protobuf and google.golang.org/grpc.
package proto

//go:generate ../../scripts/gen-autoscaler-proto.sh
