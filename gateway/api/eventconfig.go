package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/specs"
)

// EventConfigs stores event-invoke configs set through the API (the async
// queue's KV bucket).
type EventConfigs interface {
	PutEventConfig(ctx context.Context, c *queue.EventConfig) error
	EventConfig(ctx context.Context, fn, qualifier string) (*queue.EventConfig, error)
	DeleteEventConfig(ctx context.Context, fn, qualifier string) error
	EventConfigs(ctx context.Context, fn string) ([]*queue.EventConfig, error)
}

// eventInvokeConfig is Lambda's FunctionEventInvokeConfig.
type eventInvokeConfig struct {
	FunctionArn              string             `json:"FunctionArn,omitempty"`
	LastModified             float64            `json:"LastModified,omitempty"`
	MaximumRetryAttempts     *int               `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int               `json:"MaximumEventAgeInSeconds,omitempty"`
	DestinationConfig        *destinationConfig `json:"DestinationConfig,omitempty"`
}

type destinationConfig struct {
	OnSuccess *onDestination `json:"OnSuccess,omitempty"`
	OnFailure *onDestination `json:"OnFailure,omitempty"`
}

type onDestination struct {
	Destination *string `json:"Destination,omitempty"`
}

// serveEventInvokeConfig answers Put/Update/Get/DeleteFunctionEventInvokeConfig
// (PUT, POST, GET, DELETE /2019-09-25/functions/{name}/event-invoke-config)
// and, with list, ListFunctionEventInvokeConfigs.
func (a *API) serveEventInvokeConfig(w http.ResponseWriter, r *http.Request, rawLabel string, list bool) {
	requestID := uuid.NewString()
	fail := func(e *apiError) { writeAPIError(w, requestID, e) }
	body, e := readBody(r, "PutFunctionEventInvokeConfig")
	if e != nil {
		fail(e)
		return
	}
	if _, e := a.authenticate(r, body); e != nil {
		fail(e)
		return
	}
	if a.opts.EventConfigs == nil {
		fail(&apiError{Code: CodeInvalidParameterValue, Message: "asynchronous invocation is not available on this gateway"})
		return
	}
	label, err := url.PathUnescape(rawLabel)
	if err != nil {
		fail(&apiError{Code: CodeInvalidParameterValue, Message: "function name is not a valid percent-encoded path segment"})
		return
	}
	ref, e := parseFunctionRef(label, r.URL.Query().Get("Qualifier"))
	if e != nil {
		fail(e)
		return
	}
	fn, res, e := a.lookup(r.Context(), ref)
	if e != nil {
		fail(e)
		return
	}
	qual := ref.Qualifier
	if qual == "" {
		qual = "$LATEST"
	}
	ctx := r.Context()
	store := a.opts.EventConfigs
	switch {
	case list && r.Method == http.MethodGet:
		cs, err := store.EventConfigs(ctx, fn.Name)
		if err != nil {
			fail(&apiError{Code: CodeService, Message: err.Error()})
			return
		}
		out := []*eventInvokeConfig{}
		for _, c := range cs {
			out = append(out, a.toWire(c))
		}
		writeJSON(w, requestID, map[string]any{"FunctionEventInvokeConfigs": out})
	case list:
		fail(&apiError{Code: CodeUnknownOperation, Message: "Unknown operation " + r.Method + " " + r.URL.Path})
	case r.Method == http.MethodGet:
		c, err := store.EventConfig(ctx, fn.Name, qual)
		if errors.Is(err, queue.ErrNoEventConfig) {
			if res.Spec.Async == nil {
				fail(&apiError{Code: CodeResourceNotFound, Message: "The function " + a.functionARN(fn.Name, qual) + " doesn't have an EventInvokeConfig"})
				return
			}
			c, err = &queue.EventConfig{Function: fn.Name, Qualifier: qual}, nil
		}
		if err != nil {
			fail(&apiError{Code: CodeService, Message: err.Error()})
			return
		}
		writeJSON(w, requestID, a.toWire(withSpec(c, res.Spec.Async)))
	case r.Method == http.MethodDelete:
		err := store.DeleteEventConfig(ctx, fn.Name, qual)
		if errors.Is(err, queue.ErrNoEventConfig) {
			fail(&apiError{Code: CodeResourceNotFound, Message: "The function " + a.functionARN(fn.Name, qual) + " doesn't have an EventInvokeConfig"})
			return
		}
		if err != nil {
			fail(&apiError{Code: CodeService, Message: err.Error()})
			return
		}
		w.Header().Set(headerRequestID, requestID)
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPut || r.Method == http.MethodPost:
		var in eventInvokeConfig
		if len(body) > 0 {
			if err := json.Unmarshal(body, &in); err != nil {
				fail(&apiError{Code: CodeInvalidRequestContent, Message: "Could not parse request body into json: " + err.Error()})
				return
			}
		}
		c := &queue.EventConfig{Function: fn.Name, Qualifier: qual}
		if r.Method == http.MethodPost { // Update merges into what is there
			old, err := store.EventConfig(ctx, fn.Name, qual)
			if errors.Is(err, queue.ErrNoEventConfig) {
				fail(&apiError{Code: CodeResourceNotFound, Message: "The function " + a.functionARN(fn.Name, qual) + " doesn't have an EventInvokeConfig"})
				return
			}
			if err != nil {
				fail(&apiError{Code: CodeService, Message: err.Error()})
				return
			}
			c = old
		}
		if e := a.fromWire(&in, c); e != nil {
			fail(e)
			return
		}
		if err := store.PutEventConfig(ctx, c); err != nil {
			fail(&apiError{Code: CodeService, Message: err.Error()})
			return
		}
		writeJSON(w, requestID, a.toWire(c))
	default:
		fail(&apiError{Code: CodeUnknownOperation, Message: "Unknown operation " + r.Method + " " + r.URL.Path})
	}
}

// withSpec fills what c leaves unset from the spec's async block.
func withSpec(c *queue.EventConfig, a *specs.AsyncConfig) *queue.EventConfig {
	if a == nil {
		return c
	}
	out := *c
	if out.MaxRetries == nil {
		n := a.MaxRetries
		out.MaxRetries = &n
	}
	if out.MaxEventAgeSeconds == nil {
		if d, err := time.ParseDuration(a.MaxEventAge); err == nil {
			n := int(d / time.Second)
			out.MaxEventAgeSeconds = &n
		}
	}
	if out.OnSuccess == nil {
		out.OnSuccess = a.OnSuccess
	}
	if out.OnFailure == nil {
		out.OnFailure = a.OnFailure
	}
	return &out
}

func (a *API) toWire(c *queue.EventConfig) *eventInvokeConfig {
	out := &eventInvokeConfig{
		FunctionArn:              a.functionARN(c.Function, c.Qualifier),
		MaximumRetryAttempts:     c.MaxRetries,
		MaximumEventAgeInSeconds: c.MaxEventAgeSeconds,
	}
	if !c.LastModified.IsZero() {
		out.LastModified = float64(c.LastModified.UnixMilli()) / 1000
	}
	dc := &destinationConfig{}
	if s := a.destinationString(c.OnSuccess); s != "" {
		dc.OnSuccess = &onDestination{Destination: &s}
	}
	if s := a.destinationString(c.OnFailure); s != "" {
		dc.OnFailure = &onDestination{Destination: &s}
	}
	if dc.OnSuccess != nil || dc.OnFailure != nil {
		out.DestinationConfig = dc
	}
	return out
}

// fromWire validates in and writes what it sets into c.
func (a *API) fromWire(in *eventInvokeConfig, c *queue.EventConfig) *apiError {
	if n := in.MaximumRetryAttempts; n != nil {
		if *n < 0 || *n > 2 {
			return &apiError{Code: CodeInvalidParameterValue, Message: "1 validation error detected: Value at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value between 0 and 2"}
		}
		c.MaxRetries = n
	}
	if n := in.MaximumEventAgeInSeconds; n != nil {
		if *n < 60 || *n > 21600 {
			return &apiError{Code: CodeInvalidParameterValue, Message: "1 validation error detected: Value at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 21600"}
		}
		c.MaxEventAgeSeconds = n
	}
	if dc := in.DestinationConfig; dc != nil {
		for _, x := range []struct {
			on  *onDestination
			dst **specs.Destination
		}{{dc.OnSuccess, &c.OnSuccess}, {dc.OnFailure, &c.OnFailure}} {
			if x.on == nil || x.on.Destination == nil {
				continue
			}
			d, e := a.parseDestination(*x.on.Destination)
			if e != nil {
				return e
			}
			*x.dst = d
		}
	}
	return nil
}

// parseDestination reads a destination: a Lambda function ARN of this
// gateway's region and account, or nimbus's nats:<subject>,
// kafka:<topic> and http(s) URLs. "" clears it.
func (a *API) parseDestination(s string) (*specs.Destination, *apiError) {
	if s == "" {
		return &specs.Destination{}, nil
	}
	if d, ok := destinations.Parse(s, "arn:aws:lambda:"+a.opts.Region+":"+a.opts.AccountID+":function:"); ok {
		return d, nil
	}
	return nil, &apiError{Code: CodeInvalidParameterValue, Message: "The destination " + s + " is not supported: use a Lambda function ARN in " +
		a.opts.Region + "/" + a.opts.AccountID + ", nats:<subject>, kafka:<topic> or an http(s) URL"}
}

func (a *API) destinationString(d *specs.Destination) string {
	return destinations.Format(d, a.functionARN)
}
