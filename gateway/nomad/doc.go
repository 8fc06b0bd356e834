// Package nomad is the gateway's Nomad adapter:
//
//   - Catalog lists the function jobs ("nimbus-<fn>" for $LATEST,
//     "nimbus-<fn>-<n>" for published versions), decodes the canonical spec
//     from each job's "nimbus.spec" meta into catalog.Function values, and
//     reads the Nomad Variables under "nimbus/" generically; both are kept
//     current with blocking queries.
//   - Scaler sets a function version's "ondemand" group count through the
//     job scale API (PUT /v1/job/<id>/scale) with a message and meta saying
//     which gateway asked, and reads the group's scale status. Count reads
//     the count from the job (GET /v1/job/<id>) with its JobModifyIndex,
//     and SetIf writes only at that index (ErrConflict otherwise), so
//     gateways sharing a count never overwrite a change they did not see.
//   - Discovery answers discovery.Source from Nomad's native service
//     registrations (GET /v1/service/<name>) through blocking queries, as the
//     alternative to Consul health.
//
// The Catalog says when it cannot serve (CheckReady: no jobs listing yet,
// or its queries failing twice in a row; the gateway's health answers "not
// ready" with the reason) and lookups fail fast with ErrUnavailable naming
// the cause: before the first listing as soon as the query failed twice or
// after FirstListingWait, afterwards once the queries have failed for
// longer than MaxStale (until then the last listing answers). Each query
// is bounded (QueryTimeout), so a Nomad that never answers counts as
// failing.
//
// Each takes a small interface over the nomad/api calls it uses (*api.Jobs,
// *api.Variables, *api.Services satisfy them), so tests run against an
// httptest double of exactly those endpoints.
//
// It may import gateway/** (catalog, discovery), specs and driver/invokeapi
// from this module.
package nomad
