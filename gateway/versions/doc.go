// Package versions keeps Lambda's publishing state: published function
// versions (immutable snapshots of $LATEST: code sha256 + configuration,
// numbered 1, 2, 3… and never reused), aliases (a version plus at most one
// additional version with a routing weight) and layer versions.
//
// One Store holds the logic; it runs on a Backend, a path → string-items
// map with check-and-set by modify index. In a cluster the backend is Nomad
// Variables under "nimbus/" (Raft-replicated, nothing else to run); in dev
// mode it is a directory of JSON files (Local). Local mode swaps the
// adapter, never the logic, and one contract suite runs against both (the
// Nomad side against an httptest double of exactly the /v1/var and /v1/vars
// endpoints used, and against a real agent when NOMAD_BINARY is set).
//
// Layout (both backends):
//
//	nimbus/functions/<fn>/counter          next, latest
//	nimbus/functions/<fn>/versions/<n>     spec, code_sha256, config_sha256, description, created
//	nimbus/functions/<fn>/aliases/<name>   version, routing (JSON), description, revision_id
//	nimbus/functions/<fn>/provisioned/<q>  requested, last_modified (a
//	                                       provisioned concurrency config of
//	                                       version or alias q)
//	nimbus/functions/<fn>/rollouts/<alias> record (rollout.Record JSON), status
//	nimbus/layers/<name>/counter           next, latest
//	nimbus/layers/<name>/versions/<n>      code_sha256, size, runtimes (JSON), architectures (JSON),
//	                                       license, description, created, deleted
//
// An alias's revision_id is a new uuid on every write; a write may require
// the alias to be absent (create) or at a given revision (Lambda's
// RevisionId precondition), checked and written in one check-and-set.
// Deleting a layer version marks it deleted: it is no longer listed or
// newly resolvable by name, while versions that pinned it keep running.
//
// Publishing allocates the number by a check-and-set on the counter, then
// creates the version entry (create-only): two publishers never share a
// number; a crash between the two steps skips a number, as Lambda may.
// Publishing an unchanged $LATEST (same code and configuration as the
// newest version) returns that version.
//
// Catalog overlays the store on a gateway catalog: aliases from the store
// (over the spec-declared ones) and, in dev mode, published versions as
// runnable specs. A provisioned concurrency config gives the version it
// names (an alias: its primary version) a provisioned_concurrency block with
// the config's floor, on a copy of that version's spec, so whatever runs
// versions from the catalog provisions exactly that version. In a cluster
// the gateway registers each version's job from Store.ProvisionedVersions,
// the same specs (Provision is the one place the block is made), so a
// config's put or delete changes the job's provisioned group floor (and
// nothing else of the job: jobs/apply.ApplyFloor).
//
// Lock rules: Local.mu is taken before the directory's flock and both are
// held only around one entry's read-check-write; Catalog.mu guards only the
// overlay map swap and is never held while reading the store.
//
// It may import gateway/**, specs and the rollout contract leaf from this
// module.
package versions
