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
// Repr-Digest. Nothing is served that does not hash to its address: a GET
// reads the whole object into a spool file (spool_dir) while hashing it
// and sends the first byte only once the sha256 matches; HEAD and a
// matching If-None-Match, which send no content, check the digest the
// object store recorded. A bundle replaced or corrupted in the object
// store (anyone with write access to the NATS system could do it, past
// the upload checks) answers 502 StoredBundleMismatch and is logged.
//
// GC deletes bundles no Referencer names and that are older than a grace
// period (an upload whose version record is not written yet survives).
//
// Lock rules: none; Store holds no mutable state besides JetStream's.
//
// It may import gateway/** from this module (nothing else).
package artifacts
