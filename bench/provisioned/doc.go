// Package provisionedbench checks and measures provisioned concurrency in dev
// mode: the gateway (gateway/server) over the dev pool (gateway/local) over
// in-process instances (driver/local), with the real aws-lambda-go function
// internal/testfn/slowinit (200 ms of init work).
//
// The test shows that a provisioned instance is initialised before the first
// request (its first invocation reports no cold start and no Init Duration,
// and the function sees AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency)
// and that an invocation beyond provisioned capacity spills over to an
// on-demand instance and is counted in
// nimbus_provisioned_spillover_invocations_total.
//
// The benchmark sends one burst of concurrent clients at the same function
// twice in one run — once with provisioned concurrency covering the burst,
// once scaling from zero — and prints the cold-start rate and p50/p99
// latency of each, with their ratio.
//
// Test-only package: it may import gateway/**, driver/**, specs and
// internal/testfn.
package provisionedbench
