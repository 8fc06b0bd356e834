// Package consul is the gateway's Consul adapter:
//
//   - Registrar registers the gateway as a Consul service with an HTTP health
//     check, and each function URL as its own service ("<fn>-url") at the
//     gateway's address, so "<fn>-url.service.consul" and mesh upstreams reach
//     it; it keeps that set in step with the functions that have URLs and
//     deregisters everything on shutdown. With a mesh port (connect
//     enabled) the URL services are Connect-native at the gateway's mesh
//     listener instead; the gateway service stays on the plain listener and
//     is registered a second time (MeshService, ID "<id>:mesh", tag "mesh")
//     Connect-native at the mesh listener for mesh callers of the Invoke API.
//   - GatewayACLPolicy is the Consul ACL policy the gateway's token needs.
//   - Discovery answers discovery.Source from Consul's health endpoint
//     (passing instances of "nimbus-<fn>" tagged function=<fn> and
//     version=<v>) through blocking queries, cached per function version by a
//     discovery.Watcher.
//
// Both take small interfaces over the consul/api calls they use (*api.Agent,
// *api.Health satisfy them).
//
// URLFunctions turns a catalog snapshot into the registrar's URL set.
//
// It may import gateway/** (catalog, discovery), specs and driver/invokeapi
// from this module.
package consul
