// Package discovery holds the types every source of healthy instances shares:
// Consul health, Nomad service registrations and the local launcher all
// answer the same question for the router — where are the instances of one
// function version? Watcher is the shared cache behind the cluster sources:
// one lazily started, idle-stopped blocking-query loop per function version.
//
// It imports nothing from this module.
package discovery
