// Package instance hosts one function version's execution environments: it
// serves the Lambda Runtime API (driver/runtimeapi) to 1..N bootstrap
// processes, runs each invocation in an idle environment, enforces timeout
// and memory limits, writes the environments' logs and START/END/REPORT
// lines, and serves the invoke endpoint (driver/invokeapi) to gateways.
//
// The same code runs under the Nomad driver (`nimbus-driver instance`),
// under the local launcher and in tests. Where the host allows (root on
// Linux) every environment runs in driver/sandbox — a uid of its own, its
// own mount and PID namespaces, a tmpfs /tmp — started through a zygote
// that prepares the sandbox once at Start (cgroup v1 or none) or a fresh
// init per process (cgroup v2, chosen from /proc/self/mountinfo when a
// cgroup2 hierarchy has the memory controller); elsewhere it runs
// unisolated and Start logs what is missing (Config.Isolation). With
// Config.Network "none" each environment also gets a network namespace of
// its own, where the instance opens its Runtime API listener; New refuses
// that network where environments cannot be sandboxed.
//
// Lock rules: Instance.mu guards the environment list and orders the
// shutdown flag's setting against acquire (the flag itself is atomic, so
// env.mu holders read it without Instance.mu); env.mu guards one environment's state, process and current
// invocation; invocation.mu guards a result hand-off. Order is
// Instance.mu → env.mu → invocation.mu, never the reverse. Methods named
// ...Locked must be called with env.mu held. No lock is held across a
// network write, a process wait or a channel operation that can block; the
// one wait under env.mu is process start (fork/exec on a dedicated thread).
// Channel sends under env.mu go to buffers sized for them (one result, one
// report, one parked poll per environment).
//
// An image function (Config.Image) pulls its image into the client's layer
// cache (driver/oci) at Start, before any environment, and keeps it pinned
// until Stop; its environments' root is the image's layers stacked read-only
// (driver/sandbox Plan.RootLayers) instead of the host's chroot_env binds.
// Image functions run only isolated: New refuses them elsewhere. A failed
// pull does not fail Start: every invocation answers with Lambda's error for
// it (ImageDeleted, ImageAccessDenied, InvalidImage) and the log says why.
//
// It may import the standard library, go-hclog, google/uuid, driver/invokeapi,
// driver/runtimeapi, driver/sandbox, driver/oci and (for managed runtimes) runtimes.
package instance
