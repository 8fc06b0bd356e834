// Package strategypb is generated from strategy.proto: StrategyPluginService
// (Run), proto package hashicorp.nomad_autoscaler.plugins.strategy.proto.v1.
// Do not edit the .pb.go files; run scripts/gen-autoscaler-proto.sh. It
// imports protobuf, grpc and sharedpb.
package strategypb
