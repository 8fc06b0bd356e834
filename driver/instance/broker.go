package instance

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/nimbus-fn/nimbus/driver/runtimeapi"
)

// env implements the Runtime API broker for its own runtime process.
var _ runtimeapi.Broker = (*env)(nil)

// Next implements runtimeapi.Broker: the first call ends init; each call
// after an invocation makes the environment free again.
func (e *env) Next(ctx context.Context) (*runtimeapi.Invocation, error) {
	e.mu.Lock()
	switch {
	case e.state == stateInitializing:
		e.initDone = true
		e.initDuration = timeSince(e.spawnedAt)
		// Only an invocation that waited for this init is a cold start;
		// environments warmed ahead of traffic (provisioned) report none,
		// as Lambda's provisioned REPORT lines carry no Init Duration.
		e.coldPending = e.inv != nil
		if e.initTimer != nil {
			e.initTimer.Stop()
		}
		e.log.Debug("environment initialised", "init_duration", e.initDuration)
	case e.state == stateDone:
	case e.state == stateIdle && e.parked == nil:
		// The runtime polls again after dropping a /next connection.
	case e.state == stateResetting:
		// The process is being killed (often a runtime racing a stop to
		// its next poll): hold the poll until it dies instead of answering
		// something the runtime would log as a failure.
		e.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	default:
		err := transitionError(e.state, stateIdle)
		e.mu.Unlock()
		return nil, err
	}
	if inv := e.inv; inv != nil && !inv.delivered {
		e.mustTransitionLocked(stateInvoking)
		e.deliverLocked(inv)
		ev := inv.event
		e.mu.Unlock()
		return &ev, nil
	}
	if e.state != stateIdle {
		e.mustTransitionLocked(stateIdle)
	}
	ch := make(chan *invocation, 1)
	e.parked = ch
	e.mu.Unlock()

	select {
	case inv := <-ch:
		ev := inv.event
		return &ev, nil
	case <-ctx.Done():
		e.mu.Lock()
		if e.parked == ch {
			e.parked = nil
		}
		e.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Respond implements runtimeapi.Broker. A caller that asked for streaming
// gets the body as it arrives; otherwise it is buffered up to MaxPayload.
func (e *env) Respond(id string, r *runtimeapi.Response) error {
	e.mu.Lock()
	inv, err := e.currentLocked(id, stateResponding)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	e.mustTransitionLocked(stateResponding)
	if !inv.streaming {
		e.mu.Unlock()
		return e.bufferResponse(inv, r)
	}
	pr, pw := io.Pipe()
	inv.pw = pw
	inv.final = make(chan report, 1)
	// Attach before handing out, so a caller that leaves at any point
	// closes the reader and never leaves the writer blocked.
	forward := inv.attachStream(pr)
	inv.result <- &outcome{contentType: r.ContentType, stream: pr, final: inv.final}
	e.mu.Unlock()
	return e.streamResponse(inv, pw, r, forward)
}

func (e *env) bufferResponse(inv *invocation, r *runtimeapi.Response) error {
	body, rerr := io.ReadAll(io.LimitReader(r.Body, runtimeapi.MaxPayload+1))
	e.drainOutput()
	e.mu.Lock()
	defer e.mu.Unlock()
	if inv.finished {
		// Timed out or killed while the body was arriving.
		return transitionError(e.state, stateDone)
	}
	if rerr != nil {
		// The connection broke mid-body; the process exit (or the
		// timeout) decides the invocation's answer.
		return rerr
	}
	e.mustTransitionLocked(stateDone)
	if len(body) > runtimeapi.MaxPayload {
		e.finishLocked(inv, functionError(plainErrorJSON("Function.ResponseSizeTooLarge",
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", runtimeapi.MaxPayload))))
		return runtimeapi.ErrPayloadTooLarge
	}
	if typ, eb := r.Trailer(); typ != "" {
		// A body that failed mid-way, for a caller that waited for all of it.
		e.finishLocked(inv, functionError(trailerErrorBody(typ, eb)))
		return nil
	}
	e.finishLocked(inv, &outcome{contentType: r.ContentType, body: body})
	return nil
}

func (e *env) streamResponse(inv *invocation, pw *io.PipeWriter, r *runtimeapi.Response, forward bool) error {
	buf := make([]byte, 32*1024)
	var rerr error
	var total int64
	for {
		n, err := r.Body.Read(buf)
		if total += int64(n); total > e.inst.maxStream {
			return e.streamTooLarge(inv)
		}
		if n > 0 && forward {
			if _, werr := pw.Write(buf[:n]); werr != nil {
				forward = false // the caller went away or the stream was cut; drain
			}
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	e.drainOutput()
	e.mu.Lock()
	defer e.mu.Unlock()
	if inv.finished {
		return transitionError(e.state, stateDone)
	}
	if rerr != nil {
		return rerr
	}
	e.mustTransitionLocked(stateDone)
	o := &outcome{}
	o.report.streamErrType, o.report.streamErrBody = r.Trailer()
	e.finishLocked(inv, o)
	return nil
}

// streamTooLarge ends a stream over the limit: the caller gets the error as
// trailers, the runtime a 413.
func (e *env) streamTooLarge(inv *invocation) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if inv.finished {
		return transitionError(e.state, stateDone)
	}
	e.mustTransitionLocked(stateDone)
	e.finishLocked(inv, functionError(plainErrorJSON("Function.ResponseSizeTooLarge",
		fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", e.inst.maxStream))))
	return runtimeapi.ErrPayloadTooLarge
}

// trailerErrorBody decodes a mid-stream error body (base64 JSON), falling
// back to a body built from the type.
func trailerErrorBody(typ, b64 string) []byte {
	if b, err := base64.StdEncoding.DecodeString(b64); err == nil && len(b) > 0 {
		return b
	}
	return plainErrorJSON(typ, typ)
}

// Error implements runtimeapi.Broker: the body goes to the caller
// unchanged; the environment stays up (Lambda does not reset on /error).
func (e *env) Error(id string, rep *runtimeapi.ErrorReport) error {
	e.drainOutput()
	e.mu.Lock()
	defer e.mu.Unlock()
	inv, err := e.currentLocked(id, stateDone)
	if err != nil {
		return err
	}
	if e.state != stateInvoking {
		// /error after response bytes started is refused.
		return transitionError(e.state, stateDone)
	}
	e.mustTransitionLocked(stateDone)
	e.finishLocked(inv, functionError(reportBody(rep)))
	return nil
}

func reportBody(rep *runtimeapi.ErrorReport) []byte {
	if len(rep.Body) > 0 {
		return rep.Body
	}
	typ := rep.Type
	if typ == "" {
		typ = "Runtime.Unknown"
	}
	return plainErrorJSON(typ, typ)
}

// InitError implements runtimeapi.Broker: allowed only during init. The
// error answers the pending (or next) invocation; the process is ended and
// init is retried by the invocation after that.
func (e *env) InitError(rep *runtimeapi.ErrorReport) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.transitionLocked(stateInitError); err != nil {
		return err
	}
	body := reportBody(rep)
	e.log.Warn("runtime reported an init error", "error", errorTypeOf(body))
	if inv := e.inv; inv != nil {
		e.finishLocked(inv, functionError(body))
	} else {
		e.initErr = body
	}
	e.reason = killInitError
	e.mustTransitionLocked(stateResetting)
	e.killLocked(sigKill)
	return nil
}

// RegisterExtension implements runtimeapi.Broker: extensions register
// during init only.
func (e *env) RegisterExtension(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stateInitializing {
		return transitionError(e.state, stateInitializing)
	}
	e.log.Debug("extension registered", "extension", name)
	return nil
}
