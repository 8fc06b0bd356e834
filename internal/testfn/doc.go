// Package testfn builds the real aws-lambda-go functions under
// internal/testfn/<name> for tests and benchmarks into a directory laid out
// as Lambda's task root (an executable named "bootstrap"). Builds are kept
// in a cache keyed by the function's sources, go.mod, go.sum and the Go
// version (NIMBUS_TESTFN_CACHE, default <user cache dir>/nimbus-testfn),
// so every test process shares one copy; the directories are read-only
// by convention.
//
// The functions: echo (returns its event), error (handled error of type
// MyErr), panic, crash (exits mid-invoke with the event's code), sleep
// (sleeps the event's ms), initexit (exits with status 3 during init),
// large (a raw response of the event's byte count), ctxcheck (reports its
// context, lambdacontext and environment), stream (an io.Reader response
// gated by a file, optionally failing mid-stream), memhog (allocates the
// event's MB), sigterm (lambda.WithEnableSIGTERM), slowinit (sleeps
// SLOWINIT_MS, default 200, in init; reports its initialization type),
// batch (logs each event-source batch's payloads to BATCH_LOG and fails
// records containing "poison", by error or batchItemFailures) and stamp
// (logs each record with the time it arrived to STAMP_LOG, for
// bench/sources), escape (tries to leave its execution environment in
// every way the sandbox closes and reports what each attempt got), netprobe
// (reports its network interfaces, what dialling the event's addresses and
// resolving its name got) and logs
// (writes the event's "say" to stdout and "warn" to stderr, with the
// request id, for the log tail) and entrypoint (the AWS base images'
// /lambda-entrypoint.sh convention without a shell: the handler argument
// becomes _HANDLER, then it execs /var/runtime/bootstrap).
//
// It is test support only: production packages must not import it.
package testfn
