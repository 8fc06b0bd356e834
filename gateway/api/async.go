package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/queue"
)

// enqueue answers an Event invocation that passed validation: the payload
// limit, then a durable store, then 202 with the request id.
func (a *API) enqueue(w http.ResponseWriter, r *http.Request, function, qualifier, requestID string, body []byte) {
	if len(body) > queue.MaxEventSize {
		writeAPIError(w, requestID, &apiError{Code: CodeRequestEntityTooLarge,
			Message: strconv.Itoa(len(body)) + " byte payload is too large for the Event invocation type (limit " + strconv.Itoa(queue.MaxEventSize) + " bytes)"})
		return
	}
	err := a.opts.Async.Enqueue(r.Context(), queue.Event{
		RequestID: requestID, Function: function, Qualifier: qualifier, Payload: body,
		TraceID: r.Header.Get(headerTraceID), TenantID: r.Header.Get(headerTenantID),
	})
	switch {
	case errors.Is(err, queue.ErrQueueFull):
		writeAPIError(w, requestID, &apiError{Code: CodeTooManyRequests, Message: "Rate Exceeded. The asynchronous invocation queue is full.",
			Reason: "ConcurrentInvocationLimitExceeded", RetryAfter: time.Second})
		return
	case errors.Is(err, queue.ErrEventTooLarge):
		writeAPIError(w, requestID, &apiError{Code: CodeRequestEntityTooLarge, Message: "The Event invocation is too large: " + err.Error()})
		return
	case err != nil:
		a.logger.Warn("queueing event", "function", function, "request_id", requestID, "error", err)
		writeAPIError(w, requestID, &apiError{Code: CodeService, Message: "storing the event: " + err.Error()})
		return
	}
	w.Header().Set(headerRequestID, requestID)
	w.WriteHeader(http.StatusAccepted)
}
