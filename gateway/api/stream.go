package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/aws/smithy-go/eventstream"
	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
)

const (
	eventStreamContentType = "application/vnd.amazon.eventstream"
	// streamChunkSize bounds one PayloadChunk's payload.
	streamChunkSize = 32 * 1024
	// Event stream event types of InvokeWithResponseStreamResponseEvent.
	eventPayloadChunk   = "PayloadChunk"
	eventInvokeComplete = "InvokeComplete"
	// codeStreamBroken is InvokeComplete's ErrorCode when the instance's
	// response broke off before its end (the gateway lost the instance).
	codeStreamBroken = "ServiceException"
)

// invokeComplete is InvokeWithResponseStreamCompleteEvent's JSON payload.
type invokeComplete struct {
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorDetails string `json:"ErrorDetails,omitempty"`
	LogResult    string `json:"LogResult,omitempty"`
}

// eventWriter frames events onto a response and flushes each one, so the
// client sees a chunk as soon as the function wrote it.
type eventWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	enc *eventstream.Encoder
}

func newEventWriter(w http.ResponseWriter) *eventWriter {
	return &eventWriter{w: w, rc: http.NewResponseController(w), enc: eventstream.NewEncoder()}
}

// event writes one event message and flushes it.
func (ew *eventWriter) event(eventType, contentType string, payload []byte) error {
	var msg eventstream.Message
	msg.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue(eventType))
	msg.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
	msg.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue(contentType))
	msg.Payload = payload
	if err := ew.enc.Encode(ew.w, msg); err != nil {
		return err
	}
	if err := ew.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// complete writes the closing InvokeComplete event.
func (ew *eventWriter) complete(c invokeComplete) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return ew.event(eventInvokeComplete, "application/json", b)
}

// serveInvokeStream serves InvokeWithResponseStream. It answers with an
// event stream (application/vnd.amazon.eventstream): PayloadChunk events carry the
// function's response bytes as the instance forwards them, then one
// InvokeComplete event ends the stream, carrying a function error
// (ErrorCode, ErrorDetails) and the log tail (LogResult). Refusals before
// the stream starts (validation, not found, throttles, auth) are the
// catalogue's ordinary error answers; once the 200 is out, everything else
// travels in InvokeComplete.
//
// The frames are written with smithy-go's event stream encoder, the same
// package whose decoder aws-sdk-go-v2's Lambda client reads them with.
func (a *API) serveInvokeStream(w http.ResponseWriter, r *http.Request, rawLabel string) {
	requestID := uuid.NewString()
	fail := func(e *apiError) {
		a.logger.Debug("streaming invoke refused", "request_id", requestID, "code", e.Code, "error", e.Message)
		writeAPIError(w, requestID, e)
	}
	ref, body, apiErr := a.invokeRequest(r, rawLabel, "InvokeWithResponseStream")
	if apiErr != nil {
		fail(apiErr)
		return
	}
	invType := r.Header.Get(headerInvocationType)
	if invType != "" && invType != "RequestResponse" && invType != "DryRun" {
		fail(&apiError{Code: CodeInvalidParameterValue, Message: "1 validation error detected: Value '" + invType + "' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, DryRun]"})
		return
	}
	logType, clientContext, apiErr := invokeHeaders(r)
	if apiErr != nil {
		fail(apiErr)
		return
	}
	fn, res, apiErr := a.lookup(r.Context(), ref)
	if apiErr != nil {
		fail(apiErr)
		return
	}
	if body, apiErr = invokePayload(body); apiErr != nil {
		fail(apiErr)
		return
	}
	if invType == "DryRun" {
		w.Header().Set(headerRequestID, requestID)
		w.Header().Set("X-Amz-Executed-Version", res.Version)
		w.WriteHeader(http.StatusNoContent)
		return
	}

	t := target(fn, res)
	req := &invokeapi.Request{
		Payload:       body,
		ContentType:   "application/json",
		RequestID:     requestID,
		InvokedARN:    a.functionARN(fn.Name, ref.Qualifier),
		ClientContext: clientContext,
		TraceID:       r.Header.Get(headerTraceID),
		TenantID:      r.Header.Get(headerTenantID),
		LogTail:       logType == "Tail",
		Streaming:     true,
	}
	resp, err := a.invoker.Invoke(r.Context(), t, req)
	if err != nil {
		a.invokeFailed(w, r, t, requestID, err)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	h.Set(headerRequestID, requestID)
	h.Set("X-Amz-Executed-Version", res.Version)
	h.Set("Content-Type", eventStreamContentType)
	w.WriteHeader(http.StatusOK)
	ew := newEventWriter(w)
	logWriteErr := func(err error) {
		a.logger.Debug("writing response stream", "function", t.Function, "version", t.Version, "request_id", requestID, "error", err)
	}

	var done invokeComplete
	if resp.FunctionError != "" {
		// The function failed before it wrote anything: no payload, the
		// error in InvokeComplete.
		errBody, err := io.ReadAll(io.LimitReader(resp.Body, invokeapi.MaxPayload))
		if err != nil {
			done = invokeComplete{ErrorCode: codeStreamBroken, ErrorDetails: "reading the function's error: " + err.Error()}
		} else {
			done = functionErrorComplete("", errBody)
		}
	} else if err := forward(ew, resp.Body); err != nil {
		var we *writeError
		if errors.As(err, &we) || r.Context().Err() != nil {
			logWriteErr(err) // the client went away; nobody to tell
			a.record(t, resp)
			return
		}
		a.logger.Warn("function response stream broke", "function", t.Function, "version", t.Version, "request_id", requestID, "error", err)
		done = invokeComplete{ErrorCode: codeStreamBroken, ErrorDetails: "the function's response stream broke off: " + err.Error()}
	}
	rep := resp.Report()
	if done.ErrorCode == "" && rep.StreamErrType != "" {
		details, _ := base64.StdEncoding.DecodeString(rep.StreamErrBody)
		done = functionErrorComplete(rep.StreamErrType, details)
	}
	if req.LogTail {
		done.LogResult = resp.LogResult
		if done.LogResult == "" {
			done.LogResult = rep.LogResult
		}
	}
	if err := ew.complete(done); err != nil {
		logWriteErr(err)
	}
	a.record(t, resp)
}

// writeError marks a failure to write to the client (as opposed to a
// failure to read the function's response).
type writeError struct{ err error }

func (e *writeError) Error() string { return "writing to the client: " + e.err.Error() }

// forward copies the function's response into PayloadChunk events as it
// arrives: one event per read, so none is larger than streamChunkSize.
func forward(ew *eventWriter, src io.Reader) error {
	buf := make([]byte, streamChunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := ew.event(eventPayloadChunk, "application/octet-stream", buf[:n]); werr != nil {
				return &writeError{werr}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// functionErrorComplete describes a function error in InvokeComplete:
// ErrorCode is the error's type (the Runtime API's error type when the
// runtime named one, else the errorType of its JSON), ErrorDetails the
// error document as the function reported it.
func functionErrorComplete(errType string, body []byte) invokeComplete {
	if errType == "" {
		var doc struct {
			ErrorType string `json:"errorType"`
		}
		if json.Unmarshal(body, &doc) == nil {
			errType = doc.ErrorType
		}
	}
	if errType == "" {
		errType = invokeapi.FunctionErrorUnhandled
	}
	return invokeComplete{ErrorCode: errType, ErrorDetails: string(body)}
}
