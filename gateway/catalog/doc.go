// Package catalog is the gateway's view of deployed functions: each function
// with its versions ($LATEST and published numbers), aliases and URL config,
// plus qualifier resolution (alias weights → version). It also holds Local,
// the catalog `nimbus dev` uses: specs loaded from a directory and reloaded
// when a spec file changes (polled mtimes, swapped atomically). The cluster
// catalog (Nomad jobs) lives in gateway/nomad and produces the same Function
// values.
//
// It may import specs and gateway/**; nothing else from this module.
package catalog
