package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Paths of the Runtime API and the Extensions API, as the runtime sees them
// under http://$AWS_LAMBDA_RUNTIME_API.
const (
	PathNext              = "/2018-06-01/runtime/invocation/next"
	PathResponse          = "/2018-06-01/runtime/invocation/{id}/response"
	PathInvocationError   = "/2018-06-01/runtime/invocation/{id}/error"
	PathInitError         = "/2018-06-01/runtime/init/error"
	PathExtensionRegister = "/2020-01-01/extension/register"
	PathExtensionNext     = "/2020-01-01/extension/event/next"
)

// Headers on GET /next (platform → runtime).
const (
	HeaderRequestID       = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMs      = "Lambda-Runtime-Deadline-Ms"
	HeaderInvokedARN      = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID         = "Lambda-Runtime-Trace-Id"
	HeaderClientContext   = "Lambda-Runtime-Client-Context"
	HeaderCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	HeaderTenantID        = "Lambda-Runtime-Aws-Tenant-Id"
)

// Headers and trailers on the runtime's POSTs, and the extension headers.
const (
	HeaderResponseMode      = "Lambda-Runtime-Function-Response-Mode"
	HeaderErrorType         = "Lambda-Runtime-Function-Error-Type"
	HeaderErrorBody         = "Lambda-Runtime-Function-Error-Body"
	HeaderXRayErrorCause    = "Lambda-Runtime-Function-Xray-Error-Cause"
	HeaderExtensionName     = "Lambda-Extension-Name"
	HeaderExtensionID       = "Lambda-Extension-Identifier"
	ResponseModeStreaming   = "streaming"
	contentTypeJSON         = "application/json"
	errorTypeInvalidModeHdr = "Runtime.InvalidResponseModeHeader"
)

// MaxPayload is the Runtime API's limit on a buffered response or an error
// body: 6 MiB + 100 bytes, the value the Runtime Interface Emulator enforces
// and names in its 413 answer.
const MaxPayload = 6*1024*1024 + 100

// Errors a Broker returns; the server maps each to its exact HTTP answer.
var (
	// ErrInvalidRequestID: the id is not the environment's current invocation (400).
	ErrInvalidRequestID = errors.New("invalid request id")
	// ErrInvalidStateTransition: the call is not allowed in the current state
	// (403). Wrap it in a *TransitionError to name the states.
	ErrInvalidStateTransition = errors.New("state transition is not allowed")
	// ErrPayloadTooLarge: the body is over MaxPayload (413).
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrTruncated: the request body ended before its declared end (400).
	ErrTruncated = errors.New("http request detected as truncated")
	// ErrShuttingDown: the environment is being torn down (500; the runtime should exit).
	ErrShuttingDown = errors.New("environment shutting down")
)

// TransitionError is a refused lifecycle transition.
type TransitionError struct {
	From, To string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("State transition from %s to %s failed for runtime. Error: State transition is not allowed", e.From, e.To)
}

// Unwrap makes errors.Is(err, ErrInvalidStateTransition) true.
func (e *TransitionError) Unwrap() error { return ErrInvalidStateTransition }

// Invocation is what GET /next hands the runtime.
type Invocation struct {
	RequestID       string
	Deadline        time.Time
	InvokedARN      string
	TraceID         string
	ClientContext   string // JSON text, already base64-decoded
	CognitoIdentity string
	TenantID        string
	ContentType     string // of Payload; empty means application/json
	Payload         []byte
}

// Response is a POST /invocation/{id}/response in progress. The Broker reads
// Body (to buffer it or forward it as it arrives); reading past the end of a
// connection cut short returns ErrTruncated.
type Response struct {
	ContentType string
	// Streaming is true when the runtime declared
	// Lambda-Runtime-Function-Response-Mode: streaming. aws-lambda-go never
	// does, so the Broker decides buffering from the caller's mode.
	Streaming bool
	Body      io.Reader
	// Trailer returns the mid-stream error trailers (error type and base64
	// error body); only meaningful after Body returned io.EOF.
	Trailer func() (errorType, errorBody string)
}

// ErrorReport is a POST /invocation/{id}/error or /init/error.
type ErrorReport struct {
	// Type is the Lambda-Runtime-Function-Error-Type header (optional).
	Type        string
	ContentType string
	// Body is passed through to the caller unchanged.
	Body      []byte
	XRayCause string
}

// Broker is one execution environment's side of the Runtime API. The
// instance implements it; every method is called from the HTTP handler of
// the runtime's request.
type Broker interface {
	// Next blocks until an invocation is assigned to this runtime, ctx ends
	// (the runtime went away) or the call is refused.
	Next(ctx context.Context) (*Invocation, error)
	// Respond consumes a response body for requestID and returns once the
	// body has been read to its end (or refused).
	Respond(requestID string, r *Response) error
	// Error records the invocation's function error.
	Error(requestID string, e *ErrorReport) error
	// InitError records an init failure; it answers the next invocation.
	InitError(e *ErrorReport) error
	// RegisterExtension records an extension registered during init.
	RegisterExtension(name string) error
}

// FunctionInfo is echoed in the extension registration answer.
type FunctionInfo struct {
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	Handler         string `json:"handler"`
}

// Server is the Runtime API HTTP handler of one execution environment.
type Server struct {
	broker Broker
	info   FunctionInfo
	newID  func() string
	mux    *http.ServeMux
	// done ends blocked extension event/next calls when the environment goes away.
	done <-chan struct{}
}

// NewServer returns the handler for broker. newID generates extension
// identifiers; done, when closed, releases extensions blocked in event/next.
func NewServer(broker Broker, info FunctionInfo, newID func() string, done <-chan struct{}) *Server {
	s := &Server{broker: broker, info: info, newID: newID, done: done, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET "+PathNext, s.next)
	s.mux.HandleFunc("POST "+PathResponse, s.response)
	s.mux.HandleFunc("POST "+PathInvocationError, s.invocationError)
	s.mux.HandleFunc("POST "+PathInitError, s.initError)
	s.mux.HandleFunc("POST "+PathExtensionRegister, s.registerExtension)
	s.mux.HandleFunc("GET "+PathExtensionNext, s.extensionNext)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	inv, err := s.broker.Next(r.Context())
	if err != nil {
		if r.Context().Err() != nil {
			return // the runtime went away; nobody reads an answer
		}
		writeBrokerError(w, err)
		return
	}
	h := w.Header()
	ct := inv.ContentType
	if ct == "" {
		ct = contentTypeJSON
	}
	h.Set("Content-Type", ct)
	h.Set(HeaderRequestID, inv.RequestID)
	h.Set(HeaderDeadlineMs, strconv.FormatInt(inv.Deadline.UnixMilli(), 10))
	h.Set(HeaderInvokedARN, inv.InvokedARN)
	setIf(h, HeaderTraceID, inv.TraceID)
	setIf(h, HeaderClientContext, inv.ClientContext)
	setIf(h, HeaderCognitoIdentity, inv.CognitoIdentity)
	setIf(h, HeaderTenantID, inv.TenantID)
	h.Set("Content-Length", strconv.Itoa(len(inv.Payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.Payload)
}

func (s *Server) response(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	mode := r.Header.Get(HeaderResponseMode)
	if mode != "" && mode != ResponseModeStreaming {
		// The invocation fails; the runtime is told its header was wrong.
		body, _ := json.Marshal(errorBody{Message: "Invalid response mode header: " + mode, Type: errorTypeInvalidModeHdr})
		err := s.broker.Error(id, &ErrorReport{Type: errorTypeInvalidModeHdr, ContentType: contentTypeJSON, Body: body})
		if err != nil && !errors.Is(err, ErrInvalidStateTransition) {
			writeBrokerError(w, err)
			return
		}
		writeError(w, http.StatusBadRequest, "InvalidFunctionResponseMode", "Invalid function response mode")
		return
	}
	resp := &Response{
		ContentType: r.Header.Get("Content-Type"),
		Streaming:   mode == ResponseModeStreaming,
		Body:        truncationReader{r.Body},
		Trailer: func() (string, string) {
			return r.Trailer.Get(HeaderErrorType), r.Trailer.Get(HeaderErrorBody)
		},
	}
	if err := s.broker.Respond(id, resp); err != nil {
		writeBrokerError(w, err)
		return
	}
	writeAccepted(w)
}

func (s *Server) invocationError(w http.ResponseWriter, r *http.Request) {
	e, err := readErrorReport(r)
	if err != nil {
		writeBrokerError(w, err)
		return
	}
	if err := s.broker.Error(r.PathValue("id"), e); err != nil {
		writeBrokerError(w, err)
		return
	}
	writeAccepted(w)
}

func (s *Server) initError(w http.ResponseWriter, r *http.Request) {
	e, err := readErrorReport(r)
	if err != nil {
		writeBrokerError(w, err)
		return
	}
	if err := s.broker.InitError(e); err != nil {
		writeBrokerError(w, err)
		return
	}
	writeAccepted(w)
}

func (s *Server) registerExtension(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get(HeaderExtensionName)
	if name == "" {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "missing "+HeaderExtensionName)
		return
	}
	// The body lists subscribed events ({"events":null} from aws-lambda-go);
	// no events are ever sent, so it is read only to keep the connection reusable.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64*1024))
	if err := s.broker.RegisterExtension(name); err != nil {
		writeBrokerError(w, err)
		return
	}
	w.Header().Set(HeaderExtensionID, s.newID())
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(s.info)
}

// extensionNext blocks: registered extensions subscribe to no events here,
// and the environment is killed (SIGTERM, then SIGKILL) rather than sent SHUTDOWN.
func (s *Server) extensionNext(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(HeaderExtensionID) == "" {
		writeError(w, http.StatusForbidden, "Extension.MissingExtensionIdentifier", "missing "+HeaderExtensionID)
		return
	}
	select {
	case <-r.Context().Done():
	case <-s.done:
		writeError(w, http.StatusInternalServerError, "Extension.Shutdown", "environment shutting down")
	}
}

func readErrorReport(r *http.Request) (*ErrorReport, error) {
	body, err := io.ReadAll(io.LimitReader(truncationReader{r.Body}, MaxPayload+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxPayload {
		return nil, ErrPayloadTooLarge
	}
	return &ErrorReport{
		Type:        r.Header.Get(HeaderErrorType),
		ContentType: r.Header.Get("Content-Type"),
		Body:        body,
		XRayCause:   r.Header.Get(HeaderXRayErrorCause),
	}, nil
}

// truncationReader reports a body cut short as ErrTruncated.
type truncationReader struct{ r io.Reader }

func (t truncationReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%w: %w", ErrTruncated, err)
	}
	return n, err
}

type errorBody struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Message: msg, Type: typ})
}

func writeBrokerError(w http.ResponseWriter, err error) {
	var te *TransitionError
	switch {
	case errors.Is(err, ErrInvalidRequestID):
		writeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
	case errors.As(err, &te):
		writeError(w, http.StatusForbidden, "InvalidStateTransition", te.Error())
	case errors.Is(err, ErrInvalidStateTransition):
		writeError(w, http.StatusForbidden, "InvalidStateTransition", "State transition is not allowed")
	case errors.Is(err, ErrPayloadTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", MaxPayload))
	case errors.Is(err, ErrTruncated):
		writeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", "HTTP request detected as truncated")
	default:
		writeError(w, http.StatusInternalServerError, "Runtime.Unknown", err.Error())
	}
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func setIf(h http.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}
