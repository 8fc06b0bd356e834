// Package submit registers compiled jobs with Nomad, plans them, scales
// their groups and removes them, through the small subset of *api.Jobs it
// declares (Jobs).
//
// Registering keeps the counts that their owners set on an existing job —
// the autoscaler's on the provisioned group, the gateway's on the ondemand
// group — so a deploy never resets running capacity.
//
// Tests run it against submittest, an httptest double of exactly the Nomad
// endpoints it calls; e2e/nomad_jobs_test.go runs it against a real agent.
//
// Imports: github.com/hashicorp/nomad/api, go-hclog, the standard library
// and, of this module, jobs (names only).
package submit
