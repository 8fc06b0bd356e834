// Package proto holds our own .proto files for the Nomad task-driver plugin
// protocol and the Go code generated from them, in one sub-package per proto
// package:
//
//   - hclspec: hashicorp.nomad.plugins.shared.hclspec (configuration schemas)
//   - structs: hashicorp.nomad.plugins.shared.structs (Attribute, RecoverableError)
//   - base:    hashicorp.nomad.plugins.base.proto (the BasePlugin service)
//   - drivers: hashicorp.nomad.plugins.drivers.proto (the Driver service)
//
// The files are written from the wire facts in the protocol reference (proto
// package names, service and method names, field numbers and types) so that
// Nomad's client talks to our server unchanged; nothing is imported from
// Nomad. The generated code is committed; `make generate` reproduces it with
// the pinned generators and a test fails when it drifts from the .proto files.
//
// This package and its sub-packages import nothing from the module except
// each other.
package proto

//go:generate bash ../../../scripts/gen-proto.sh
