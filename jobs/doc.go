// Package jobs compiles a function spec into Nomad jobs and renders them as
// jobspecs.
//
// Compile is a pure, deterministic function: the same function and Options
// always give the same *api.Job (byte-identical JSON), it does no I/O and
// calls no network. RenderHCL and RenderJSON turn a job into text that
// `nomad job run` (and `nomad job run -json`) accept unchanged. Registering
// jobs with a cluster lives in jobs/submit.
//
// Imports: the standard library, github.com/hashicorp/nomad/api, hcl/v2's
// hclwrite and go-cty, and of this module only specs, driver/taskconfig,
// driver/invokeapi and bundle.
package jobs
