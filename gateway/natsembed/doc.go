// Package natsembed runs the gateway's embedded NATS server with JetStream:
// one server per gateway process in dev mode (file store in the gateway's
// data dir, loopback listener), shared by every JetStream user in the
// process — the async queue's stream and the artifact store's object store
// — through in-process client connections. In a cluster the gateways use an
// external NATS cluster instead and this package is not involved.
//
// It imports nothing from this module.
package natsembed
