package instance

import (
	"fmt"

	"github.com/nimbus-fn/nimbus/driver/runtimeapi"
)

// state is an execution environment's lifecycle state.
type state int

const (
	// stateStopped: no process. The next assignment spawns one.
	stateStopped state = iota
	// stateInitializing: the process runs its init phase (no /next yet).
	stateInitializing
	// stateIdle: the runtime is parked in /next with nothing assigned.
	stateIdle
	// stateInvoking: an invocation was handed out; awaiting /response or /error.
	stateInvoking
	// stateResponding: a /response body is being read (buffered or streamed).
	stateResponding
	// stateDone: the invocation has its answer; awaiting the runtime's next /next.
	stateDone
	// stateInitError: the runtime posted /init/error; awaiting its exit.
	stateInitError
	// stateResetting: the process was told to die; awaiting its exit.
	stateResetting
	// stateClosed: the instance is stopping; no process will be spawned again.
	stateClosed
)

var stateNames = [...]string{
	stateStopped:      "Stopped",
	stateInitializing: "Initializing",
	stateIdle:         "Idle",
	stateInvoking:     "Invoking",
	stateResponding:   "Responding",
	stateDone:         "Done",
	stateInitError:    "InitError",
	stateResetting:    "Resetting",
	stateClosed:       "Closed",
}

func (s state) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// transitions lists every allowed transition; everything else is refused.
var transitions = map[state][]state{
	// spawn for an invocation or a warm-up; or instance shutdown.
	stateStopped: {stateInitializing, stateClosed},
	// first /next (with or without an assigned invocation), /init/error,
	// a kill (init timeout, memory, shutdown), or the process exiting.
	stateInitializing: {stateIdle, stateInvoking, stateInitError, stateResetting, stateStopped},
	// an invocation assigned; a kill; the process exiting.
	stateIdle: {stateInvoking, stateResetting, stateStopped},
	// /response starts, /error or a buffered answer completes it, a kill
	// (timeout, memory, shutdown), or the process exiting.
	stateInvoking: {stateResponding, stateDone, stateResetting, stateStopped},
	// the body ended (or was refused), a kill, or the process exiting.
	stateResponding: {stateDone, stateResetting, stateStopped},
	// /next again (with or without a newly assigned invocation), a kill, an exit.
	stateDone:      {stateIdle, stateInvoking, stateResetting, stateStopped},
	stateInitError: {stateResetting, stateStopped},
	stateResetting: {stateStopped},
	stateClosed:    {},
}

func allowed(from, to state) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// transitionError is the Runtime API's 403 answer for a refused transition.
func transitionError(from, to state) error {
	return &runtimeapi.TransitionError{From: from.String(), To: to.String()}
}
