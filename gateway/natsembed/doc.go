// Package natsembed runs the gateway's embedded NATS server with JetStream:
// one server per gateway process in dev mode (file store in the gateway's
// data dir, loopback listener), shared by every JetStream user in the
// process — the async queue's stream and the artifact store's object store
// — through in-process client connections. In a cluster the gateways use an
// external NATS cluster instead and this package is not involved.
//
// Access. Whoever can talk to this server can read and forge async events
// and replace artifacts, so every connection must authenticate, in-process
// ones included: the server requires a token (Config.Token). The gateway
// derives it from its cluster key (DeriveToken: HMAC-SHA256 of the key and
// a fixed label, so it is not the key and not an instance's invoke secret)
// or, without a key (`nimbus dev` without keys), makes a random one per
// process. The listener binds a loopback address only (Validate refuses any
// other host). It stays open rather than DontListen because `nimbus dev`
// users, benchmarks and tests publish to the queue from other clients:
// `nimbus dev` prints the URL with the token (Server.ClientURL) on its
// standard output, where the developer sees it, and never in its log; logs
// use Server.Addr, which carries no secret.
//
// It imports nothing from this module.
package natsembed
