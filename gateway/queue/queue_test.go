package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/specs"
)

var key = []byte("0123456789abcdef-queue-test")

// funcs is a settable catalog.
type funcs struct {
	mu   sync.Mutex
	m    map[string]*catalog.Function
	down error // every lookup fails with it (the catalog's source is unreachable)
}

func (f *funcs) Function(_ context.Context, name string) (*catalog.Function, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		return nil, f.down
	}
	fn, ok := f.m[name]
	if !ok {
		return nil, catalog.ErrFunctionNotFound
	}
	return fn, nil
}

func (f *funcs) add(spec *specs.Function) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[spec.Name] = &catalog.Function{Name: spec.Name, Versions: map[string]*specs.Function{catalog.Latest: spec}}
}

type harness struct {
	t       *testing.T
	q       *queue.Queue
	src     *gatewaytest.Source
	cat     *funcs
	metrics *metrics.Metrics
	nc      *nats.Conn
	skew    atomic.Int64 // added to the queue's clock
}

// testConfig retries in milliseconds.
func testConfig() queue.Config {
	return queue.Config{
		Workers: 4, AckWait: "2s", RetryDelays: []string{"20ms", "40ms"},
		ThrottleBackoffMin: "10ms", ThrottleBackoffMax: "40ms",
	}
}

func newHarness(t *testing.T, cfg queue.Config, run bool) *harness {
	t.Helper()
	h := &harness{t: t, src: gatewaytest.NewSource(), cat: &funcs{m: map[string]*catalog.Function{}}, metrics: metrics.New()}
	rt := router.New(router.Config{InvokeKey: key, ColdStartWait: 30 * time.Millisecond}, h.src, &gatewaytest.Scaler{}, h.metrics, nil)
	t.Cleanup(rt.Close)
	cfg.Defaults()
	if err := cfg.Validate(true); err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(cfg, true, queue.Deps{
		Invoker: rt, Catalog: h.cat, Limits: rt, Metrics: h.metrics, Region: "us-east-1", AccountID: "123456789012",
		Now: func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	n, err := queue.ConnectNATS(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	if err := q.Open(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if run {
		if err := q.Run(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := q.Stop(ctx); err != nil {
				t.Errorf("stopping workers: %v", err)
			}
		})
	}
	h.q = q
	nc, err := nats.Connect(q.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h.nc = nc
	return h
}

// instance serves fn's $LATEST with handler.
func (h *harness) instance(fn string, envs int, handler gatewaytest.Handler) *gatewaytest.Instance {
	in := gatewaytest.StartInstance(h.t, fn, catalog.Latest, envs, invokeapi.DeriveSecret(key, fn, catalog.Latest), handler)
	h.src.Add(in.Discovery(fn+"-1", discovery.GroupOnDemand))
	return in
}

func (h *harness) enqueue(fn, payload string) string {
	h.t.Helper()
	rid := uuid.NewString()
	if err := h.q.Enqueue(context.Background(), queue.Event{RequestID: rid, Function: fn, Payload: []byte(payload)}); err != nil {
		h.t.Fatal(err)
	}
	return rid
}

func (h *harness) status(rid string) *queue.Status {
	h.t.Helper()
	st, err := h.q.Lookup(context.Background(), rid)
	if err != nil {
		h.t.Fatalf("status of %s: %v", rid, err)
	}
	return st
}

func (h *harness) waitState(rid, state string) *queue.Status {
	h.t.Helper()
	var st *queue.Status
	gatewaytest.Eventually(h.t, 10*time.Second, func() bool {
		st = h.status(rid)
		return st.State == state
	}, "request %s reaches %s", rid, state)
	return st
}

// subscribe collects messages on a subject.
func (h *harness) subscribe(subject string) chan *nats.Msg {
	ch := make(chan *nats.Msg, 100)
	sub, err := h.nc.ChanSubscribe(subject, ch)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.nc.Flush(); err != nil {
		h.t.Fatal(err)
	}
	return ch
}

func receive(t *testing.T, ch chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

// webhook records POSTs.
type webhook struct {
	mu    sync.Mutex
	posts []*post
	srv   *httptest.Server
	fail  atomic.Int32 // answer 500 this many more times
}

type post struct {
	header http.Header
	body   []byte
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.fail.Add(-1) >= 0 {
			rw.WriteHeader(http.StatusInternalServerError)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.posts = append(w.posts, &post{header: r.Header.Clone(), body: b})
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) wait(t *testing.T, n int) []*post {
	t.Helper()
	var out []*post
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		out = append([]*post(nil), w.posts...)
		return len(out) >= n
	}, "%d webhook posts", n)
	return out
}

func failing(w http.ResponseWriter, _ *http.Request, _ []byte) {
	w.Header().Set(invokeapi.HeaderFunctionError, "Unhandled")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"errorMessage":"boom","errorType":"errorString"}`))
}

func fnSpec(name string, async *specs.AsyncConfig) *specs.Function {
	return &specs.Function{Name: name, Runtime: "provided.al2023", Handler: "bootstrap", Timeout: "3s", Async: async}
}

func TestSuccessRecordOnNATSInLambdaFormat(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.cat.add(fnSpec("echo", &specs.AsyncConfig{MaxRetries: 2, MaxEventAge: "1h", OnSuccess: &specs.Destination{NATS: "results.echo"}}))
	in := h.instance("echo", 1, nil)
	records := h.subscribe("results.echo")
	rid := h.enqueue("echo", `{"n":1}`)

	m := receive(t, records)
	var rec map[string]any
	if err := json.Unmarshal(m.Data, &rec); err != nil {
		t.Fatal(err)
	}
	ts, _ := rec["timestamp"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", ts); err != nil {
		t.Errorf("timestamp %q: %v", ts, err)
	}
	delete(rec, "timestamp")
	want := map[string]any{
		"version": "1.0",
		"requestContext": map[string]any{
			"requestId": rid, "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST",
			"condition": "Success", "approximateInvokeCount": 1.0,
		},
		"requestPayload":  map[string]any{"n": 1.0},
		"responseContext": map[string]any{"statusCode": 200.0, "executedVersion": "$LATEST"},
		"responsePayload": map[string]any{"n": 1.0},
	}
	if fmt.Sprint(rec) != fmt.Sprint(want) {
		t.Errorf("record\n got %v\nwant %v", rec, want)
	}
	// Field order is Lambda's.
	order := []string{`"version"`, `"timestamp"`, `"requestContext"`, `"requestId"`, `"functionArn"`, `"condition"`,
		`"approximateInvokeCount"`, `"requestPayload"`, `"responseContext"`, `"statusCode"`, `"executedVersion"`, `"responsePayload"`}
	last := -1
	for _, k := range order {
		i := strings.Index(string(m.Data), k)
		if i < last {
			t.Errorf("%s out of order in %s", k, m.Data)
		}
		last = i
	}
	st := h.waitState(rid, queue.StateSucceeded)
	if st.Attempts != 1 || st.Condition != queue.ConditionSuccess || st.ExecutedVersion != "$LATEST" {
		t.Errorf("status %+v", st)
	}
	if got := in.LastRequest().Header.Get(invokeapi.HeaderRequestID); got != rid {
		t.Errorf("function saw request id %q, want the async request id %q", got, rid)
	}
}

func TestFunctionErrorRetriesThenFailureRecordAndDeadLetter(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	hook := newWebhook(t)
	h.cat.add(fnSpec("bad", &specs.AsyncConfig{MaxRetries: 2, MaxEventAge: "1h",
		OnFailure: &specs.Destination{Webhook: hook.srv.URL}, DeadLetter: &specs.Destination{NATS: "dlq.bad"}}))
	in := h.instance("bad", 1, failing)
	dlq := h.subscribe("dlq.bad")
	rid := h.enqueue("bad", `{"order":7}`)

	dl := receive(t, dlq)
	if string(dl.Data) != `{"order":7}` {
		t.Errorf("dead letter body %s, want the original event", dl.Data)
	}
	if dl.Header.Get("RequestID") != rid || dl.Header.Get("ErrorCode") != "200" || !strings.Contains(dl.Header.Get("ErrorMessage"), "boom") {
		t.Errorf("dead letter headers %v", dl.Header)
	}
	posts := hook.wait(t, 1)
	var rec queue.Record
	if err := json.Unmarshal(posts[0].body, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.RequestContext.Condition != queue.ConditionRetriesExhausted || rec.RequestContext.ApproximateInvokeCount != 3 ||
		rec.ResponseContext == nil || rec.ResponseContext.FunctionError != "Unhandled" || rec.ResponseContext.StatusCode != 200 ||
		string(rec.ResponsePayload) != `{"errorMessage":"boom","errorType":"errorString"}` || string(rec.RequestPayload) != `{"order":7}` {
		t.Errorf("failure record %s", posts[0].body)
	}
	st := h.waitState(rid, queue.StateDeadLettered)
	if st.Attempts != 3 || st.Retries != 2 || st.Condition != queue.ConditionRetriesExhausted {
		t.Errorf("status %+v", st)
	}
	if in.Invocations() != 3 {
		t.Errorf("%d invocations, want 1 + 2 retries", in.Invocations())
	}
	if n := find(t, h, "nimbus_async_dead_letters_total"); n != 1 {
		t.Errorf("dead letters metric %v", n)
	}
}

func TestMaxRetriesZeroRunsOnce(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.cat.add(fnSpec("bad", &specs.AsyncConfig{MaxRetries: 0, MaxEventAge: "1h"}))
	in := h.instance("bad", 1, failing)
	rid := h.enqueue("bad", `{}`)
	st := h.waitState(rid, queue.StateFailed)
	if st.Attempts != 1 || st.Retries != 0 || in.Invocations() != 1 {
		t.Errorf("status %+v, %d invocations", st, in.Invocations())
	}
}

func TestRetryWaitsTheConfiguredBackoff(t *testing.T) {
	cfg := testConfig()
	cfg.RetryDelays = []string{"1h"}
	h := newHarness(t, cfg, true)
	h.cat.add(fnSpec("bad", nil)) // no async block: Lambda's defaults
	in := h.instance("bad", 1, failing)
	rid := h.enqueue("bad", `{}`)
	st := h.waitState(rid, queue.StateRetrying)
	if st.Retries != 1 || st.Attempts != 1 {
		t.Errorf("status %+v", st)
	}
	if wait := st.NextAttemptAt.Sub(st.UpdatedAt); wait < 59*time.Minute || wait > 61*time.Minute {
		t.Errorf("next attempt %s after the failure, want the configured 1h", wait)
	}
	if in.Invocations() != 1 {
		t.Errorf("%d invocations before the retry is due", in.Invocations())
	}
	if n := find(t, h, "nimbus_async_retries_total", "bad", "function_error"); n != 1 {
		t.Errorf("retries metric %v", n)
	}
}

func TestThrottlesRetryUntilCapacityAppears(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	hook := newWebhook(t)
	h.cat.add(fnSpec("later", &specs.AsyncConfig{MaxRetries: 0, MaxEventAge: "1h", OnSuccess: &specs.Destination{Webhook: hook.srv.URL}}))
	rid := h.enqueue("later", `{"x":1}`)
	// No instance: the router throttles after its cold-start wait, again and
	// again — retries that do not use up max_retries (0 here).
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		st := h.status(rid)
		return st.State == queue.StateRetrying && st.Throttles >= 3
	}, "throttle retries")
	h.instance("later", 1, nil)
	st := h.waitState(rid, queue.StateSucceeded)
	if st.Retries != 0 || st.Throttles < 3 {
		t.Errorf("status %+v", st)
	}
	var rec queue.Record
	if err := json.Unmarshal(hook.wait(t, 1)[0].body, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.RequestContext.Condition != queue.ConditionSuccess || rec.RequestContext.ApproximateInvokeCount != st.Attempts {
		t.Errorf("record %+v, status %+v", rec.RequestContext, st)
	}
}

func TestEventAgeExceeded(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	hook := newWebhook(t)
	h.cat.add(fnSpec("never", &specs.AsyncConfig{MaxRetries: 2, MaxEventAge: "60s",
		OnFailure: &specs.Destination{NATS: "fail.never"}, DeadLetter: &specs.Destination{Webhook: hook.srv.URL}}))
	failures := h.subscribe("fail.never")
	rid := h.enqueue("never", `{"late":true}`)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return h.status(rid).Throttles >= 1 }, "a throttle")
	h.skew.Store(int64(2 * time.Minute)) // the event is now two minutes old

	var rec queue.Record
	if err := json.Unmarshal(receive(t, failures).Data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.RequestContext.Condition != queue.ConditionEventAgeExceeded || rec.ResponseContext == nil || rec.ResponseContext.StatusCode != 429 {
		t.Errorf("record %+v %+v", rec.RequestContext, rec.ResponseContext)
	}
	dl := hook.wait(t, 1)[0]
	if string(dl.body) != `{"late":true}` || dl.header.Get("RequestID") != rid || dl.header.Get("ErrorCode") != "429" {
		t.Errorf("dead letter %s %v", dl.body, dl.header)
	}
	st := h.waitState(rid, queue.StateDeadLettered)
	if st.Condition != queue.ConditionEventAgeExceeded {
		t.Errorf("status %+v", st)
	}
}

func TestReservedConcurrencyZeroGoesStraightToFailure(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	zero := 0
	spec := fnSpec("off", &specs.AsyncConfig{MaxRetries: 2, MaxEventAge: "1h", DeadLetter: &specs.Destination{NATS: "dlq.off"}})
	spec.ReservedConcurrency = &zero
	h.cat.add(spec)
	dlq := h.subscribe("dlq.off")
	rid := h.enqueue("off", `{}`)
	dl := receive(t, dlq)
	if dl.Header.Get("ErrorCode") != "429" {
		t.Errorf("dead letter headers %v", dl.Header)
	}
	if st := h.waitState(rid, queue.StateDeadLettered); st.Attempts != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestFunctionDestinationInvokesAsync(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.cat.add(fnSpec("src", &specs.AsyncConfig{MaxRetries: 0, MaxEventAge: "1h", OnFailure: &specs.Destination{Function: "sink:$LATEST"}}))
	h.cat.add(fnSpec("sink", nil))
	h.instance("src", 1, failing)
	got := make(chan []byte, 1)
	h.instance("sink", 1, func(w http.ResponseWriter, r *http.Request, payload []byte) {
		got <- payload
		gatewaytest.Echo(w, r, []byte(`null`))
	})
	rid := h.enqueue("src", `{"a":"b"}`)
	var payload []byte
	select {
	case payload = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("sink not invoked")
	}
	var rec queue.Record
	if err := json.Unmarshal(payload, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.RequestContext.RequestID != rid || rec.RequestContext.Condition != queue.ConditionRetriesExhausted || string(rec.RequestPayload) != `{"a":"b"}` {
		t.Errorf("sink got %s", payload)
	}
}

func TestDestinationFailuresAreCountedAndReported(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.cat.add(fnSpec("echo", &specs.AsyncConfig{MaxRetries: 0, MaxEventAge: "1h", OnSuccess: &specs.Destination{Kafka: "results"}}))
	h.instance("echo", 1, nil)
	rid := h.enqueue("echo", `{}`)
	st := h.waitState(rid, queue.StateSucceeded)
	if len(st.DestinationErrors) != 1 || !strings.Contains(st.DestinationErrors[0], "kafka destinations are not built") {
		t.Errorf("destination errors %q", st.DestinationErrors)
	}
	if n := find(t, h, "nimbus_async_destination_failures_total", "echo", "kafka"); n != 1 {
		t.Errorf("destination failures metric %v", n)
	}
}

func TestWebhookDestinationRetriesA5xx(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	hook := newWebhook(t)
	hook.fail.Store(1)
	h.cat.add(fnSpec("echo", &specs.AsyncConfig{MaxRetries: 0, MaxEventAge: "1h", OnSuccess: &specs.Destination{Webhook: hook.srv.URL}}))
	h.instance("echo", 1, nil)
	rid := h.enqueue("echo", `{"k":"v"}`)
	p := hook.wait(t, 1)[0]
	if p.header.Get("Content-Type") != "application/json" || !strings.Contains(string(p.body), rid) {
		t.Errorf("post %v %s", p.header, p.body)
	}
	if st := h.waitState(rid, queue.StateSucceeded); len(st.DestinationErrors) != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestAsyncHoldsAtMostItsShareOfAFunction(t *testing.T) {
	h := newHarness(t, testConfig(), true) // 4 workers
	four := 4
	spec := fnSpec("capped", nil)
	spec.ReservedConcurrency = &four
	spec.EnvironmentsPerInstance = 4
	h.cat.add(spec)
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	in := h.instance("capped", 4, func(w http.ResponseWriter, r *http.Request, p []byte) {
		<-release
		gatewaytest.Echo(w, r, p)
	})
	var rids []string
	for i := 0; i < 6; i++ {
		rids = append(rids, h.enqueue("capped", `{}`))
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return in.Busy() == 2 }, "two running")
	open()
	for _, rid := range rids {
		h.waitState(rid, queue.StateSucceeded)
	}
	if in.MaxBusy() != 2 {
		t.Errorf("async ran %d at once; half of reserved 4 is 2", in.MaxBusy())
	}
}

func TestStatusQueuedListAndHandler(t *testing.T) {
	h := newHarness(t, testConfig(), false) // no workers: events stay queued
	h.cat.add(fnSpec("a.b", nil))
	rid1 := h.enqueue("a.b", `{}`)
	rid2 := h.enqueue("a.b", `{}`)
	if st := h.status(rid1); st.State != queue.StateQueued || st.Function != "a.b" {
		t.Errorf("status %+v", st)
	}
	srv := httptest.NewServer(h.q.Handler(nil))
	defer srv.Close()
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	code, v := get(queue.InvocationsPath + rid2)
	if code != 200 || v["state"] != "queued" || v["requestId"] != rid2 {
		t.Errorf("GET status: %d %v", code, v)
	}
	if code, _ := get(queue.InvocationsPath + uuid.NewString()); code != 404 {
		t.Errorf("unknown id answered %d", code)
	}
	code, v = get(queue.FunctionsPath + "a.b/invocations")
	list, _ := v["invocations"].([]any)
	if code != 200 || len(list) != 2 {
		t.Errorf("list: %d %v", code, v)
	}
	if n := find(t, h, "nimbus_async_queue_depth"); n != 2 {
		t.Errorf("queue depth %v", n)
	}
}

func TestQueueFullAndDuplicatePublish(t *testing.T) {
	cfg := testConfig()
	cfg.MaxEvents = 2
	h := newHarness(t, cfg, false)
	rid := h.enqueue("f", `{}`)
	// The same request id again (a client retry) is stored once.
	if err := h.q.Enqueue(context.Background(), queue.Event{RequestID: rid, Function: "f", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	h.enqueue("f", `{}`)
	err := h.q.Enqueue(context.Background(), queue.Event{RequestID: uuid.NewString(), Function: "f", Payload: []byte(`{}`)})
	if !errors.Is(err, queue.ErrQueueFull) {
		t.Errorf("third event: %v, want ErrQueueFull", err)
	}
	big := make([]byte, queue.MaxEventSize+1)
	if err := h.q.Enqueue(context.Background(), queue.Event{RequestID: uuid.NewString(), Function: "f", Payload: big}); !errors.Is(err, queue.ErrEventTooLarge) {
		t.Errorf("oversized event: %v", err)
	}
}

// TestTwoGatewaysShareTheWork runs a second queue connected by URL (as a
// gateway on an external NATS cluster is) next to the first: every event
// runs, each gateway's workers take part of them.
func TestTwoGatewaysShareTheWork(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.cat.add(fnSpec("echo", nil))
	in := h.instance("echo", 8, nil)

	cfg := testConfig()
	cfg.URL = h.q.ClientURL()
	cfg.Defaults()
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	other := &countingInvoker{}
	rt := router.New(router.Config{InvokeKey: key}, h.src, &gatewaytest.Scaler{}, metrics.New(), nil)
	t.Cleanup(rt.Close)
	other.next = rt
	q2, err := queue.New(cfg, false, queue.Deps{Invoker: other, Catalog: h.cat, Limits: rt, Region: "us-east-1", AccountID: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := queue.ConnectNATS(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	if n.Embedded != nil {
		t.Fatal("a queue with nats_url started its own server")
	}
	if err := q2.Open(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if err := q2.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q2.Stop(ctx)
	})

	const events = 200
	var rids []string
	for i := 0; i < events; i++ {
		rids = append(rids, h.enqueue("echo", fmt.Sprintf(`{"i":%d}`, i)))
	}
	for _, rid := range rids {
		h.waitState(rid, queue.StateSucceeded)
	}
	if other.calls.Load() == 0 || other.calls.Load() == events {
		t.Errorf("second gateway ran %d of %d events; want a share", other.calls.Load(), events)
	}
	if in.Invocations() < events {
		t.Errorf("%d invocations for %d events", in.Invocations(), events)
	}
}

type countingInvoker struct {
	next  queue.Invoker
	calls atomic.Int64
}

func (c *countingInvoker) Invoke(ctx context.Context, t router.Target, req *invokeapi.Request) (*invokeapi.Response, error) {
	c.calls.Add(1)
	return c.next.Invoke(ctx, t, req)
}

func TestOldestEventAgeMetric(t *testing.T) {
	h := newHarness(t, testConfig(), false)
	h.enqueue("f", `{}`)
	if age := find(t, h, "nimbus_async_oldest_event_age_seconds"); age < 0 || age > 60 {
		t.Errorf("age of a fresh event %v", age)
	}
	h.skew.Store(int64(time.Hour))
	if age := find(t, h, "nimbus_async_oldest_event_age_seconds"); age < 3599 || age > 3700 {
		t.Errorf("age an hour later %v", age)
	}
	if n := find(t, h, "nimbus_async_enqueued_total", "f"); n != 1 {
		t.Errorf("enqueued %v", n)
	}
}

// jsonOfSize is a JSON string document of exactly n bytes.
func jsonOfSize(n int) []byte {
	b := bytes.Repeat([]byte("a"), n)
	b[0], b[n-1] = '"', '"'
	return b
}

// Item 8 of issue 11: a payload of exactly 1 MiB, with a qualifier, trace
// and tenant ids around it, is stored and reaches the function byte for
// byte; one byte more, or oversized headers, is refused as too large.
// (Payloads within ~120 bytes of 1 MiB used to fail with NATS's "maximum
// payload exceeded".)
func TestEventAtTheExactSizeLimit(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.cat.add(fnSpec("big", nil))
	got := make(chan []byte, 1)
	h.instance("big", 1, func(w http.ResponseWriter, r *http.Request, p []byte) {
		got <- p
		gatewaytest.Echo(w, r, []byte(`"ok"`))
	})
	payload := jsonOfSize(queue.MaxEventSize)
	ev := queue.Event{RequestID: uuid.NewString(), Function: "big", Payload: payload,
		TraceID: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", TenantID: strings.Repeat("t", 256)}
	if err := h.q.Enqueue(context.Background(), ev); err != nil {
		t.Fatalf("enqueueing exactly %d bytes: %v", len(payload), err)
	}
	select {
	case p := <-got:
		if !bytes.Equal(p, payload) {
			t.Fatalf("the function got %d bytes, want the %d enqueued", len(p), len(payload))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the 1 MiB event did not reach the function")
	}
	h.waitState(ev.RequestID, queue.StateSucceeded)

	over := ev
	over.RequestID, over.Payload = uuid.NewString(), jsonOfSize(queue.MaxEventSize+1)
	if err := h.q.Enqueue(context.Background(), over); !errors.Is(err, queue.ErrEventTooLarge) {
		t.Fatalf("enqueueing %d bytes: %v, want ErrEventTooLarge", len(over.Payload), err)
	}
	fat := ev
	fat.RequestID, fat.Payload, fat.TraceID = uuid.NewString(), []byte(`{}`), strings.Repeat("r", queue.MaxEventHeaders)
	if err := h.q.Enqueue(context.Background(), fat); !errors.Is(err, queue.ErrEventTooLarge) {
		t.Fatalf("enqueueing with a %d byte trace id: %v, want ErrEventTooLarge", len(fat.TraceID), err)
	}
}

// blocked serves fn with envs environments whose invocations wait for the
// returned release (which the test's end also calls).
func (h *harness) blocked(fn string, envs int) (*gatewaytest.Instance, func()) {
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	in := h.instance(fn, envs, func(w http.ResponseWriter, r *http.Request, p []byte) {
		<-release
		gatewaytest.Echo(w, r, p)
	})
	h.t.Cleanup(open) // after the double's: runs before its Close waits
	return in, open
}

// Item 9 of issue 11: a slow function with a low limit and a backlog
// queued ahead of another function's events does not hold the workers:
// its events wait in the queue (deferred, not attempts) while the other
// function's events all run, and it still never runs more than its share.
func TestBusyFunctionDoesNotStarveOthers(t *testing.T) {
	cfg := testConfig() // 4 workers
	cfg.BusyDelay = "20ms"
	h := newHarness(t, cfg, true)
	two := 2 // half of it: one async slot
	slow := fnSpec("slow", nil)
	slow.ReservedConcurrency, slow.EnvironmentsPerInstance = &two, 2
	h.cat.add(slow)
	h.cat.add(fnSpec("quick", nil))
	slowIn, release := h.blocked("slow", 2)
	quickIn := h.instance("quick", 1, nil)

	var slowIDs, quickIDs []string
	for i := 0; i < 20; i++ {
		slowIDs = append(slowIDs, h.enqueue("slow", fmt.Sprintf(`{"slow":%d}`, i)))
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return slowIn.Busy() == 1 }, "one slow event running")
	for i := 0; i < 5; i++ {
		quickIDs = append(quickIDs, h.enqueue("quick", fmt.Sprintf(`{"quick":%d}`, i)))
	}
	for _, rid := range quickIDs {
		h.waitState(rid, queue.StateSucceeded)
	}
	if quickIn.Invocations() != 5 || slowIn.Invocations() != 0 || slowIn.Busy() != 1 {
		t.Fatalf("quick ran %d (want 5) while slow finished %d and ran %d (want 0 and 1)",
			quickIn.Invocations(), slowIn.Invocations(), slowIn.Busy())
	}
	if n := find(t, h, "nimbus_async_deferred_total", "slow"); n < 1 {
		t.Errorf("deferred slow events = %v, want some", n)
	}

	release()
	for _, rid := range slowIDs {
		st := h.waitState(rid, queue.StateSucceeded)
		if st.Attempts != 1 || st.Retries != 0 || st.Throttles != 0 {
			t.Errorf("slow event %s: %d attempts, %d retries, %d throttles; deferrals must not count", rid, st.Attempts, st.Retries, st.Throttles)
		}
	}
	if slowIn.MaxBusy() != 1 || slowIn.Invocations() != 20 {
		t.Errorf("slow ran %d at once (share of reserved 2 is 1) and %d in all (want 20)", slowIn.MaxBusy(), slowIn.Invocations())
	}
}

// Item 9 of issue 11: once Stop began, no invocation starts; an event a
// worker holds for a function whose slot frees during shutdown stays
// queued for the next gateway.
func TestStopStartsNoFurtherInvocation(t *testing.T) {
	cfg := testConfig()
	cfg.BusyDelay = "20ms"
	h := newHarness(t, cfg, false)
	two := 2
	slow := fnSpec("slow", nil)
	slow.ReservedConcurrency, slow.EnvironmentsPerInstance = &two, 2
	h.cat.add(slow)
	in, release := h.blocked("slow", 2)
	if err := h.q.Run(); err != nil {
		t.Fatal(err)
	}
	first := h.enqueue("slow", `{"n":1}`)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return in.Busy() == 1 }, "the first event running")
	second := h.enqueue("slow", `{"n":2}`)
	ctx := context.Background()
	cons, err := h.q.JetStream().Consumer(ctx, queue.StreamName, queue.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 2
	}, "a worker took the second event")

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stopped <- h.q.Stop(ctx)
	}()
	gatewaytest.Eventually(t, 10*time.Second, h.q.Stopping, "Stop began")
	release() // the first event finishes and frees the slot during shutdown
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	h.waitState(first, queue.StateSucceeded)
	if in.Invocations() != 1 {
		t.Fatalf("%d invocations; the second event started after Stop began", in.Invocations())
	}
	if st := h.status(second); st.State != queue.StateQueued || st.Attempts != 0 {
		t.Fatalf("second event after Stop: %+v, want queued with no attempt", st)
	}
}

// Item 7 of issue 11: a catalog that cannot answer (Nomad unreachable; the
// cluster catalog fails fast now) must not fail queued events as if their
// function were gone: they wait in the queue and run once it answers.
func TestCatalogOutageKeepsEvents(t *testing.T) {
	h := newHarness(t, testConfig(), true)
	h.cat.add(fnSpec("echo", nil))
	in := h.instance("echo", 1, nil)
	h.cat.mu.Lock()
	h.cat.down = errors.New("the nomad catalog is unavailable: connection refused")
	h.cat.mu.Unlock()
	rid := h.enqueue("echo", `{"n":1}`)
	cons, err := h.q.JetStream().Consumer(context.Background(), queue.StreamName, queue.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumRedelivered > 0
	}, "the event is handed back and offered again while the catalog is down")
	if st := h.status(rid); st.State != queue.StateQueued || in.Invocations() != 0 {
		t.Fatalf("during the outage: %+v, %d invocations", st, in.Invocations())
	}
	h.cat.mu.Lock()
	h.cat.down = nil
	h.cat.mu.Unlock()
	st := h.waitState(rid, queue.StateSucceeded)
	if st.Attempts != 1 || in.Invocations() != 1 {
		t.Fatalf("after the outage: %+v, %d invocations", st, in.Invocations())
	}
}
