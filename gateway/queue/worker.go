package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/specs"
)

// Lambda's async defaults.
const (
	defaultMaxRetries  = 2
	defaultMaxEventAge = 6 * time.Hour
)

// outcome kinds of one attempt.
type outcome int

const (
	outcomeSuccess outcome = iota
	outcomeFunctionError
	outcomeThrottle // throttles and system errors: retried until max event age
)

// attempt is one invocation's result.
type attempt struct {
	kind            outcome
	statusCode      int
	executedVersion string
	functionError   string
	payload         []byte // function output or error JSON
	err             error  // throttle or system error
}

// handle runs one delivery of an event to the end: success, a scheduled
// retry, or a failure sent to the destinations. An event whose function
// has no free async slot on this gateway goes back to the queue at once
// (deferred), so a worker is never held by one function's backlog; once
// stopping is done, no invocation starts and the event goes back as well.
func (q *Queue) handle(ctx context.Context, stopping <-chan struct{}, msg jetstream.Msg) {
	if isDone(stopping) {
		_ = msg.Nak()
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		q.logger.Error("event without JetStream metadata; dropping", "error", err)
		_ = msg.Term()
		return
	}
	h := msg.Headers()
	subj := msg.Subject()
	rid := subj[lastDot(subj)+1:]
	ev := Event{RequestID: rid, Function: h.Get(hdrFunction), Qualifier: h.Get(hdrQualifier),
		Payload: msg.Data(), TraceID: h.Get(hdrTraceID), TenantID: h.Get(hdrTenantID)}
	log := q.logger.With("function", ev.Function, "request_id", rid)

	st := &Status{RequestID: rid, Function: ev.Function, Qualifier: ev.Qualifier, EnqueuedAt: meta.Timestamp.UTC()}
	// The status is read only once the event is sure to be worked on: a
	// deferred event costs no status read.
	loadStatus := func() {
		if meta.NumDelivered <= 1 {
			return
		}
		if prev, err := q.getStatus(ctx, ev.Function, rid); err == nil {
			st = prev
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			log.Warn("reading invocation status; counting attempts from zero", "error", err)
		}
	}

	fn, err := q.deps.Catalog.Function(ctx, ev.Function)
	var res *catalog.Resolution
	if err == nil {
		res, err = fn.Resolve(ev.Qualifier, nil)
	}
	if err != nil {
		if ctx.Err() != nil {
			_ = msg.Nak()
			return
		}
		if !errors.Is(err, catalog.ErrFunctionNotFound) && !errors.Is(err, catalog.ErrQualifierNotFound) {
			// The catalog cannot answer now (its source is unreachable):
			// the event waits in the queue, like after a throttle.
			delay := q.throttleDelay(int(min(meta.NumDelivered, 32)))
			log.Warn("reading the catalog for a queued event; retrying later", "error", err, "delay", delay)
			if err := msg.NakWithDelay(delay); err != nil {
				log.Warn("deferring an event; JetStream redelivers after ack_wait", "error", err)
			}
			return
		}
		// The function (or its qualifier) is gone: nothing can run it and no
		// async config is left to say where failures go.
		log.Warn("function of a queued event is gone; dropping the event", "error", err)
		loadStatus()
		st.State, st.Error = StateFailed, err.Error()
		q.putStatus(ctx, st)
		q.metrics.finished.WithLabelValues(ev.Function, StateFailed).Inc()
		_ = msg.Ack()
		return
	}
	ac := asyncConfig(res.Spec)
	if over, err := q.workerEventConfig(ctx, ev.Function, ev.Qualifier); err == nil {
		ac = over.apply(ac)
	} else if !errors.Is(err, ErrNoEventConfig) {
		log.Warn("reading the event invoke config; using the spec's", "error", err)
	}
	age := q.now().Sub(meta.Timestamp)
	reserved := fn.ReservedConcurrency()

	switch {
	case age > ac.maxAge:
		loadStatus()
		q.fail(ctx, msg, log, ev, st, ac, ConditionEventAgeExceeded, nil)
		return
	case reserved != nil && *reserved == 0:
		// Lambda: with reserved concurrency 0, events go straight to the
		// failure targets without retries.
		loadStatus()
		q.fail(ctx, msg, log, ev, st, ac, ConditionRetriesExhausted,
			&attempt{kind: outcomeThrottle, statusCode: http.StatusTooManyRequests, err: errors.New("reserved concurrency is 0")})
		return
	}

	limit := q.deps.Limits.UnreservedLimit()
	if reserved != nil {
		limit = *reserved
	}
	release, ok := q.tryAcquire(ev.Function, limit)
	if !ok {
		q.metrics.deferred.WithLabelValues(ev.Function).Inc()
		if err := msg.NakWithDelay(q.busyDelay(meta.NumDelivered)); err != nil {
			log.Warn("deferring an event of a busy function; JetStream redelivers after ack_wait", "error", err)
		}
		return
	}
	if isDone(stopping) {
		release()
		_ = msg.Nak()
		return
	}
	loadStatus()
	st.State = StateRunning
	st.Attempts++
	st.NextAttemptAt = time.Time{}
	q.putStatus(ctx, st)

	stopBeat := q.heartbeat(msg)
	a := q.invoke(ctx, fn, res, ev)
	stopBeat()
	release()

	if ctx.Err() != nil && a.kind != outcomeSuccess {
		// Shutting down mid-invocation: give the event back untouched.
		st.State = StateQueued
		st.Attempts--
		q.putStatus(context.Background(), st)
		_ = msg.Nak()
		return
	}
	ctx = context.WithoutCancel(ctx) // finish what was started
	st.StatusCode, st.ExecutedVersion, st.FunctionError = a.statusCode, a.executedVersion, a.functionError
	switch a.kind {
	case outcomeSuccess:
		st.Error = ""
		q.succeed(ctx, msg, log, ev, st, ac, a)
	case outcomeFunctionError:
		st.Error = string(a.payload)
		st.LastResponse = jsonOrString(a.payload)
		if st.Retries >= ac.maxRetries {
			q.fail(ctx, msg, log, ev, st, ac, ConditionRetriesExhausted, &a)
			return
		}
		st.Retries++
		q.metrics.retries.WithLabelValues(ev.Function, "function_error").Inc()
		delay := q.cfg.RetryDelaysD[min(st.Retries-1, len(q.cfg.RetryDelaysD)-1)]
		q.retry(ctx, msg, log, st, meta.Timestamp.Add(ac.maxAge), delay)
	case outcomeThrottle:
		st.Error = a.err.Error()
		st.Throttles++
		q.metrics.retries.WithLabelValues(ev.Function, "throttle").Inc()
		q.retry(ctx, msg, log, st, meta.Timestamp.Add(ac.maxAge), q.throttleDelay(st.Throttles))
	}
}

// invoke runs one attempt through the router.
func (q *Queue) invoke(ctx context.Context, fn *catalog.Function, res *catalog.Resolution, ev Event) attempt {
	t := router.Target{Function: fn.Name, Version: res.Version, Reserved: fn.ReservedConcurrency(),
		EnvironmentsPerInstance: res.Spec.EnvironmentsPerInstance}
	req := &invokeapi.Request{
		Payload: ev.Payload, ContentType: "application/json", RequestID: ev.RequestID,
		InvokedARN: q.functionARN(fn.Name, ev.Qualifier), TraceID: ev.TraceID, TenantID: ev.TenantID,
	}
	resp, err := q.deps.Invoker.Invoke(ctx, t, req)
	if err != nil {
		var te *router.ThrottleError
		var ie *invokeapi.Error
		switch {
		case errors.As(err, &te):
			if q.deps.Metrics != nil {
				q.deps.Metrics.Throttle(fn.Name, te.Reason)
			}
			return attempt{kind: outcomeThrottle, statusCode: http.StatusTooManyRequests, err: err}
		case errors.As(err, &ie) && (ie.Code == invokeapi.CodeRequestTooLarge || ie.Code == invokeapi.CodeBadRequest):
			// The event itself is refused: retrying cannot help, so it is a
			// failed attempt that uses up the retries.
			body, _ := json.Marshal(map[string]string{"errorMessage": ie.Message, "errorType": string(ie.Code)})
			return attempt{kind: outcomeFunctionError, statusCode: http.StatusBadRequest, executedVersion: res.Version, functionError: "Unhandled", payload: body}
		default:
			if q.deps.Metrics != nil && ctx.Err() == nil {
				q.deps.Metrics.PlatformError(fn.Name, res.Version)
			}
			return attempt{kind: outcomeThrottle, statusCode: http.StatusInternalServerError, err: err}
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, invokeapi.MaxPayload+1))
	resp.Body.Close()
	if err != nil {
		return attempt{kind: outcomeThrottle, statusCode: http.StatusInternalServerError, err: fmt.Errorf("reading the function's response: %w", err)}
	}
	rep := resp.Report()
	if q.deps.Metrics != nil {
		q.deps.Metrics.Invocation(fn.Name, res.Version, resp.FunctionError != "" || rep.StreamErrType != "", rep.Duration, rep.InitDuration, rep.ColdStart)
		q.deps.Metrics.Billed(fn.Name, res.Version, rep.MemoryMB, rep.BilledMs)
	}
	a := attempt{statusCode: http.StatusOK, executedVersion: res.Version, payload: body}
	if resp.FunctionError != "" {
		a.kind, a.functionError = outcomeFunctionError, resp.FunctionError
	}
	return a
}

// retry schedules the next delivery after delay, or sooner when the event
// would age out first (the age check then fails it).
func (q *Queue) retry(ctx context.Context, msg jetstream.Msg, log hclogger, st *Status, expires time.Time, delay time.Duration) {
	if until := expires.Sub(q.now()); until < delay {
		delay = max(until, 0) + time.Millisecond
	}
	st.State = StateRetrying
	st.NextAttemptAt = time.Now().Add(delay).UTC()
	q.putStatus(ctx, st)
	log.Debug("retrying event", "retries", st.Retries, "throttles", st.Throttles, "delay", delay)
	if err := msg.NakWithDelay(delay); err != nil {
		q.logger.Warn("scheduling a retry; JetStream redelivers after ack_wait", "request_id", st.RequestID, "error", err)
	}
}

func (q *Queue) succeed(ctx context.Context, msg jetstream.Msg, log hclogger, ev Event, st *Status, ac asyncSettings, a attempt) {
	st.State, st.Condition, st.LastResponse = StateSucceeded, ConditionSuccess, nil
	if ac.onSuccess != nil {
		rec := q.record(ev, st, ConditionSuccess, &a)
		q.deliver(ctx, log, ev, st, "on_success", ac.onSuccess, destinations.Message{Body: rec})
	}
	q.putStatus(ctx, st)
	q.metrics.finished.WithLabelValues(ev.Function, st.State).Inc()
	if err := msg.Ack(); err != nil {
		log.Warn("acknowledging event; it may run again", "error", err)
	}
}

// fail sends the on-failure record and the dead-letter event, then drops
// the event from the queue.
func (q *Queue) fail(ctx context.Context, msg jetstream.Msg, log hclogger, ev Event, st *Status, ac asyncSettings, condition string, last *attempt) {
	st.State, st.Condition, st.NextAttemptAt = StateFailed, condition, time.Time{}
	if last != nil && last.err != nil {
		st.Error = last.err.Error()
	}
	if last == nil && st.StatusCode != 0 {
		// Aged out while waiting: the record describes the last attempt.
		last = &attempt{statusCode: st.StatusCode, executedVersion: st.ExecutedVersion, functionError: st.FunctionError, payload: st.LastResponse}
	}
	if ac.onFailure != nil {
		rec := q.record(ev, st, condition, last)
		q.deliver(ctx, log, ev, st, "on_failure", ac.onFailure, destinations.Message{Body: rec})
	}
	if ac.deadLetter != nil {
		code := http.StatusOK
		if last != nil && last.statusCode != 0 {
			code = last.statusCode
		}
		errMsg := st.Error
		if errMsg == "" {
			errMsg = condition
		}
		if len(errMsg) > 1024 {
			errMsg = errMsg[:1024]
		}
		dl := destinations.Message{Body: ev.Payload, Headers: map[string]string{
			"RequestID": ev.RequestID, "ErrorCode": strconv.Itoa(code), "ErrorMessage": errMsg,
		}}
		if q.deliver(ctx, log, ev, st, "dead_letter", ac.deadLetter, dl) {
			st.State = StateDeadLettered
			q.metrics.deadLetters.WithLabelValues(ev.Function).Inc()
		} else {
			q.metrics.deadLetterErrors.WithLabelValues(ev.Function).Inc()
		}
	}
	st.LastResponse = nil
	q.putStatus(ctx, st)
	q.metrics.finished.WithLabelValues(ev.Function, st.State).Inc()
	log.Debug("async invocation failed", "condition", condition, "attempts", st.Attempts)
	if err := msg.Ack(); err != nil {
		log.Warn("acknowledging event; it may run again", "error", err)
	}
}

type hclogger interface {
	Debug(string, ...any)
	Warn(string, ...any)
}

// deliver sends to one destination, recording a failure in the status and
// metrics; it reports success.
func (q *Queue) deliver(ctx context.Context, log hclogger, ev Event, st *Status, which string, d *specs.Destination, m destinations.Message) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := q.sender.Send(ctx, d, m); err != nil {
		kind := destinations.Kind(d)
		q.metrics.destinationFailures.WithLabelValues(ev.Function, kind).Inc()
		st.DestinationErrors = append(st.DestinationErrors, which+" "+destinations.Target(d)+": "+err.Error())
		log.Warn("delivering to destination", "destination", which, "kind", kind, "error", err)
		return false
	}
	return true
}

// record builds Lambda's invocation record.
func (q *Queue) record(ev Event, st *Status, condition string, a *attempt) []byte {
	qual := ev.Qualifier
	if qual == "" {
		qual = catalog.Latest
	}
	r := Record{
		Version:   "1.0",
		Timestamp: recordTimestamp(time.Now()),
		RequestContext: RequestContext{
			RequestID: ev.RequestID, FunctionARN: q.functionARN(ev.Function, qual),
			Condition: condition, ApproximateInvokeCount: st.Attempts,
		},
		RequestPayload: jsonOrString(ev.Payload),
	}
	if a != nil {
		r.ResponseContext = &ResponseContext{StatusCode: a.statusCode, ExecutedVersion: a.executedVersion, FunctionError: a.functionError}
		if a.kind == outcomeThrottle && a.err != nil && len(a.payload) == 0 {
			b, _ := json.Marshal(map[string]string{"errorMessage": a.err.Error()})
			r.ResponsePayload = b
		} else {
			r.ResponsePayload = jsonOrString(a.payload)
		}
	}
	if r.RequestPayload == nil {
		r.RequestPayload = json.RawMessage("{}")
	}
	b, _ := json.Marshal(r)
	return b
}

// throttleDelay is exponential from ThrottleBackoffMin to ThrottleBackoffMax,
// with ±20% jitter so events throttled together do not come back together.
func (q *Queue) throttleDelay(n int) time.Duration {
	d := float64(q.cfg.ThrottleBackoffMinD) * math.Pow(2, float64(n-1))
	if d > float64(q.cfg.ThrottleBackoffMaxD) || math.IsInf(d, 0) {
		d = float64(q.cfg.ThrottleBackoffMaxD)
	}
	return time.Duration(d * (0.8 + 0.4*rand.Float64()))
}

// tryAcquire takes an async slot of the function if one is free: at most
// FunctionShare of its limit runs at once through this gateway's workers.
// It never waits: an event whose function is at its share goes back to the
// queue (busyDelay) and the worker takes another, so one function's
// backlog cannot hold the workers other functions' events need.
func (q *Queue) tryAcquire(function string, limit int) (func(), bool) {
	slots := max(1, int(float64(limit)*q.cfg.FunctionShare))
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inflight[function] >= slots {
		return nil, false
	}
	q.inflight[function]++
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			q.inflight[function]--
			if q.inflight[function] == 0 {
				delete(q.inflight, function)
			}
			q.mu.Unlock()
		})
	}, true
}

// busyDelay is how long a deferred event stays out of the queue: busy_delay
// times the deliveries it has had (at most 10), with ±20% jitter, so a long
// backlog of one busy function is offered less and less often.
func (q *Queue) busyDelay(delivered uint64) time.Duration {
	d := float64(q.cfg.BusyDelayD) * float64(min(max(delivered, 1), 10))
	return time.Duration(d * (0.8 + 0.4*rand.Float64()))
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// heartbeat tells JetStream the event is still being worked on, so a long
// invocation is not handed to another worker.
func (q *Queue) heartbeat(msg jetstream.Msg) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(max(q.cfg.AckWaitD/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

func (q *Queue) functionARN(name, qualifier string) string {
	s := "arn:aws:lambda:" + q.deps.Region + ":" + q.deps.AccountID + ":function:" + name
	if qualifier != "" {
		s += ":" + qualifier
	}
	return s
}

// asyncSettings is a version's async block with defaults applied.
type asyncSettings struct {
	maxRetries                       int
	maxAge                           time.Duration
	onSuccess, onFailure, deadLetter *specs.Destination
}

func asyncConfig(f *specs.Function) asyncSettings {
	s := asyncSettings{maxRetries: defaultMaxRetries, maxAge: defaultMaxEventAge}
	if f == nil || f.Async == nil {
		return s
	}
	a := f.Async
	s.maxRetries = min(max(a.MaxRetries, 0), 2)
	if d, err := time.ParseDuration(a.MaxEventAge); err == nil && d > 0 {
		s.maxAge = d
	}
	s.onSuccess, s.onFailure, s.deadLetter = nonEmpty(a.OnSuccess), nonEmpty(a.OnFailure), nonEmpty(a.DeadLetter)
	return s
}

func nonEmpty(d *specs.Destination) *specs.Destination {
	if destinations.Kind(d) == "" {
		return nil
	}
	return d
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}
