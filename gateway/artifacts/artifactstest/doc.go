// Package artifactstest opens a real artifact store for tests: an embedded
// JetStream server (gateway/natsembed) in the test's temporary directory,
// with the store's default configuration, shut down on test cleanup.
//
// Test support only: production packages must not import it. It may import
// gateway/**.
package artifactstest
