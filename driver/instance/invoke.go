package instance

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/driver/runtimeapi"
)

// handler serves the invoke endpoint (driver/invokeapi).
func (in *Instance) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+invokeapi.PathInvoke, in.authed(in.serveInvoke))
	mux.HandleFunc("GET "+invokeapi.PathStatus, in.authed(in.serveStatus))
	mux.HandleFunc("POST "+invokeapi.PathWarm, in.authed(in.serveWarm))
	mux.HandleFunc("GET "+invokeapi.PathLogs, in.authed(in.serveLogs))
	mux.HandleFunc("GET "+invokeapi.PathHealth, in.serveHealth)
	return mux
}

func (in *Instance) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if in.mesh != nil && !in.mesh.authorize(w, r) {
			return
		}
		if s := in.cfg.InvokeSecret; s != "" {
			got, ok := strings.CutPrefix(r.Header.Get(invokeapi.HeaderAuthorization), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s)) != 1 {
				invokeapi.WriteError(w, invokeapi.CodeUnauthorized, "missing or wrong invoke secret")
				return
			}
		}
		h(w, r)
	}
}

func (in *Instance) serveHealth(w http.ResponseWriter, _ *http.Request) {
	if in.isClosing() {
		invokeapi.WriteError(w, invokeapi.CodeShuttingDown, "instance is shutting down")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

func (in *Instance) serveStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, in.Status())
}

func (in *Instance) serveWarm(w http.ResponseWriter, r *http.Request) {
	var req invokeapi.Warm
	if err := json.NewDecoder(io.LimitReader(r.Body, 64*1024)).Decode(&req); err != nil {
		invokeapi.WriteError(w, invokeapi.CodeBadRequest, "decoding warm request: "+err.Error())
		return
	}
	if in.isClosing() {
		invokeapi.WriteError(w, invokeapi.CodeShuttingDown, "instance is shutting down")
		return
	}
	in.warm(req.Environments)
	writeJSON(w, in.Status())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (in *Instance) serveInvoke(w http.ResponseWriter, r *http.Request) {
	payload, err := readPayload(r, invokeapi.MaxPayload)
	if err != nil {
		invokeapi.WriteError(w, invokeapi.CodeBadRequest, "reading event: "+err.Error())
		return
	}
	if len(payload) > invokeapi.MaxPayload {
		invokeapi.WriteError(w, invokeapi.CodeRequestTooLarge,
			"Request must be smaller than "+strconv.Itoa(invokeapi.MaxPayload)+" bytes for the InvokeFunction operation")
		return
	}
	h := r.Header
	var clientContext string
	if cc := h.Get(invokeapi.HeaderClientContext); cc != "" {
		b, err := base64.StdEncoding.DecodeString(cc)
		if err != nil {
			invokeapi.WriteError(w, invokeapi.CodeBadRequest, "client context is not valid base64: "+err.Error())
			return
		}
		clientContext = string(b)
	}
	var callerDeadline time.Time
	if d := h.Get(invokeapi.HeaderDeadline); d != "" {
		ms, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			invokeapi.WriteError(w, invokeapi.CodeBadRequest, "bad "+invokeapi.HeaderDeadline+": "+err.Error())
			return
		}
		callerDeadline = time.UnixMilli(ms)
	}
	id := h.Get(invokeapi.HeaderRequestID)
	if id == "" {
		id = uuid.NewString()
	}
	arn := h.Get(invokeapi.HeaderInvokedARN)
	if arn == "" {
		arn = "arn:aws:lambda:" + in.cfg.Region + ":" + in.cfg.AccountID + ":function:" + in.cfg.Function
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	inv := newInvocation(runtimeapi.Invocation{
		RequestID:       id,
		InvokedARN:      arn,
		TraceID:         h.Get(invokeapi.HeaderTraceID),
		ClientContext:   clientContext,
		CognitoIdentity: h.Get(invokeapi.HeaderCognitoIdentity),
		TenantID:        h.Get(invokeapi.HeaderTenantID),
		ContentType:     ct,
		Payload:         payload,
	}, h.Get(invokeapi.HeaderResponseMode) == invokeapi.ResponseModeStreaming, callerDeadline)

	switch err := in.acquire(inv); {
	case errors.Is(err, errNoIdle):
		invokeapi.WriteError(w, invokeapi.CodeNoIdleEnvironment, "every environment is busy")
		return
	case errors.Is(err, errClosing):
		invokeapi.WriteError(w, invokeapi.CodeShuttingDown, "instance is shutting down")
		return
	case err != nil:
		invokeapi.WriteError(w, invokeapi.CodeInternal, err.Error())
		return
	}

	var o *outcome
	select {
	case o = <-inv.result:
	case <-r.Context().Done():
		inv.abandon()
		return
	}
	if o.platform != "" {
		invokeapi.WriteError(w, o.platform, "instance stopped before the invocation ran")
		return
	}
	wantTail := h.Get(invokeapi.HeaderLogType) == invokeapi.LogTypeTail
	rh := w.Header()
	rh.Set(invokeapi.HeaderExecutedVersion, in.cfg.Version)
	rh.Set(invokeapi.HeaderRequestID, id)
	if o.stream != nil {
		in.writeStream(w, r, inv, o, wantTail)
		return
	}
	ct = o.contentType
	if ct == "" {
		ct = "application/json"
	}
	rh.Set("Content-Type", ct)
	if o.functionError {
		rh.Set(invokeapi.HeaderFunctionError, invokeapi.FunctionErrorUnhandled)
		// Every environment of an instance whose pull failed fails so.
		if code := oci.Reason(in.ImageFailure()); code != "" {
			rh.Set(invokeapi.HeaderImageFailure, code)
		}
	}
	setReport(rh, o.report, wantTail)
	rh.Set("Content-Length", strconv.Itoa(len(o.body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(o.body)
}

// readPayload reads an invoke request's body, up to limit+1 bytes (one
// more than allowed shows it is too large). When the caller sent its
// length, as the gateway's client does, the body lands in one buffer of
// that size: io.ReadAll grows its buffer by doubling, which for a
// megabytes-large event meant copying it several times over and leaving
// the copies to the collector on every invocation.
func readPayload(r *http.Request, limit int) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= int64(limit) {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
}

// writeStream forwards a streamed body chunk by chunk, then the report and
// any mid-stream error as trailers.
func (in *Instance) writeStream(w http.ResponseWriter, r *http.Request, inv *invocation, o *outcome, wantTail bool) {
	defer o.stream.Close()
	rh := w.Header()
	ct := o.contentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	rh.Set("Content-Type", ct)
	trailers := []string{invokeapi.HeaderDurationMs, invokeapi.HeaderBilledMs, invokeapi.HeaderInitMs,
		invokeapi.HeaderMemoryMB, invokeapi.HeaderMaxMemoryMB, invokeapi.HeaderColdStart, invokeapi.TrailerErrorType, invokeapi.TrailerErrorBody}
	if wantTail {
		trailers = append(trailers, invokeapi.HeaderLogResult)
	}
	rh.Set("Trailer", strings.Join(trailers, ", "))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 32*1024)
	for {
		n, err := o.stream.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				inv.abandon()
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			break
		}
	}
	var rep report
	select {
	case rep = <-o.final:
	case <-r.Context().Done():
		return
	}
	setReport(rh, rep, wantTail)
	if rep.streamErrType != "" {
		rh.Set(invokeapi.TrailerErrorType, rep.streamErrType)
		rh.Set(invokeapi.TrailerErrorBody, rep.streamErrBody)
	}
}

func setReport(h http.Header, r report, wantTail bool) {
	h.Set(invokeapi.HeaderDurationMs, fmtMs(r.duration))
	h.Set(invokeapi.HeaderBilledMs, strconv.FormatInt(r.billed.Milliseconds(), 10))
	h.Set(invokeapi.HeaderMemoryMB, strconv.Itoa(r.memoryMB))
	h.Set(invokeapi.HeaderMaxMemoryMB, strconv.FormatInt(r.maxMemoryMB, 10))
	h.Set(invokeapi.HeaderColdStart, strconv.FormatBool(r.coldStart))
	if r.coldStart {
		h.Set(invokeapi.HeaderInitMs, fmtMs(r.initDuration))
	}
	if wantTail {
		h.Set(invokeapi.HeaderLogResult, base64.StdEncoding.EncodeToString(r.logTail))
	}
}
