// Package nomad is the gateway's Nomad adapter:
//
//   - Catalog lists the function jobs ("nimbus-<fn>" for $LATEST,
//     "nimbus-<fn>-<n>" for published versions), decodes the canonical spec
//     from each job's "nimbus.spec" meta into catalog.Function values, and
//     reads the Nomad Variables under "nimbus/" generically; both are kept
//     current with blocking queries.
//   - Scaler sets a function version's "ondemand" group count through the
//     job scale API (PUT /v1/job/<id>/scale) with a message and meta saying
//     which gateway asked, and reads the group's scale status.
//   - Discovery answers discovery.Source from Nomad's native service
//     registrations (GET /v1/service/<name>) through blocking queries, as the
//     alternative to Consul health.
//
// Each takes a small interface over the nomad/api calls it uses (*api.Jobs,
// *api.Variables, *api.Services satisfy them), so tests run against an
// httptest double of exactly those endpoints.
//
// It may import gateway/** (catalog, discovery), specs and driver/invokeapi
// from this module.
package nomad
