// Package submittest is an httptest double of exactly the Nomad HTTP
// endpoints jobs/submit, the gateway's job catalog and on-demand scaler
// (gateway/nomad, gateway/cluster) and the provisioned status
// (jobs/apply.ProvisionedRunning) call, for tests that cannot run a real agent
// (e2e/nomad_jobs_test.go runs the real one when NOMAD_BINARY is set):
//
//	GET    /v1/jobs?prefix=&namespace=&meta=  job stubs (the gateway's
//	                             catalog), a blocking query with ?index=&wait=
//	GET    /v1/job/<id>          job info (404 "job not found")
//	PUT    /v1/job/<id>/plan     plan with diff
//	PUT    /v1/jobs              register (PreserveCounts honoured)
//	DELETE /v1/job/<id>?purge=   deregister
//	PUT    /v1/job/<id>/scale    scale a group within its scaling bounds
//	                             (JobModifyIndex checked when set)
//	GET    /v1/job/<id>/scale    scale status: counts and scaling events
//	GET    /v1/job/<id>/allocations  the allocations a test set (SetAllocations)
//	GET    /v1/job/<id>/evaluations  the evaluations a test set (SetEvaluations)
//	GET    /v1/var/<path>        read a variable (404 when missing)
//	PUT    /v1/var/<path>?cas=N  check-and-set write (409 + current on conflict)
//	DELETE /v1/var/<path>?cas=N  check-and-set delete
//
// It records every request so tests can assert paths, methods, query
// parameters and bodies; any other endpoint answers 404 and is recorded as
// unexpected. It imports nothing of this module.
package submittest
