// Package apmpb is generated from apm.proto: APMPluginService (Query,
// QueryMultiple), proto package hashicorp.nomad_autoscaler.plugins.apm.proto.v1.
// Do not edit the .pb.go files; run scripts/gen-autoscaler-proto.sh. It
// imports protobuf, grpc and sharedpb.
package apmpb
