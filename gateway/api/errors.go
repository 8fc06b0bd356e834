package api

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Lambda's invocation error codes this gateway answers. Each has exactly one
// row in catalogue.
const (
	CodeResourceNotFound          = "ResourceNotFoundException"
	CodeTooManyRequests           = "TooManyRequestsException"
	CodeRequestEntityTooLarge     = "RequestEntityTooLargeException"
	CodeInvalidRequestContent     = "InvalidRequestContentException"
	CodeInvalidParameterValue     = "InvalidParameterValueException"
	CodeResourceConflict          = "ResourceConflictException"
	CodeService                   = "ServiceException"
	CodeResourceNotReady          = "ResourceNotReadyException"
	CodeMissingAuthToken          = "MissingAuthenticationTokenException"
	CodeIncompleteSignature       = "IncompleteSignatureException"
	CodeUnrecognizedClient        = "UnrecognizedClientException"
	CodeInvalidSignature          = "InvalidSignatureException"
	CodeAccessDenied              = "AccessDeniedException"
	CodeUnknownOperation          = "UnknownOperationException"
	CodeUnsupportedMediaType      = "UnsupportedMediaTypeException"
	CodeServiceUnavailable        = "ServiceUnavailableException"
	CodeRequestTooLargeModelled   = "RequestTooLargeException"
	CodeInvalidRuntime            = "InvalidRuntimeException"
	CodeRecursiveInvocation       = "RecursiveInvocationException"
	CodeSerializedRequestTooLarge = "SerializedRequestEntityTooLargeException"
)

// errorKind is one row of the catalogue: the HTTP status and the "Type"
// member (User: the caller's fault; Service: ours).
type errorKind struct {
	Status int
	Type   string
}

// catalogue is the single table of Lambda invocation errors → status and
// type, as the Lambda API reference and the SDK model's HTTP error traits give
// them.
var catalogue = map[string]errorKind{
	CodeResourceNotFound:          {http.StatusNotFound, "User"},
	CodeTooManyRequests:           {http.StatusTooManyRequests, "User"},
	CodeRequestEntityTooLarge:     {http.StatusRequestEntityTooLarge, "User"},
	CodeRequestTooLargeModelled:   {http.StatusRequestEntityTooLarge, "User"},
	CodeSerializedRequestTooLarge: {http.StatusRequestEntityTooLarge, "User"},
	CodeInvalidRequestContent:     {http.StatusBadRequest, "User"},
	CodeInvalidParameterValue:     {http.StatusBadRequest, "User"},
	CodeRecursiveInvocation:       {http.StatusBadRequest, "User"},
	CodeUnsupportedMediaType:      {http.StatusUnsupportedMediaType, "User"},
	CodeResourceConflict:          {http.StatusConflict, "User"},
	CodeService:                   {http.StatusInternalServerError, "Service"},
	CodeServiceUnavailable:        {http.StatusServiceUnavailable, "Service"},
	CodeResourceNotReady:          {http.StatusBadGateway, "Service"},
	CodeInvalidRuntime:            {http.StatusBadGateway, "User"},
	CodeMissingAuthToken:          {http.StatusForbidden, "User"},
	CodeIncompleteSignature:       {http.StatusBadRequest, "User"},
	CodeUnrecognizedClient:        {http.StatusForbidden, "User"},
	CodeInvalidSignature:          {http.StatusForbidden, "User"},
	CodeAccessDenied:              {http.StatusForbidden, "User"},
	CodeUnknownOperation:          {http.StatusNotFound, "User"},
}

// apiError is an invocation error on its way to the wire.
type apiError struct {
	Code    string
	Message string
	// Reason is TooManyRequestsException's reason.
	Reason     string
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// kind returns the catalogue row (unknown codes are service errors).
func (e *apiError) kind() errorKind {
	if k, ok := catalogue[e.Code]; ok {
		return k
	}
	return errorKind{http.StatusInternalServerError, "Service"}
}

// WriteError answers one of the catalogue's codes (the Code* constants)
// with message, in Lambda's wire shape; an unknown code is a
// ServiceException-like 500. For answers made outside the API's handlers
// (the server's connection layer).
func WriteError(w http.ResponseWriter, requestID, code, message string) {
	writeAPIError(w, requestID, &apiError{Code: code, Message: message})
}

// writeAPIError answers in the shape aws-sdk-go-v2's restJson1 decoder reads:
// x-amzn-ErrorType names the code, the JSON body carries Type and
// Message/message (and Reason for throttles), x-amzn-RequestId the request.
func writeAPIError(w http.ResponseWriter, requestID string, e *apiError) {
	k := e.kind()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", e.Code)
	if requestID != "" {
		h.Set("X-Amzn-Requestid", requestID)
	}
	body := map[string]string{"Type": k.Type}
	if e.Code == CodeTooManyRequests {
		// Lambda's throttle body uses the lower-case member name.
		body["message"] = e.Message
		if e.Reason != "" {
			body["Reason"] = e.Reason
		}
		setRetryAfter(h, e)
	} else {
		body["Message"] = e.Message
	}
	w.WriteHeader(k.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// setRetryAfter sends a throttle's RetryAfter as Retry-After in whole
// seconds (at least 1); a throttle without one gets none.
func setRetryAfter(h http.Header, e *apiError) {
	if e.Code != CodeTooManyRequests || e.RetryAfter <= 0 {
		return
	}
	secs := int(math.Ceil(e.RetryAfter.Seconds()))
	h.Set("Retry-After", strconv.Itoa(max(secs, 1)))
}
