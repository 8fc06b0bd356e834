package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/router"
)

// Invoke API request headers.
const (
	headerInvocationType = "X-Amz-Invocation-Type"
	headerLogType        = "X-Amz-Log-Type"
	headerClientContext  = "X-Amz-Client-Context"
	headerTenantID       = "X-Amz-Tenant-Id"
	headerRequestID      = "X-Amzn-Requestid"
	headerTraceID        = "X-Amzn-Trace-Id"
)

// maxClientContext is the largest X-Amz-Client-Context (base64 bytes).
const maxClientContext = 3583

// functionNamePattern is Invoke's FunctionName pattern, anchored: optional
// ARN prefix, region, account, "function:", the name and a qualifier.
var functionNamePattern = regexp.MustCompile(`^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?$`)

var qualifierPattern = regexp.MustCompile(`^[a-zA-Z0-9$_-]+$`)

// functionRef is a parsed FunctionName (+ Qualifier).
type functionRef struct {
	Name      string
	Qualifier string // "" = unqualified
	Region    string // from an ARN, "" if absent
	Account   string
}

// parseFunctionRef splits a FunctionName path label (already unescaped) and
// reconciles it with the ?Qualifier= parameter.
func parseFunctionRef(label, qualifier string) (*functionRef, *apiError) {
	if len(label) == 0 || len(label) > 170 {
		return nil, &apiError{Code: CodeInvalidParameterValue, Message: "1 validation error detected: Value '" + label + "' at 'functionName' failed to satisfy constraint: Member must have length between 1 and 170"}
	}
	var m []string
	if plainFunctionName(label) {
		// The common case, a bare name: every other part of the pattern
		// ends or starts with ":", so the whole label is the name group.
		m = make([]string, 10)
		m[7] = label
	} else {
		m = functionNamePattern.FindStringSubmatch(label)
	}
	if m == nil {
		return nil, &apiError{Code: CodeInvalidParameterValue, Message: "1 validation error detected: Value '" + label + "' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: " + functionNamePattern.String()}
	}
	ref := &functionRef{Name: m[7], Qualifier: m[9]}
	if m[3] != "" {
		ref.Region = m[3][:len(m[3])-1]
	}
	if m[5] != "" {
		ref.Account = m[5][:len(m[5])-1]
	}
	if len(ref.Name) > 64 {
		return nil, &apiError{Code: CodeInvalidParameterValue, Message: "1 validation error detected: Value '" + ref.Name + "' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64"}
	}
	if qualifier != "" {
		if len(qualifier) > 128 || !qualifierPattern.MatchString(qualifier) {
			return nil, &apiError{Code: CodeInvalidParameterValue, Message: "1 validation error detected: Value '" + qualifier + "' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"}
		}
		if ref.Qualifier != "" && ref.Qualifier != qualifier {
			return nil, &apiError{Code: CodeInvalidParameterValue, Message: "The derived qualifier from the function name does not match the specified qualifier."}
		}
		ref.Qualifier = qualifier
	}
	return ref, nil
}

// plainFunctionName reports whether label is only name characters
// ([a-zA-Z0-9-_.]), with no ARN parts or qualifier.
func plainFunctionName(label string) bool {
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return label != ""
}

// lookup finds the function and resolves its qualifier.
func (a *API) lookup(ctx context.Context, ref *functionRef) (*catalog.Function, *catalog.Resolution, *apiError) {
	notFound := &apiError{Code: CodeResourceNotFound, Message: "Function not found: " + a.functionARN(ref.Name, ref.Qualifier)}
	if (ref.Region != "" && ref.Region != a.opts.Region) || (ref.Account != "" && ref.Account != a.opts.AccountID) {
		return nil, nil, notFound
	}
	fn, err := a.catalog.Function(ctx, ref.Name)
	if errors.Is(err, catalog.ErrFunctionNotFound) {
		return nil, nil, notFound
	}
	if err != nil {
		return nil, nil, &apiError{Code: CodeService, Message: "reading the catalog: " + err.Error()}
	}
	res, err := fn.Resolve(ref.Qualifier, nil)
	if err != nil {
		return nil, nil, notFound
	}
	return fn, res, nil
}

// readBody reads at most invokeapi.MaxPayload bytes; over that it answers
// RequestEntityTooLargeException.
func readBody(r *http.Request, op string) ([]byte, *apiError) {
	tooLarge := &apiError{Code: CodeRequestEntityTooLarge,
		Message: "Request must be smaller than " + strconv.Itoa(invokeapi.MaxPayload) + " bytes for the " + op + " operation"}
	if r.ContentLength > invokeapi.MaxPayload {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, invokeapi.MaxPayload+1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, &apiError{Code: CodeInvalidRequestContent, Message: "The request body did not arrive within the gateway's read_body_timeout."}
	}
	if err != nil {
		return nil, &apiError{Code: CodeInvalidRequestContent, Message: "reading request body: " + err.Error()}
	}
	if len(b) > invokeapi.MaxPayload {
		return nil, tooLarge
	}
	return b, nil
}

func (a *API) serveInvoke(w http.ResponseWriter, r *http.Request, rawLabel string) {
	requestID := uuid.NewString()
	fail := func(e *apiError) {
		a.logger.Debug("invoke refused", "request_id", requestID, "code", e.Code, "error", e.Message)
		writeAPIError(w, requestID, e)
	}
	ref, body, apiErr := a.invokeRequest(r, rawLabel, "InvokeFunction")
	if apiErr != nil {
		fail(apiErr)
		return
	}
	invType := r.Header.Get(headerInvocationType)
	switch invType {
	case "", "RequestResponse", "DryRun":
	case "Event":
		if a.opts.Async == nil {
			fail(&apiError{Code: CodeInvalidParameterValue, Message: "InvocationType Event (asynchronous invocation) is not available on this gateway; use RequestResponse."})
			return
		}
	default:
		fail(&apiError{Code: CodeInvalidParameterValue, Message: "1 validation error detected: Value '" + invType + "' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"})
		return
	}
	logType, clientContext, apiErr := invokeHeaders(r)
	if apiErr != nil {
		fail(apiErr)
		return
	}
	fn, res, apiErr := a.lookup(r.Context(), ref)
	if apiErr != nil {
		if apiErr.Code == CodeResourceNotFound && (ref.Qualifier == "" || ref.Qualifier == catalog.Latest) {
			if pe := a.pendingConflict(r.Context(), ref.Name); pe != nil {
				apiErr = pe
			}
		}
		fail(apiErr)
		return
	}
	if body, apiErr = invokePayload(body); apiErr != nil {
		fail(apiErr)
		return
	}
	if invType == "Event" {
		a.enqueue(w, r, fn.Name, ref.Qualifier, requestID, body)
		return
	}
	if invType == "DryRun" {
		w.Header().Set(headerRequestID, requestID)
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
	ct := resp.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	if resp.FunctionError != "" {
		h.Set("X-Amz-Function-Error", resp.FunctionError)
	}
	if req.LogTail && resp.LogResult != "" {
		h.Set("X-Amz-Log-Result", resp.LogResult)
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, resp.Body); err != nil {
		a.logger.Warn("writing invoke response", "function", t.Function, "version", t.Version, "request_id", requestID, "error", err)
	}
	a.record(t, resp)
}

// record sends a finished invocation's accounting to the metrics.
func (a *API) record(t router.Target, resp *invokeapi.Response) {
	rep := resp.Report()
	a.metrics.Invocation(t.Function, t.Version, resp.FunctionError != "" || rep.StreamErrType != "", rep.Duration, rep.InitDuration, rep.ColdStart)
	a.metrics.Billed(t.Function, t.Version, rep.MemoryMB, rep.BilledMs)
}

// invokeFailed maps router and instance refusals onto the catalogue.
func (a *API) invokeFailed(w http.ResponseWriter, r *http.Request, t router.Target, requestID string, err error) {
	e := a.classify(t, err)
	if e == nil { // the client went away
		return
	}
	if e.Code != CodeTooManyRequests {
		a.logger.Warn("invocation failed", "function", t.Function, "version", t.Version, "request_id", requestID, "error", err)
	}
	writeAPIError(w, requestID, e)
}

// classify turns an Invoke error into an apiError (nil: client gone).
func (a *API) classify(t router.Target, err error) *apiError {
	var te *router.ThrottleError
	var ie *invokeapi.Error
	switch {
	case errors.As(err, &te):
		a.metrics.Throttle(t.Function, te.Reason)
		return &apiError{Code: CodeTooManyRequests, Message: te.Message, Reason: te.Reason, RetryAfter: te.RetryAfter}
	case errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		a.metrics.PlatformError(t.Function, t.Version)
		return &apiError{Code: CodeService, Message: "the invocation did not complete before the request deadline"}
	case errors.As(err, &ie) && ie.Code == invokeapi.CodeRequestTooLarge:
		return &apiError{Code: CodeRequestEntityTooLarge, Message: "Request must be smaller than " + strconv.Itoa(invokeapi.MaxPayload) + " bytes for the InvokeFunction operation"}
	case errors.As(err, &ie) && ie.Code == invokeapi.CodeBadRequest:
		return &apiError{Code: CodeInvalidParameterValue, Message: ie.Message}
	case errors.As(err, &ie) && (ie.Code == invokeapi.CodeForbidden || ie.Code == invokeapi.CodeUnauthorized):
		// The instance refused the gateway itself (a Consul intention
		// denies nimbus-gateway → nimbus-<fn>, or the invoke secret or
		// mesh identity is wrong): the operator's to fix, not the caller's.
		a.metrics.PlatformError(t.Function, t.Version)
		return &apiError{Code: CodeService, Message: "The function's execution environments refused this gateway: " + ie.Message}
	case errors.Is(err, router.ErrNoMeshIdentity):
		a.metrics.PlatformError(t.Function, t.Version)
		return &apiError{Code: CodeService, Message: err.Error()}
	case errors.As(err, new(*router.LaunchError)):
		// No environment can start (a broken build, a missing layer): the
		// function is not ready, as Lambda says of a function in Failed.
		a.metrics.PlatformError(t.Function, t.Version)
		return &apiError{Code: CodeResourceNotReady, Message: err.Error()}
	default:
		a.metrics.PlatformError(t.Function, t.Version)
		return &apiError{Code: CodeService, Message: "An error occurred while running the function: " + err.Error()}
	}
}

// checkClientContext validates X-Amz-Client-Context: at most 3,583 bytes of
// base64 that decodes to a JSON object.
func checkClientContext(s string) *apiError {
	bad := &apiError{Code: CodeInvalidParameterValue, Message: "Client context must be a valid Base64-encoded JSON object."}
	if len(s) > maxClientContext {
		return &apiError{Code: CodeInvalidParameterValue, Message: "Client context must be at most 3583 bytes of base64."}
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return bad
	}
	var obj map[string]any
	if json.Unmarshal(b, &obj) != nil {
		return bad
	}
	return nil
}

func jsonProblem(b []byte) string {
	var v any
	err := json.Unmarshal(b, &v)
	if err == nil {
		return "unknown error"
	}
	return fmt.Sprint(err)
}

// timeNow is the clock of event timestamps.
var timeNow = time.Now

// invokeHeaders checks the Invoke headers both invoke operations share:
// X-Amz-Log-Type and X-Amz-Client-Context.
func invokeHeaders(r *http.Request) (logType, clientContext string, e *apiError) {
	logType = r.Header.Get(headerLogType)
	if logType != "" && logType != "None" && logType != "Tail" {
		return "", "", &apiError{Code: CodeInvalidParameterValue, Message: "1 validation error detected: Value '" + logType + "' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]"}
	}
	clientContext = r.Header.Get(headerClientContext)
	if clientContext != "" {
		if e := checkClientContext(clientContext); e != nil {
			return "", "", e
		}
	}
	return logType, clientContext, nil
}

// invokePayload is the event to deliver: an invoke without payload
// delivers an empty JSON object, as Lambda does; anything else must be JSON.
func invokePayload(body []byte) ([]byte, *apiError) {
	if len(body) == 0 {
		return []byte("{}"), nil
	}
	if !json.Valid(body) {
		return nil, &apiError{Code: CodeInvalidRequestContent, Message: "Could not parse request body into json: " + jsonProblem(body)}
	}
	return body, nil
}

// invokeRequest reads and authenticates an invoke request (op names the
// operation in a too-large answer) and parses its function label.
func (a *API) invokeRequest(r *http.Request, rawLabel, op string) (*functionRef, []byte, *apiError) {
	label, err := url.PathUnescape(rawLabel)
	if err != nil {
		return nil, nil, &apiError{Code: CodeInvalidParameterValue, Message: "function name is not a valid percent-encoded path segment"}
	}
	body, e := readBody(r, op)
	if e != nil {
		return nil, nil, e
	}
	if _, e := a.authenticate(r, body); e != nil {
		return nil, nil, e
	}
	ref, e := parseFunctionRef(label, r.URL.Query().Get("Qualifier"))
	if e != nil {
		return nil, nil, e
	}
	return ref, body, nil
}
