// Package versionstest is an httptest double of exactly the Nomad
// Variables endpoints the versions store's Nomad backend and the gateway's
// catalog call, with
// Nomad's check-and-set rules:
//
//	GET    /v1/var/<path>          read (404 when absent)
//	PUT    /v1/var/<path>?cas=N    create (N=0) or update at modify index N; 409 + current on conflict
//	DELETE /v1/var/<path>?cas=N    delete at modify index N; 409 + current on conflict
//	GET    /v1/vars?prefix=P       list metadata; with ?index=N a blocking query
//	                               (answers once a write passed N, or after ?wait=)
//
// Writes are validated as Nomad does (path at most 128 of a-z A-Z 0-9 - _
// ~ /, at least one item, 64 KiB in all). Any other request fails the test. It imports nothing of this module.
package versionstest
