// Package instancebench measures the instance's invoke path against its
// baselines, measured in the same run: a plain loopback HTTP echo behind
// httputil.ReverseProxy (the floor: what any HTTP hop costs), and the AWS
// Runtime Interface Emulator running the same aws-lambda-go bootstrap (built
// from the pinned tools/rie module; skipped with a message if it cannot be
// built). BenchmarkTable prints warm p50/p99 and single-client throughput
// for each, the instance's cold start against the function's own init time,
// and the instance process's RSS. The instance runs as its own process (a
// re-executed test binary), as it does under Nomad.
//
// Test-only package: it may import driver/**, internal/testfn.
package instancebench
