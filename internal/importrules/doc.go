// Package importrules holds the test that keeps ARCHITECTURE.md §5's import
// rules true: leaves import nothing from the module, driver/** sees only
// driver/** (and the embedded runtimes), gateway/** reaches instances only
// through driver/invokeapi, and only cmd/ and e2e/ wire across top-level
// folders. The rollout package is a leaf too (its Record is the contract
// the gateway stores and the CLI drives), and so is mesh (the Consul Connect
// identity, TLS and intentions code both driver/** and gateway/** use). It
// has no non-test code.
package importrules
