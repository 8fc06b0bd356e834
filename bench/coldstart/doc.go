// Package coldstartbench measures cold start from zero on a real Nomad
// agent: the whole path from a request to a function scaled to zero to its
// answer, through the cluster gateway (gateway/cluster + gateway/server),
// Nomad's scale API, placement, the nimbus task driver starting the
// instance, discovery (Consul health, or Nomad's own service catalog) and
// the gateway's readiness probe, to the aws-lambda-go function
// (internal/testfn/echo).
//
// It runs only when NOMAD_BINARY points at a nomad binary (and says so when
// it skips). For each service provider it makes N cold starts (default 20,
// COLDSTART_N to change), each after the gateway has scaled the function
// back to zero and Nomad has stopped its allocation, and prints p50/p90/p99
// of request → response with the parts Nomad records (request → scale
// event, scale → allocation created, allocation → task started, task
// started → response), the first-ever start of the job separately, and the
// warm invoke p50 measured in the same run. No timing is asserted.
//
// Test-only package: it may import anything.
package coldstartbench
