package invokeapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Paths served by an instance.
const (
	// PathInvoke runs one invocation: POST, body = event payload.
	PathInvoke = "/nimbus/v1/invoke"
	// PathStatus reports environment accounting: GET, JSON Status.
	PathStatus = "/nimbus/v1/status"
	// PathHealth answers 200 while the instance accepts invocations (no auth;
	// used by Consul/Nomad health checks).
	PathHealth = "/nimbus/v1/health"
	// PathWarm starts environments ahead of traffic (provisioned concurrency):
	// POST with JSON Warm.
	PathWarm = "/nimbus/v1/warm"
)

// Request headers (gateway → instance).
const (
	// HeaderAuthorization carries "Bearer <secret>", the per-function secret.
	HeaderAuthorization = "Authorization"
	// HeaderRequestID is the invocation's request id (Lambda's AwsRequestId).
	// The instance generates one when it is absent.
	HeaderRequestID = "X-Nimbus-Request-Id"
	// HeaderInvokedARN is the ARN the caller used (qualified by version or alias, or not).
	HeaderInvokedARN = "X-Nimbus-Invoked-Function-Arn"
	// HeaderClientContext is the base64 client context, as in the Invoke API.
	HeaderClientContext = "X-Amz-Client-Context"
	// HeaderCognitoIdentity is the cognito identity JSON.
	HeaderCognitoIdentity = "X-Amz-Cognito-Identity"
	// HeaderTraceID is the X-Ray trace header.
	HeaderTraceID = "X-Amzn-Trace-Id"
	// HeaderTenantID is the tenant id (Lambda tenant isolation).
	HeaderTenantID = "X-Amz-Tenant-Id"
	// HeaderLogType "Tail" asks for X-Amz-Log-Result in the response.
	HeaderLogType = "X-Amz-Log-Type"
	// HeaderResponseMode "streaming" asks for the response body to be streamed as
	// the function writes it; anything else (or absent) is buffered.
	HeaderResponseMode = "X-Nimbus-Response-Mode"
	// HeaderDeadline optionally shortens the invocation's deadline: absolute Unix
	// epoch milliseconds. The function's own timeout still applies.
	HeaderDeadline = "X-Nimbus-Deadline-Ms"
)

// Response headers (instance → gateway) on a completed invocation (HTTP 200).
const (
	// HeaderFunctionError is "Unhandled" when the function failed; the body is
	// the error JSON.
	HeaderFunctionError = "X-Amz-Function-Error"
	// HeaderLogResult is base64 of the invocation log's last 4 KB (only with Tail).
	HeaderLogResult = "X-Amz-Log-Result"
	// HeaderExecutedVersion is the version that ran.
	HeaderExecutedVersion = "X-Amz-Executed-Version"
	// HeaderDurationMs, HeaderBilledMs, HeaderInitMs, HeaderMemoryMB,
	// HeaderMaxMemoryMB and HeaderColdStart describe the invocation as its
	// REPORT line does (HeaderMemoryMB is its Memory Size, what the
	// invocation is billed at). With a streamed response they arrive as
	// trailers.
	HeaderDurationMs  = "X-Nimbus-Duration-Ms"
	HeaderBilledMs    = "X-Nimbus-Billed-Duration-Ms"
	HeaderInitMs      = "X-Nimbus-Init-Duration-Ms"
	HeaderMemoryMB    = "X-Nimbus-Memory-Size-Mb"
	HeaderMaxMemoryMB = "X-Nimbus-Max-Memory-Used-Mb"
	HeaderColdStart   = "X-Nimbus-Cold-Start"
	// HeaderImageFailure is set with a function error that is the
	// instance's image failing to pull, not the function's: Lambda's
	// reason code for it (ImageDeleted, ImageAccessDenied, InvalidImage).
	// Only the instance sets it, so a function cannot fail itself; the
	// gateway records it as the function's State.
	HeaderImageFailure = "X-Nimbus-Image-Failure"
	// HeaderErrorCode names the platform error on a non-200 answer.
	HeaderErrorCode = "X-Nimbus-Error"
	// Streamed-response trailers, as the Runtime API names them.
	TrailerErrorType = "Lambda-Runtime-Function-Error-Type"
	TrailerErrorBody = "Lambda-Runtime-Function-Error-Body"
)

// Values.
const (
	FunctionErrorUnhandled = "Unhandled"
	LogTypeTail            = "Tail"
	ResponseModeStreaming  = "streaming"
	// MaxPayload is the largest event and buffered response (6 MB, Lambda's sync limit).
	MaxPayload = 6 * 1024 * 1024
	// MaxLogTail is how much of an invocation's log X-Amz-Log-Result carries.
	MaxLogTail = 4 * 1024
)

// Code names a platform (not function) error. Each has one HTTP status.
type Code string

// Platform error codes.
const (
	// CodeNoIdleEnvironment: every environment is busy; try another instance.
	CodeNoIdleEnvironment Code = "NoIdleEnvironment"
	// CodeUnauthorized: missing or wrong secret, or (Connect) no client
	// certificate from the service mesh.
	CodeUnauthorized Code = "Unauthorized"
	// CodeForbidden: (Connect) the caller's service identity is genuine
	// but Consul's intentions do not allow it to call the instance.
	CodeForbidden Code = "Forbidden"
	// CodeRequestTooLarge: the event is over MaxPayload.
	CodeRequestTooLarge Code = "RequestTooLarge"
	// CodeShuttingDown: the instance is stopping and takes no new work.
	CodeShuttingDown Code = "ShuttingDown"
	// CodeBadRequest: malformed request (e.g. bad client context base64).
	CodeBadRequest Code = "BadRequest"
	// CodeInternal: the instance failed in a way that is not the function's fault.
	CodeInternal Code = "Internal"
)

// Status returns the HTTP status for the code.
func (c Code) Status() int {
	switch c {
	case CodeNoIdleEnvironment, CodeShuttingDown:
		return http.StatusServiceUnavailable
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeRequestTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeBadRequest:
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// Sentinels for errors.Is on an *Error.
var (
	ErrNoIdleEnvironment = &Error{Code: CodeNoIdleEnvironment}
	ErrUnauthorized      = &Error{Code: CodeUnauthorized}
	ErrForbidden         = &Error{Code: CodeForbidden}
	ErrRequestTooLarge   = &Error{Code: CodeRequestTooLarge}
	ErrShuttingDown      = &Error{Code: CodeShuttingDown}
	ErrBadRequest        = &Error{Code: CodeBadRequest}
	ErrInternal          = &Error{Code: CodeInternal}
)

// Error is a platform error answered by an instance.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "instance: " + string(e.Code)
	}
	return fmt.Sprintf("instance: %s: %s", e.Code, e.Message)
}

// Is matches errors with the same Code, so errors.Is(err, ErrNoIdleEnvironment) works.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// Retryable reports whether another instance may succeed where this one refused.
func (e *Error) Retryable() bool {
	return e.Code == CodeNoIdleEnvironment || e.Code == CodeShuttingDown
}

// WriteError answers a platform error.
func WriteError(w http.ResponseWriter, code Code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderErrorCode, string(code))
	w.WriteHeader(code.Status())
	_ = json.NewEncoder(w).Encode(&Error{Code: code, Message: message})
}

// Status is an instance's environment accounting (GET PathStatus).
type Status struct {
	Function string `json:"function"`
	Version  string `json:"version"`
	// Max is the most environments this instance hosts.
	Max int `json:"max"`
	// Started counts environments whose process is running (idle, busy or initialising).
	Started int `json:"started"`
	// Idle counts environments ready to take an invocation now.
	Idle int `json:"idle"`
	// Busy counts environments running an invocation.
	Busy int `json:"busy"`
	// Initializing counts environments running their init phase.
	Initializing int `json:"initializing"`
	// InitializationType is "on-demand" or "provisioned-concurrency".
	InitializationType string `json:"initialization_type"`
	// Invocations is the count of invocations since start.
	Invocations uint64 `json:"invocations"`
	// ShuttingDown is true once the instance stopped taking work.
	ShuttingDown bool `json:"shutting_down"`
}

// Warm is the body of POST PathWarm: bring at least Environments environments
// through init (bounded by Max).
type Warm struct {
	Environments int `json:"environments"`
}
