// Package sharedpb is generated from shared.proto: the messages the Nomad
// Autoscaler's plugin services share (proto package
// hashicorp.nomad_autoscaler.plugins.shared.proto.v1). Do not edit the
// .pb.go files; run scripts/gen-autoscaler-proto.sh. It imports only
// google.golang.org/protobuf.
package sharedpb
