// Package artifacts is the gateway's artifact store: content-addressed code
// and layer bundles (zip archives named by their sha256) kept in a NATS
// JetStream object store, so every gateway attached to the same NATS
// system — the embedded server in dev mode, a replicated NATS cluster in
// production — serves every bundle.
//
// Upload (PUT <Path><sha256>.zip) is authenticated by an injected
// Authorizer (the gateway passes its SigV4 verifier), bounded by
// MaxBundleBytes, and accepted only when the body is complete
// (Content-Length), hashes to the sha256 in the path and is a readable zip
// archive: a truncated or corrupted upload is rejected with 400 and nothing
// is stored. Uploading a bundle that is already stored is a no-op (dedupe).
// Download (GET/HEAD <Path><sha256>.zip) is what Nomad clients' artifact
// blocks fetch: unauthenticated (the address is the content's hash and the
// job carries the checksum go-getter verifies), with single byte ranges
// (Range: bytes=a-b), ETag and the digest in X-Nimbus-Sha256 and
// Repr-Digest. JetStream's object store checks its own SHA-256 of the
// chunks when a full object is read back, so silent storage corruption
// fails the read instead of serving bad bytes.
//
// GC deletes bundles no Referencer names and that are older than a grace
// period (an upload whose version record is not written yet survives).
//
// Lock rules: none; Store holds no mutable state besides JetStream's.
//
// It may import gateway/** from this module (nothing else).
package artifacts
