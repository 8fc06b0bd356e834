// Package submit registers compiled jobs with Nomad, plans them, scales
// their groups and removes them, through the small subsets of *api.Jobs and
// *api.Variables it declares (Jobs, Variables).
//
// Compiled jobs hold no secrets: Register first writes the job's own Nomad
// Variable (nomad/jobs/<job id>, jobs.InvokeVariable) with check-and-set,
// then registers the job; Deregister removes the invoke secret from it
// again.
//
// Registering keeps the counts that their owners set on an existing job —
// the autoscaler's on the provisioned group, the gateway's on the ondemand
// group — so a deploy never resets running capacity.
//
// Tests run it against submittest, an httptest double of exactly the Nomad
// endpoints it calls (jobs and variables); e2e/nomad_jobs_test.go runs it
// against a real agent.
//
// Imports: github.com/hashicorp/nomad/api, go-hclog, the standard library
// and, of this module, jobs (names and paths only).
package submit
