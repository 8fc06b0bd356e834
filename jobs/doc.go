// Package jobs compiles a function spec into Nomad jobs and renders them as
// jobspecs.
//
// Compile is a pure, deterministic function: the same function and Options
// always give the same *api.Job (byte-identical JSON), it does no I/O and
// calls no network. RenderHCL and RenderJSON turn a job into text that
// `nomad job run` (and `nomad job run -json`) accept unchanged. Registering
// jobs with a cluster lives in jobs/submit.
//
// A compiled job holds no secret. The invoke secret lives in the job's own
// Nomad Variable (InvokeVariable: nomad/jobs/<job id>, which workload
// identity lets the job's tasks read), rendered by a template into the
// task's secrets dir (InvokeSecretFile) that the driver reads at start;
// a spec's `secret` blocks likewise become a template over the variables
// they name. The variable must exist before the job runs.
//
// Gateway builds the gateways' own service job (`nimbus render gateway`),
// just as pure: secrets in its Nomad Variable rendered by templates, the
// Nomad API through the Task API socket with the task's workload identity,
// no Nomad service (the gateway registers itself in Consul).
//
// Imports: the standard library, github.com/hashicorp/nomad/api, hcl/v2's
// hclwrite and go-cty, and of this module only specs, driver/taskconfig,
// driver/invokeapi and bundle.
package jobs
