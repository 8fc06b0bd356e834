// Package basepb is generated from base.proto: BasePluginService
// (PluginInfo, SetConfig), proto package
// hashicorp.nomad_autoscaler.plugins.base.proto.v1. Do not edit the .pb.go
// files; run scripts/gen-autoscaler-proto.sh. It imports only protobuf and
// grpc.
package basepb
