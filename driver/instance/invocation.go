package instance

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/runtimeapi"
)

// invocation is one request from the invoke endpoint, from assignment to an
// environment until its outcome is handed back.
type invocation struct {
	event runtimeapi.Invocation // RequestID and fields for /next; Deadline set on delivery
	// callerDeadline, when non-zero, shortens the function timeout.
	callerDeadline time.Time
	streaming      bool
	tail           *tailBuffer

	// Fields below are guarded by the owning env's mu.
	delivered    bool // handed to the runtime (state went to Invoking)
	respawn      bool // assigned while the previous process was being reset
	finished     bool // outcome sent
	start        time.Time
	coldStart    bool
	initDuration time.Duration
	timer        *time.Timer
	pw           *io.PipeWriter // streaming body in progress
	final        chan report    // the stream's report, once it ended

	result chan *outcome // buffered 1; exactly one send

	mu   sync.Mutex // guards gone and pr
	gone bool       // the caller stopped waiting
	pr   *io.PipeReader
}

func newInvocation(ev runtimeapi.Invocation, streaming bool, callerDeadline time.Time) *invocation {
	return &invocation{
		event:          ev,
		streaming:      streaming,
		callerDeadline: callerDeadline,
		tail:           newTailBuffer(maxTail),
		result:         make(chan *outcome, 1),
	}
}

// abandon is called when the caller went away: a stream in progress is cut
// so the runtime's POST does not block on a reader that is gone.
func (inv *invocation) abandon() {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.gone = true
	if inv.pr != nil {
		_ = inv.pr.CloseWithError(fmt.Errorf("invoke caller went away"))
	}
}

// attachStream registers the reader of a stream; it reports false when the
// caller is already gone.
func (inv *invocation) attachStream(pr *io.PipeReader) bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.gone {
		return false
	}
	inv.pr = pr
	return true
}

// outcome is what the invoke endpoint answers with.
type outcome struct {
	// platform, when set, is a platform refusal instead of a function answer.
	platform      invokeapi.Code
	contentType   string
	functionError bool
	body          []byte // buffered body or error JSON
	// stream, when set, carries the body as the runtime writes it; final
	// receives the report once the stream ended.
	stream *io.PipeReader
	final  chan report
	report report
}

// report is the accounting of one invocation (the REPORT line).
type report struct {
	requestID    string
	duration     time.Duration
	billed       time.Duration
	memoryMB     int
	maxMemoryMB  int64
	initDuration time.Duration
	coldStart    bool
	// streamErrType and streamErrBody are a streamed response's mid-stream error.
	streamErrType string
	streamErrBody string
	logTail       []byte
}

func billed(d time.Duration) time.Duration {
	ms := math.Ceil(float64(d) / float64(time.Millisecond))
	if ms < 1 {
		ms = 1
	}
	return time.Duration(ms) * time.Millisecond
}

func fmtMs(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

// reportLine is Lambda's REPORT line (tab separated, trailing tab).
func (r report) reportLine() string {
	s := fmt.Sprintf("REPORT RequestId: %s\tDuration: %s ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
		r.requestID, fmtMs(r.duration), r.billed.Milliseconds(), r.memoryMB, r.maxMemoryMB)
	if r.coldStart {
		s += fmt.Sprintf("Init Duration: %s ms\t", fmtMs(r.initDuration))
	}
	return s + "\n"
}

// errorJSON is a platform-made function error body.
func errorJSON(errType, requestID, msg string) []byte {
	b, _ := json.Marshal(struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}{errType, "RequestId: " + requestID + " Error: " + msg})
	return b
}
