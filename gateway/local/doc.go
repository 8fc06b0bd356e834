// Package local is dev mode's capacity: a router.Scaler and a
// discovery.Source over a Launcher that starts instances on this machine
// (cmd/nimbus adapts driver/local to it). OnDemand launches or stops
// instances to reach the wanted count; Instances lists the ready ones. When
// the catalog reloads, instances running an outdated spec are replaced.
//
// It may import gateway/**, specs and driver/invokeapi.
package local
