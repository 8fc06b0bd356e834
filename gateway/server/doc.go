// Package server assembles and runs one gateway: configuration checked
// before listening, the router over the injected discovery source and
// scaler, the API (Invoke API and function URLs), the async queue (NATS
// connected in Start, workers run by Serve and stopped before the router
// drains, the status API at /nimbus/v1/invocations/ and
// /nimbus/v1/functions/{fn}/invocations), a health endpoint,
// Prometheus /metrics, the artifact store at /nimbus/v1/artifacts/ (a
// JetStream object store on the NATS the async queue uses, collected when
// Deps names what is still referenced), reserved concurrency shared with
// the other gateways on an external NATS (gateway/slots, when
// concurrency_lease applies), registration hooks (Consul in a
// cluster) and a graceful shutdown that deregisters first and then drains
// in-flight invocations.
//
// Authentication. With access keys (always in cluster mode) every route
// refuses an unsigned request with Lambda's error shape (401/403), except
// these: `/metrics` and `/nimbus/health` are served without authentication,
// and so are artifact downloads (GET/HEAD /nimbus/v1/artifacts/<sha256>.zip),
// which Nomad clients' artifact blocks fetch by content hash with the
// checksum in the job. Function URLs follow their auth type (NONE is public,
// as on Lambda). The web console (gateway/console) is served at /console/
// with its session endpoints open; a console session is accepted wherever
// a signature is (the verifier's Sessions hook: the session stands for its
// access key, writes need its CSRF token), except by function URLs and
// artifact uploads, which take SigV4 only. With an external NATS the
// sessions live in a JetStream bucket every gateway shares. Server.Routes
// lists the route table; a test walks it.
//
// Client connections are bounded so that slow or idle clients cannot hold
// the gateway's descriptors and memory: at most max_connections are open
// (one over the cap is closed on accept), headers must arrive within
// read_header_timeout and a request body within read_body_timeout of its
// headers (artifact uploads: upload_timeout), idle keep-alive connections
// close after idle_timeout, and headers are capped at max_header_bytes. The
// body deadline is cleared once the body is read, so a response still lasts
// as long as the function runs (long invocations, streamed URL answers).
// Requests net/http refuses before any handler runs (a path such as /%zz,
// no Host header, oversized headers) are answered with Lambda's JSON error
// instead of net/http's plain text (conns.go).
//
// Listeners. Besides the plain HTTP listener, a tls block adds an HTTPS
// listener serving the same routes with certificate files re-read when they
// change (mesh.go: certFiles), and connect adds the mesh listener: mutual
// TLS with the leaves of Deps.Mesh's Source (the gateway's identity and one
// per "<fn>-url"), the destination taken from the caller's SNI (else Host
// and path, as on the plain listener), and every request authorized with
// Consul's intentions against that destination (403 in Lambda's URL error
// shape, or AccessDeniedException for the gateway's own API). With connect
// on, a cluster gateway's plain listener refuses function URLs (403 in the
// URL shape; refuseURLs) unless connect { plain_urls = true }: they are
// served where intentions apply (the mesh) or where the operator opened
// HTTPS on purpose (tls); `nimbus dev` serves them everywhere. All listeners
// share max_connections. See docs/mesh.md.
//
// Cluster and local adapters come in through Deps;
// the logic is the same in both modes.
//
// It may import gateway/**, specs, driver/invokeapi and mesh.
package server
