package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/specs"
)

// Invoker runs one synchronous invocation (the router).
type Invoker interface {
	Invoke(ctx context.Context, t router.Target, req *invokeapi.Request) (*invokeapi.Response, error)
}

// Catalog finds the mapped function.
type Catalog interface {
	Function(ctx context.Context, name string) (*catalog.Function, error)
}

// Sender delivers on-failure records (destinations.Sender).
type Sender interface {
	Send(ctx context.Context, d *specs.Destination, m destinations.Message) error
}

// outcome of one invocation of a batch.
type outcome int

const (
	outcomeSuccess outcome = iota
	// outcomeFunctionError: the function ran and failed; counts as a retry.
	outcomeFunctionError
	// outcomeUnavailable: throttled, no capacity, function missing, a
	// platform error: retried until the records age out, never counted.
	outcomeUnavailable
	// outcomeTooLarge: the event is over the sync payload limit.
	outcomeTooLarge
)

// result is one invocation's answer.
type result struct {
	kind            outcome
	requestID       string
	statusCode      int
	executedVersion string
	functionError   string
	payload         []byte
	err             error
}

// invoke runs the function of the mapping once with event.
func (r *runner) invoke(ctx context.Context, event []byte) result {
	if len(event) > invokeapi.MaxPayload {
		return result{kind: outcomeTooLarge, err: fmt.Errorf("event of %d bytes is over the %d-byte limit", len(event), invokeapi.MaxPayload)}
	}
	fn, err := r.deps.Catalog.Function(ctx, r.m.Function)
	var res *catalog.Resolution
	if err == nil {
		res, err = fn.Resolve(r.m.qualifier(), nil)
	}
	if err != nil {
		return result{kind: outcomeUnavailable, statusCode: http.StatusNotFound, err: fmt.Errorf("resolving %s: %w", r.m.Function, err)}
	}
	rid := uuid.NewString()
	t := router.Target{Function: fn.Name, Version: res.Version, Reserved: fn.ReservedConcurrency(),
		EnvironmentsPerInstance: res.Spec.EnvironmentsPerInstance}
	req := &invokeapi.Request{Payload: event, ContentType: "application/json", RequestID: rid,
		InvokedARN: r.functionARN()}
	resp, err := r.deps.Invoker.Invoke(ctx, t, req)
	if err != nil {
		var te *router.ThrottleError
		var ie *invokeapi.Error
		switch {
		case errors.As(err, &te):
			r.deps.Metrics.gw().Throttle(fn.Name, te.Reason)
			return result{kind: outcomeUnavailable, requestID: rid, statusCode: http.StatusTooManyRequests, err: err}
		case errors.As(err, &ie) && ie.Code == invokeapi.CodeRequestTooLarge:
			return result{kind: outcomeTooLarge, requestID: rid, statusCode: http.StatusRequestEntityTooLarge, err: err}
		default:
			if ctx.Err() == nil {
				r.deps.Metrics.gw().PlatformError(fn.Name, res.Version)
			}
			return result{kind: outcomeUnavailable, requestID: rid, statusCode: http.StatusInternalServerError, err: err}
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, invokeapi.MaxPayload+1))
	resp.Body.Close()
	if err != nil {
		return result{kind: outcomeUnavailable, requestID: rid, statusCode: http.StatusInternalServerError, err: fmt.Errorf("reading the function's response: %w", err)}
	}
	rep := resp.Report()
	r.deps.Metrics.gw().Invocation(fn.Name, res.Version, resp.FunctionError != "", rep.Duration, rep.InitDuration, rep.ColdStart)
	r.deps.Metrics.gw().Billed(fn.Name, res.Version, rep.MemoryMB, rep.BilledMs)
	out := result{kind: outcomeSuccess, requestID: rid, statusCode: http.StatusOK, executedVersion: res.Version, payload: body}
	if resp.FunctionError != "" {
		out.kind, out.functionError = outcomeFunctionError, resp.FunctionError
	}
	return out
}

func (r *runner) functionARN() string {
	return "arn:aws:lambda:" + r.deps.Region + ":" + r.deps.AccountID + ":function:" + r.m.Function + ":" + r.m.qualifier()
}

// itemFailures reads a partial-batch response. ok is false when the
// response names no valid subset (Lambda then fails the whole batch): an
// empty or null itemIdentifier, an id not in the batch, or a body that is
// not the documented shape. An empty or null list, or an empty/null body,
// is full success.
func itemFailures(body []byte, recs []*Record) (failed map[string]bool, ok bool) {
	trimmed := bytesTrim(body)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, true
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(trimmed, &resp); err != nil {
		// Not an object (e.g. a string the function returned): Lambda
		// treats an unparseable partial response as success only when the
		// list is absent; a non-object is not a list, so success.
		var any json.RawMessage
		if json.Unmarshal(trimmed, &any) == nil && trimmed[0] != '{' {
			return nil, true
		}
		return nil, false
	}
	if len(resp.BatchItemFailures) == 0 {
		return nil, true
	}
	ids := make(map[string]bool, len(recs))
	for _, rec := range recs {
		ids[rec.ID] = true
	}
	failed = make(map[string]bool, len(resp.BatchItemFailures))
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == nil || *f.ItemIdentifier == "" || !ids[*f.ItemIdentifier] {
			return nil, false
		}
		failed[*f.ItemIdentifier] = true
	}
	return failed, true
}

func bytesTrim(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == '\n' || b[j-1] == '\r' || b[j-1] == '\t') {
		j--
	}
	return b[i:j]
}

// Failure conditions of the on-failure record.
const (
	ConditionRetriesExhausted  = "RetryAttemptsExhausted"
	ConditionRecordAgeExceeded = "RecordAgeExceeded"
	ConditionPayloadTooLarge   = "MaximumPayloadSizeExceeded"
)

// FailureRecord is the record a discarded batch sends to on_failure:
// Lambda's stream/Kafka shape, with the source's batch info under its key.
type FailureRecord struct {
	RequestContext  FailureRequestContext   `json:"requestContext"`
	ResponseContext *FailureResponseContext `json:"responseContext"`
	Version         string                  `json:"version"`
	Timestamp       string                  `json:"timestamp"`
	// BatchInfoKey and BatchInfo are written as one more member.
	BatchInfoKey string `json:"-"`
	BatchInfo    any    `json:"-"`
	// Reason says why in words (Nimbus addition: which limit, which error).
	Reason string `json:"reason,omitempty"`
}

// FailureRequestContext identifies the last invocation.
type FailureRequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionARN            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// FailureResponseContext is the last invocation's outcome (null when the
// batch was never invoked).
type FailureResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// MarshalJSON writes the record with the batch info member.
func (f FailureRecord) MarshalJSON() ([]byte, error) {
	type plain FailureRecord
	b, err := json.Marshal(plain(f))
	if err != nil || f.BatchInfoKey == "" {
		return b, err
	}
	info, err := json.Marshal(f.BatchInfo)
	if err != nil {
		return nil, err
	}
	key, _ := json.Marshal(f.BatchInfoKey)
	out := append(b[:len(b)-1:len(b)-1], ',')
	out = append(out, key...)
	out = append(out, ':')
	out = append(out, info...)
	return append(out, '}'), nil
}

// gw returns the gateway metric set (nil-safe).
func (m *Metrics) gw() *metrics.Metrics {
	if m == nil {
		return nil
	}
	return m.gateway
}
