package esmapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/nimbus-fn/nimbus/gateway/sigv4"
)

// Lambda error codes this API answers, and their HTTP status. The wire shape
// is gateway/api's (errors.go there): X-Amzn-Errortype names the code, the
// JSON body is {"Type":"User"|"Service","Message":"…"}, X-Amzn-Requestid the
// request.
const (
	codeResourceNotFound      = "ResourceNotFoundException"
	codeInvalidParameterValue = "InvalidParameterValueException"
	codeInvalidRequestContent = "InvalidRequestContentException"
	codeResourceConflict      = "ResourceConflictException"
	codeRequestTooLarge       = "RequestEntityTooLargeException"
	codeService               = "ServiceException"
	codeAccessDenied          = "AccessDeniedException"
	codeUnknownOperation      = "UnknownOperationException"
)

var statusOf = map[string]int{
	codeResourceNotFound:      http.StatusNotFound,
	codeInvalidParameterValue: http.StatusBadRequest,
	codeInvalidRequestContent: http.StatusBadRequest,
	codeResourceConflict:      http.StatusConflict,
	codeRequestTooLarge:       http.StatusRequestEntityTooLarge,
	codeService:               http.StatusInternalServerError,
	codeAccessDenied:          http.StatusForbidden,
	codeUnknownOperation:      http.StatusNotFound,
}

// apiError is an error on its way to the wire.
type apiError struct {
	Code    string
	Message string
	// Status overrides the code's status (sigv4 codes carry their own).
	Status int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func invalid(msg string) *apiError { return &apiError{Code: codeInvalidParameterValue, Message: msg} }

func serviceError(err error) *apiError { return &apiError{Code: codeService, Message: err.Error()} }

// authError turns an Authorize failure into the answer gateway/api gives:
// a SigV4 failure keeps its code and status, anything else is
// AccessDeniedException (403).
func authError(err error) *apiError {
	var se *sigv4.Error
	if errors.As(err, &se) {
		return &apiError{Code: se.Code, Message: se.Message, Status: se.Status()}
	}
	return &apiError{Code: codeAccessDenied, Message: err.Error()}
}

func writeError(w http.ResponseWriter, requestID string, e *apiError) {
	status := e.Status
	if status == 0 {
		status = statusOf[e.Code]
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	typ := "User"
	if status >= 500 {
		typ = "Service"
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", e.Code)
	h.Set(headerRequestID, requestID)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": typ, "Message": e.Message})
}

const headerRequestID = "X-Amzn-Requestid"

func writeJSON(w http.ResponseWriter, status int, requestID string, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(headerRequestID, requestID)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
