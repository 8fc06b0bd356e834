package instance

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/runtimeapi"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
)

// memoryPoll is how often an environment's process group RSS is sampled
// when no cgroup enforces its memory limit.
const memoryPoll = 50 * time.Millisecond

// rssEvery is how often an invocation's end re-reads the RSS of a cgroup's
// processes for Max Memory Used (the cgroup's own peak is read every time).
const rssEvery = 100 * time.Millisecond

// rescanEvery is how many polls pass between scans of /proc for new members
// of an environment's process group (children the bootstrap started).
const rescanEvery = 20

// killReason records why the platform ended an environment's process.
type killReason int

const (
	killNone killReason = iota
	killTimeout
	killMemory
	killInitTimeout
	killInitError
	killStop
)

// env is one execution environment: a Runtime API listener (bound once, for
// the environment's life) and at most one bootstrap process at a time.
type env struct {
	inst   *Instance
	idx    int
	log    hclog.Logger
	tmpDir string
	// uid, gid and rootDir (isolated instances) are the environment's
	// identity and where its root is assembled; uidLease holds a leased uid.
	uid, gid uint32
	rootDir  string
	uidLease *uidLease
	// netns (network "none") is the environment's network namespace,
	// where its Runtime API listener was opened.
	netns *sandbox.NetNS
	// zyg (isolated, cgroup v1 or none) starts the environment's
	// bootstraps in its prepared sandbox; viaInit: the current process is
	// a sandbox init whose child is the bootstrap.
	zyg     *sandbox.Zygote
	viaInit bool
	ln      net.Listener
	srv     *http.Server
	addr    string
	closed  chan struct{} // closed when the instance stops
	// curTail is the running invocation's log tail (leaf; no lock needed).
	curTail atomic.Pointer[tailBuffer]
	// curRequest is the running invocation's request id, for the log
	// ring's lines (leaf; no lock needed).
	curRequest atomic.Pointer[string]
	// peak is the highest memory use (bytes) of the current process and
	// its children since it started (init included): the most of the
	// cgroup's peak and the RSS samples (see sampleMemoryLocked).
	peak atomic.Int64
	// pipes are the current process's output read ends; outBusy counts
	// output chunks read but not yet written to the tail and sinks.
	pipes   atomic.Pointer[[2]*os.File]
	outBusy atomic.Int32

	mu           sync.Mutex
	state        state
	inv          *invocation // assigned and not finished
	last         string      // request id of the last finished invocation
	parked       chan *invocation
	initErr      []byte // an init error waiting to answer the next invocation
	gen          int    // process generation
	pgid         int
	spawnedAt    time.Time
	initDone     bool
	initDuration time.Duration
	coldPending  bool
	initTimer    *time.Timer
	reason       killReason
	cg           *envCgroup
	mainRSS      *rssReader // the main process's statm, when cgRSS is nil
	cgRSS        *groupRSS  // the RSS of the processes in the current process's cgroup
	lastRSS      int64      // cgRSS's last sum, taken at rssAt
	rssAt        time.Time
	// cgV1 and spawner (cgroup v1 hosts) are the environment's cgroup and
	// the thread that forks its processes there; set at creation, never changed.
	cgV1      *envCgroup
	spawner   *spawner
	exited    chan struct{} // closed when the current process is gone
	stopWatch chan struct{}
}

// transitionLocked moves to next if the table allows it.
func (e *env) transitionLocked(next state) error {
	if !allowed(e.state, next) {
		return transitionError(e.state, next)
	}
	if e.log.IsTrace() { // boxing the states allocates even when not logged
		e.log.Trace("environment transition", "from", e.state, "to", next)
	}
	e.state = next
	return nil
}

// mustTransitionLocked is for transitions the caller has already checked.
func (e *env) mustTransitionLocked(next state) {
	if err := e.transitionLocked(next); err != nil {
		e.log.Error("lifecycle bug: refused internal transition", "error", err)
	}
}

// freeLocked reports whether the environment can take an invocation now
// (possibly after a spawn or the runtime's next /next), and how eager it is:
// lower is better.
func (e *env) freeLocked() (rank int, ok bool) {
	if e.inv != nil {
		return 0, false
	}
	switch e.state {
	case stateIdle:
		return 0, true
	case stateDone:
		return 1, true
	case stateInitializing:
		return 2, true
	case stateResetting:
		return 3, true
	case stateStopped:
		return 4, true
	}
	return 0, false
}

// assignLocked gives inv to the environment; the caller checked
// freeLocked. It reports whether a process must be spawned (call spawn).
func (e *env) assignLocked(inv *invocation) (spawn bool) {
	e.inv = inv
	if e.state != stateIdle || e.parked == nil {
		// Waiting for a spawn, an init or the runtime's next poll is bounded
		// too: a runtime that never polls again must not hold the caller.
		cfg := e.inst.cfg
		inv.timer = time.AfterFunc(cfg.InitTimeout+cfg.Timeout, func() { e.undelivered(inv) })
	}
	switch e.state {
	case stateResetting:
		// The dying process is not this invocation's: it gets a fresh one.
		inv.respawn = true
	case stateIdle:
		if e.parked != nil {
			e.mustTransitionLocked(stateInvoking)
			e.deliverLocked(inv)
			e.parked <- inv // buffered, fresh per park: never blocks
			e.parked = nil
		}
		// A runtime that dropped its /next gets inv when it polls again.
	case stateStopped:
		if e.initErr != nil {
			// The stored init error answers this invocation; init is
			// retried by the next one.
			body := e.initErr
			e.initErr = nil
			e.finishLocked(inv, &outcome{contentType: "application/json", functionError: true, body: body})
			return false
		}
		e.mustTransitionLocked(stateInitializing)
		return true
	}
	return false
}

// warmLocked starts an unused stopped environment ahead of traffic.
func (e *env) warmLocked() bool {
	if e.state != stateStopped || e.inv != nil || e.initErr != nil {
		return false
	}
	e.mustTransitionLocked(stateInitializing)
	return true
}

// deliverLocked hands inv to the runtime: the clock starts now.
func (e *env) deliverLocked(inv *invocation) {
	cfg := e.inst.cfg
	now := time.Now()
	deadline := now.Add(cfg.Timeout)
	if !inv.callerDeadline.IsZero() && inv.callerDeadline.Before(deadline) {
		deadline = inv.callerDeadline
	}
	inv.event.Deadline = deadline
	inv.delivered = true
	if inv.timer != nil {
		inv.timer.Stop()
	}
	inv.start = now
	inv.coldStart = e.coldPending
	inv.initDuration = e.initDuration
	e.coldPending = false
	e.curTail.Store(inv.tail)
	e.curRequest.Store(&inv.event.RequestID)
	e.inst.invocations.Add(1)
	line := []byte("START RequestId: " + inv.event.RequestID + " Version: " + cfg.Version + "\n")
	_, _ = inv.tail.Write(line)
	e.inst.stdout.TryWrite(line)
	e.inst.logs.add(invokeapi.StreamPlatform, inv.event.RequestID, string(line))
	inv.timer = time.AfterFunc(deadline.Sub(now), func() { e.timeout(inv) })
}

// finishLocked completes inv with o (or, for a stream already started, ends
// it and sends its report). Exactly one call per invocation does anything.
func (e *env) finishLocked(inv *invocation, o *outcome) {
	if inv.finished {
		return
	}
	inv.finished = true
	if inv.timer != nil {
		inv.timer.Stop()
	}
	if e.inv == inv {
		e.inv = nil
	}
	id := inv.event.RequestID
	e.last = id
	e.curTail.CompareAndSwap(inv.tail, nil)
	e.curRequest.CompareAndSwap(&inv.event.RequestID, nil)
	r := report{requestID: id, memoryMB: e.inst.cfg.MemoryMB, coldStart: inv.coldStart, initDuration: inv.initDuration}
	if inv.delivered {
		r.duration = time.Since(inv.start)
		r.billed = billed(r.duration)
		r.maxMemoryMB = reportMB(e.sampleMemoryLocked())
		lines := "END RequestId: " + id + "\n" + r.reportLine()
		_, _ = inv.tail.Write([]byte(lines))
		e.inst.stdout.TryWrite([]byte(lines))
		e.inst.logs.add(invokeapi.StreamPlatform, id, lines)
	}
	r.logTail = inv.tail.Bytes()
	if inv.pw != nil {
		// A stream is in progress: the caller already has its outcome.
		if o.functionError {
			r.streamErrType = errorTypeOf(o.body)
			r.streamErrBody = base64.StdEncoding.EncodeToString(o.body)
			inv.pw.CloseWithError(errors.New(r.streamErrType))
		} else {
			r.streamErrType, r.streamErrBody = o.report.streamErrType, o.report.streamErrBody
		}
		inv.final <- r
		_ = inv.pw.Close()
		return
	}
	o.report = r
	inv.result <- o
}

// sampleMemoryLocked returns the environment's peak memory in bytes,
// taking fresh samples: the cgroup's peak and the RSS of its processes (or,
// without a cgroup, of the main process; the watcher samples the group).
//
// A cgroup is charged for the anonymous memory its processes touch and the
// page cache they bring in, but not for file pages another cgroup brought
// in first: the bootstrap's own executable and libraries, read when the
// code was unpacked or built, are in its RSS and not in its cgroup. Max
// Memory Used, like Lambda's, must never be below the RSS, so it is the
// larger of the two.
func (e *env) sampleMemoryLocked() int64 {
	var p int64
	if e.cg != nil {
		p = e.cg.peak()
	}
	if e.cgRSS != nil {
		// The cgroup's peak is read every time and holds all anonymous
		// memory; the RSS adds file pages charged to another cgroup (the
		// executable and libraries), which barely move after init, so it
		// is re-read at most every rssEvery.
		if now := time.Now(); e.rssAt.IsZero() || now.Sub(e.rssAt) >= rssEvery || now.Before(e.rssAt) {
			e.cgRSS.rescanIfStale(now)
			e.lastRSS, e.rssAt = e.cgRSS.rss(), now
		}
		p = max(p, e.lastRSS)
	} else {
		if e.mainRSS == nil && e.viaInit && e.pgid > 0 {
			e.mainRSS = bootstrapRSS(e.pgid)
		}
		if e.mainRSS == nil {
			return e.raisePeak(p)
		}
		if rss, ok := e.mainRSS.rss(); ok {
			p = max(p, rss)
		}
	}
	return e.raisePeak(p)
}

// raisePeak records n as the peak if it is higher and returns the peak.
// The RSS watcher raises it concurrently.
func (e *env) raisePeak(n int64) int64 {
	for {
		p := e.peak.Load()
		if n <= p {
			return p
		}
		if e.peak.CompareAndSwap(p, n) {
			return n
		}
	}
}

// reportMB is Max Memory Used in whole MB, rounded up so that the figure
// is never below the bytes measured.
func reportMB(peak int64) int64 { return (peak + 1<<20 - 1) >> 20 }

func errorTypeOf(body []byte) string {
	var v struct {
		Type string `json:"errorType"`
	}
	if json.Unmarshal(body, &v) == nil && v.Type != "" {
		return v.Type
	}
	return "Runtime.Unknown"
}

// plainErrorJSON is an error body without the RequestId prefix.
func plainErrorJSON(errType, msg string) []byte {
	b, _ := json.Marshal(struct {
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}{msg, errType})
	return b
}

func functionError(body []byte) *outcome {
	return &outcome{contentType: "application/json", functionError: true, body: body}
}

// currentLocked returns the delivered invocation id names, or the Runtime
// API error for a call (moving to next) that names another one.
func (e *env) currentLocked(id string, next state) (*invocation, error) {
	if inv := e.inv; inv != nil && inv.delivered && inv.event.RequestID == id {
		if !allowed(e.state, next) {
			return nil, transitionError(e.state, next)
		}
		return inv, nil
	}
	if id != "" && id == e.last {
		return nil, transitionError(e.state, next)
	}
	return nil, runtimeapi.ErrInvalidRequestID
}
