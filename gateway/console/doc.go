// Package console serves the web console and its session layer: the
// embedded single-page application at /console/ (assets.go, built by the
// npm project in web/ into dist/), the login sessions that let a browser
// use the gateway's API with a cookie instead of SigV4 (session.go), and the
// console's own read models: a bounded in-memory metrics history
// (history.go, added up over the cluster's gateways through Peers), the
// log tail fanned in from a function's instances with the recent lines
// the gateway keeps of instances that have gone (logs.go), saved test
// events (testevents.go) and the blueprint catalogue (blueprints.go).
//
// Sessions never open a back door: a session stands for one configured
// access key, and the gateway's one authentication point (sigv4.Verifier's
// Sessions hook) answers that key as the caller, so each route's scope
// checks apply as they do to a signed request. Every request with a session
// other than GET/HEAD must carry the session's CSRF token. The cookie's
// path is /console: the application reaches the gateway's routes through
// the GatewayPrefix mount, and no other path of the origin (a path-based
// function URL above all) is ever sent the cookie.
//
// It imports only gateway leaf packages (sigv4, discovery) and
// driver/invokeapi.
package console
