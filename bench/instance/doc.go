// Package instancebench measures the instance's invoke path against
// baselines measured in the same run, in interleaved rounds so background
// load on a shared machine hits every path alike. BenchmarkTable (make
// bench) prints, per path, warm p50/p99 and single-client req/s, the ratio
// to the floor, and for paths through a platform process (the instance, the
// emulator, the out-of-process proxy) that process's CPU time per call:
//
//   - floor: httputil.ReverseProxy in front of a loopback echo, both in the
//     benchmark's process (the floor: two HTTP hops).
//   - floor, echo in its own process: what crossing one process boundary
//     adds to the same two hops.
//   - floor, proxy and echo own processes: the same process boundaries as
//     the instance path (caller → instance → function process).
//   - nimbus instance, aws-lambda-go echo: the instance as its own process
//     (a re-executed test binary, as under Nomad) running
//     internal/testfn/echo.
//   - nimbus instance, network none: the same, with the function's
//     network "none" (its own network namespace; the Runtime API listener
//     is opened inside it). Skipped where the sandbox is unavailable.
//   - nimbus instance, raw Go runtime loop: the same instance whose
//     bootstrap is a minimal GET /next + POST /response loop (this binary in
//     the "runtime" role): the instance's overhead without aws-lambda-go's.
//   - aws-lambda-rie: the AWS Runtime Interface Emulator (built from the
//     pinned tools/rie module; skipped with a message if it cannot be built)
//     running the same echo bootstrap.
//
// It also prints the cold start (spawn → first response) against the
// function's own init, and the instance process's RSS split into anonymous
// memory (its own) and executable pages (shared by every process of the
// binary). NIMBUS_BENCH_PROFILE=<prefix> makes the instance process write
// CPU, mutex, block and allocation profiles (<prefix>.cpu, …) of its life,
// e.g. with -bench=InstanceInvoke.
//
// Where the time goes (2 shared vCPUs; see the commit history for numbers):
// the in-process floor never leaves one Go runtime, so its hand-offs are
// goroutine switches. Each process boundary on this machine costs a thread
// wake-up in another process, which is what dominates: the floor with its
// echo in another process is 2–2.5× the floor, with the proxy in a third
// process 2.5–3.5×. The instance path has those same boundaries plus what
// the Runtime API protocol adds beyond two HTTP hops: the function's
// POST /response is answered (202) and followed by its next GET /next, so
// the instance parses three requests and writes three responses per
// invocation where a proxy handles two, and the function process runs
// again after answering, competing for the CPUs. The instance's own CPU per
// call is within about 1.3× of the ReverseProxy process's.
//
// Test-only package: it may import driver/**, internal/testfn.
package instancebench
