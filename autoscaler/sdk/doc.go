// Package sdk holds our Go model of what crosses the Nomad Autoscaler plugin
// protocol — plugin info, time ranges, metric points, checks and scaling
// actions — so that the APM and strategy logic never touch generated
// protobuf types. autoscaler/plugin converts between these and the wire.
//
// It imports only the standard library.
package sdk
