// Package functions keeps the $LATEST of functions managed through Lambda's
// management API: the configuration, the code bundle's sha256 and size, the
// revision id, and Lambda's state fields (State, LastUpdateStatus and their
// reasons). It is the one write path for a function's $LATEST: the API
// writes it, `nimbus deploy --endpoint` writes it through the API, and the
// gateway's catalog reads it.
//
// A function is one entry of the versions Backend, next to its published
// versions and aliases (gateway/versions):
//
//	nimbus/functions/<fn>/latest   spec, code_sha256, code_size, revision_id,
//	                               state…, role, last_modified
//
// Every write is one check-and-set Put of that entry, so a write is applied
// whole or not at all: a gateway killed mid-update leaves the old entry or
// the new one, never a mix. RevisionId changes on every write; a caller
// that names one gets ErrPrecondition when it is stale.
//
// Catalog overlays the store on a base catalog (the spec directory in dev
// mode, the Nomad jobs in a cluster): a function the store holds runs its
// stored $LATEST unless the base's spec of it was written later (last
// write wins).
//
// It may import gateway/** and specs from this module.
package functions
