package instance

import (
	"runtime"
	"runtime/debug"
)

// Go runtime settings for a process that hosts one instance and nothing
// else (Run; `nimbus-driver instance`). The instance's work per invocation
// is a few socket reads and writes; measured with bench/instance on a
// 2-CPU host, the defaults cost more than they buy:
//
//   - GOMAXPROCS: with more than one P, every goroutine hand-off (invoke
//     handler → parked /next, response → invoke handler, log sink) wakes
//     an idle OS thread through a futex and lets it spin. One P per
//     envsPerProc environments keeps hand-offs on one thread while still
//     letting busy multi-environment instances use more cores. The
//     instance CPU per warm invoke dropped from about 210 to 150 µs.
//   - GOGC: the live heap is under 1 MB; the default 100 lets the heap
//     grow to the runtime's 4 MB minimum goal before collecting. 50 halves
//     that goal (RSS 14.5 → 12.4 MB) at no measurable latency cost; a
//     GOMEMLIMIT small enough to matter made the collector run back to
//     back.
//
// Settings the operator gave through GOMAXPROCS or GOGC are kept.
const (
	envsPerProc   = 4
	instanceGOGC  = 50
	gomaxprocsVar = "GOMAXPROCS"
	gogcVar       = "GOGC"
)

// procsFor is the GOMAXPROCS for an instance of n environments on a
// process allowed cpus CPUs.
func procsFor(n, cpus int) int {
	p := (n + envsPerProc - 1) / envsPerProc
	if p > cpus {
		p = cpus
	}
	if p < 1 {
		p = 1
	}
	return p
}

// tuneRuntime applies the settings above unless getenv names them.
func tuneRuntime(c *Config, getenv func(string) string) {
	if getenv(gomaxprocsVar) == "" {
		runtime.GOMAXPROCS(procsFor(c.Environments, runtime.GOMAXPROCS(0)))
	}
	if getenv(gogcVar) == "" {
		debug.SetGCPercent(instanceGOGC)
	}
}
