package sources_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/specs"
)

// memSource is an in-memory Source for the engine's own logic; the broker
// packages test their sources against real brokers.
type memSource struct {
	polls  atomic.Int64
	notify chan struct{} // under mu; see arrived

	mu          sync.Mutex
	pending     []*sources.Record
	done        []string
	redelivered []string
	deliveries  map[string]int
	closed      bool
}

type memEvent struct {
	Records []struct {
		ID   string `json:"id"`
		Data string `json:"data"`
	} `json:"records"`
}

func (s *memSource) push(partition string, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deliveries == nil {
		s.deliveries = map[string]int{}
	}
	for _, id := range ids {
		s.deliveries[id]++
		s.pending = append(s.pending, &sources.Record{ID: id, Partition: partition, Time: time.Now(), Size: len(id),
			Deliveries: s.deliveries[id], Filter: map[string]any{"data": map[string]any{"id": id}}})
	}
	s.signalLocked()
}

func (s *memSource) signalLocked() {
	if s.notify == nil {
		s.notify = make(chan struct{}, 1)
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *memSource) Poll(ctx context.Context, max int, wait time.Duration) ([]*sources.Record, error) {
	s.polls.Add(1)
	deadline := time.Now().Add(wait)
	for {
		s.mu.Lock()
		if len(s.pending) > 0 {
			n := min(max, len(s.pending))
			out := s.pending[:n:n]
			s.pending = s.pending[n:]
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		t := time.NewTimer(left)
		select {
		case <-s.arrived():
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return nil, nil
		}
	}
}

// arrived is signalled (without blocking) whenever push adds records.
func (s *memSource) arrived() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notify == nil {
		s.notify = make(chan struct{}, 1)
	}
	return s.notify
}

func (s *memSource) Done(_ context.Context, recs []*sources.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.done = append(s.done, r.ID)
	}
	return nil
}

func (s *memSource) Redeliver(_ context.Context, recs []*sources.Record, _ time.Duration) error {
	s.mu.Lock()
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.ID)
		s.redelivered = append(s.redelivered, r.ID)
	}
	s.mu.Unlock()
	s.push("", ids...)
	return nil
}

func (s *memSource) Event(recs []*sources.Record) (json.RawMessage, error) {
	var ev memEvent
	for _, r := range recs {
		ev.Records = append(ev.Records, struct {
			ID   string `json:"id"`
			Data string `json:"data"`
		}{r.ID, r.ID})
	}
	return json.Marshal(ev)
}

func (s *memSource) BatchInfo(recs []*sources.Record) (string, any) {
	return "MemBatchInfo", map[string]any{"first": recs[0].ID, "last": recs[len(recs)-1].ID, "batchSize": len(recs)}
}

func (s *memSource) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *memSource) doneIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.done)
}

type orderedMem struct{ *memSource }

func (orderedMem) Ordered() bool { return true }

// queueMem hides Ordered so only Redeliverer shows.
type queueMem struct{ *memSource }

func (q queueMem) Redeliver(ctx context.Context, recs []*sources.Record, d time.Duration) error {
	return q.memSource.Redeliver(ctx, recs, d)
}

// fnLog records what the function received, batch by batch.
type fnLog struct {
	mu      sync.Mutex
	batches [][]string
}

func (l *fnLog) add(ids []string) {
	l.mu.Lock()
	l.batches = append(l.batches, ids)
	l.mu.Unlock()
}

func (l *fnLog) all() [][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.batches)
}

// decide answers one batch: "" success, "error" a function error, or a
// JSON body.
type decide func(ids []string) (status string, body string)

// failSink is the on_failure destination: records what arrives.
type failSink struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func (f *failSink) Send(_ context.Context, d *specs.Destination, m destinations.Message) error {
	var v map[string]any
	if err := json.Unmarshal(m.Body, &v); err != nil {
		return err
	}
	f.mu.Lock()
	f.msgs = append(f.msgs, v)
	f.mu.Unlock()
	return nil
}

func (f *failSink) all() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs)
}

type lister struct {
	mu sync.Mutex
	ms []sources.Mapping
}

func (l *lister) Mappings(context.Context) ([]sources.Mapping, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ms), nil
}

type oneFunc struct{ fn *catalog.Function }

func (o oneFunc) Function(_ context.Context, name string) (*catalog.Function, error) {
	if name != o.fn.Name {
		return nil, catalog.ErrFunctionNotFound
	}
	return o.fn, nil
}

type rig struct {
	t       *testing.T
	log     *fnLog
	fails   *failSink
	mgr     *sources.Manager
	metrics *metrics.Metrics
	inst    *gatewaytest.Instance
}

// start runs a manager with one mapping over src, invoking a function
// double (through the real router) that answers with d.
func start(t *testing.T, es *specs.EventSource, src sources.Source, d decide, envs int) *rig {
	t.Helper()
	r := &rig{t: t, log: &fnLog{}, fails: &failSink{}, metrics: metrics.New()}
	handler := func(w http.ResponseWriter, _ *http.Request, payload []byte) {
		var ev memEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			t.Errorf("event is not JSON: %v", err)
		}
		ids := make([]string, 0, len(ev.Records))
		for _, rec := range ev.Records {
			ids = append(ids, rec.ID)
		}
		r.log.add(ids)
		status, body := "", ""
		if d != nil {
			status, body = d(ids)
		}
		w.Header().Set("Content-Type", "application/json")
		if status == "error" {
			w.Header().Set(invokeapi.HeaderFunctionError, "Unhandled")
			body = `{"errorMessage":"boom","errorType":"Error"}`
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(body))
	}
	r.inst = gatewaytest.StartInstance(t, "fn", catalog.Latest, envs, "", handler)
	ds := gatewaytest.NewSource()
	ds.Set("fn", catalog.Latest, r.inst.Discovery("i1", metrics.GroupOnDemand))
	rt := router.New(router.Config{ColdStartWait: 100 * time.Millisecond}, ds, &gatewaytest.Scaler{}, r.metrics, nil)
	t.Cleanup(rt.Close)
	spec := &specs.Function{Name: "fn", EnvironmentsPerInstance: envs}
	fn := &catalog.Function{Name: "fn", Versions: map[string]*specs.Function{catalog.Latest: spec}}
	es.Enabled = true
	r.mgr = sources.NewManager(sources.Deps{
		Mappings: &lister{ms: []sources.Mapping{{UUID: "m-1", Name: "src", Function: "fn", Spec: es, Origin: sources.OriginSpec}}},
		Catalog:  oneFunc{fn}, Invoker: rt, Sender: r.fails,
		Openers: map[string]sources.Opener{es.Type: func(context.Context, sources.Config) (sources.Source, error) { return src, nil }},
		Metrics: sources.NewMetrics(r.metrics), Logger: gatewaytest.Logger(t),
		Region: "us-east-1", AccountID: "123456789012",
	}, sources.Options{ReconcileInterval: time.Hour, PollWait: 20 * time.Millisecond,
		RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, LagInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.mgr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

func intp(n int) *int { return &n }

func flat(b [][]string) []string {
	var out []string
	for _, x := range b {
		out = append(out, x...)
	}
	return out
}

func TestOrderedBatchesKeepOrderAndCheckpointEverything(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 4, MaximumRetryAttempts: intp(-1)}
	r := start(t, es, orderedMem{src}, nil, 4)
	want := ids("a", 10)
	src.push("p0", want...)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 10 }, "all records checkpointed: %v", src.doneIDs())
	if got := flat(r.log.all()); !slices.Equal(got, want) {
		t.Fatalf("function saw %v, want %v in order", got, want)
	}
	if got := src.doneIDs(); !slices.Equal(got, want) {
		t.Fatalf("checkpointed %v, want %v in order", got, want)
	}
	for _, b := range r.log.all() {
		if len(b) > 4 {
			t.Fatalf("batch of %d records; batch_size is 4", len(b))
		}
	}
	st, ok := r.mgr.Status("m-1")
	if !ok || st.RecordsIn != 10 || st.RecordsDone != 10 || st.State != sources.StateEnabled || st.LastProcessingResult != sources.ResultOK {
		t.Fatalf("status = %+v", st)
	}
}

func TestBatchingWindowFillsTheBatch(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 5, MaximumBatchingWindow: "300s"}
	r := start(t, es, orderedMem{src}, nil, 1)
	src.push("p", "w0", "w1", "w2")
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		st, _ := r.mgr.Status("m-1")
		return st.Buffered == 3
	}, "three records buffered")
	if n := r.inst.Invocations(); n != 0 {
		t.Fatalf("%d invocations before the batch is full or the window ends", n)
	}
	src.push("p", "w3", "w4")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 5 }, "records done")
	if b := r.log.all(); len(b) != 1 || len(b[0]) != 5 {
		t.Fatalf("batches = %v, want one batch of 5 (the window waits for a full batch)", b)
	}
}

func TestRetriesExhaustedSendTheBatchToOnFailure(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 3, MaximumRetryAttempts: intp(2),
		OnFailure: &specs.Destination{NATS: "failures"}}
	r := start(t, es, orderedMem{src}, func([]string) (string, string) { return "error", "" }, 1)
	src.push("p", "x0", "x1", "x2")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 3 }, "batch discarded and checkpointed")
	if n := len(r.log.all()); n != 3 {
		t.Fatalf("function invoked %d times, want 1 + 2 retries", n)
	}
	f := r.fails.all()
	if len(f) != 1 {
		t.Fatalf("failure records = %v", f)
	}
	rc := f[0]["requestContext"].(map[string]any)
	if rc["condition"] != sources.ConditionRetriesExhausted || rc["approximateInvokeCount"].(float64) != 3 ||
		!strings.HasSuffix(rc["functionArn"].(string), ":function:fn:$LATEST") {
		t.Fatalf("requestContext = %v", rc)
	}
	if resp := f[0]["responseContext"].(map[string]any); resp["functionError"] != "Unhandled" || resp["statusCode"].(float64) != 200 {
		t.Fatalf("responseContext = %v", resp)
	}
	info := f[0]["MemBatchInfo"].(map[string]any)
	if info["first"] != "x0" || info["last"] != "x2" || info["batchSize"].(float64) != 3 {
		t.Fatalf("batch info = %v", info)
	}
	if _, ok := f[0]["requestPayload"]; ok {
		t.Fatal("the failure record of a stream batch carries metadata only, not the payload")
	}
}

func TestBisectIsolatesThePoisonRecord(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 8, MaximumRetryAttempts: intp(1), BisectBatchOnFunctionError: true,
		OnFailure: &specs.Destination{NATS: "failures"}}
	r := start(t, es, orderedMem{src}, func(ids []string) (string, string) {
		if slices.Contains(ids, "b5") {
			return "error", ""
		}
		return "", ""
	}, 1)
	all := ids("b", 8)
	src.push("p", all...)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 8 }, "all records finished: %v", src.doneIDs())
	if got := src.doneIDs(); !slices.Equal(got, all) {
		t.Fatalf("checkpoints %v, want in order %v", got, all)
	}
	f := r.fails.all()
	if len(f) != 1 {
		t.Fatalf("failure records = %v", f)
	}
	info := f[0]["MemBatchInfo"].(map[string]any)
	if info["first"] != "b5" || info["last"] != "b5" {
		t.Fatalf("discarded %v, want only the poison record b5", info)
	}
	// Every good record reached the function in a successful batch.
	var ok []string
	for _, b := range r.log.all() {
		if !slices.Contains(b, "b5") {
			ok = append(ok, b...)
		}
	}
	if want := []string{"b0", "b1", "b2", "b3", "b4", "b6", "b7"}; !slices.Equal(ok, want) {
		t.Fatalf("successful batches delivered %v, want %v", ok, want)
	}
}

func TestPartialBatchFailureCheckpointsBeforeTheFirstFailure(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 5, MaximumRetryAttempts: intp(-1), ReportBatchItemFailures: true}
	var mu sync.Mutex
	failedOnce := false
	r := start(t, es, orderedMem{src}, func(ids []string) (string, string) {
		mu.Lock()
		defer mu.Unlock()
		if !failedOnce && slices.Contains(ids, "c2") {
			failedOnce = true
			return "", `{"batchItemFailures":[{"itemIdentifier":"c3"},{"itemIdentifier":"c2"}]}`
		}
		return "", `{"batchItemFailures":[]}`
	}, 1)
	src.push("p", ids("c", 5)...)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 5 }, "records done")
	b := r.log.all()
	if len(b) != 2 || !slices.Equal(b[0], ids("c", 5)) || !slices.Equal(b[1], []string{"c2", "c3", "c4"}) {
		t.Fatalf("batches = %v, want the whole batch then a retry from the lowest failure c2", b)
	}
	if got := src.doneIDs(); !slices.Equal(got, ids("c", 5)) {
		t.Fatalf("checkpoints %v", got)
	}
}

func TestPartialBatchResponseThatNamesNothingValidFailsTheBatch(t *testing.T) {
	for _, body := range []string{
		`{"batchItemFailures":[{"itemIdentifier":""}]}`,
		`{"batchItemFailures":[{"itemIdentifier":null}]}`,
		`{"batchItemFailures":[{"itemIdentifier":"not-in-batch"}]}`,
		`{"batchItemFailures":[{"itemId":"d0"}]}`,
		`{not json`,
	} {
		t.Run(body, func(t *testing.T) {
			src := &memSource{}
			es := &specs.EventSource{Type: "mem", BatchSize: 2, MaximumRetryAttempts: intp(0), ReportBatchItemFailures: true,
				OnFailure: &specs.Destination{NATS: "f"}}
			r := start(t, es, orderedMem{src}, func([]string) (string, string) { return "", body }, 1)
			src.push("p", "d0", "d1")
			gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(r.fails.all()) == 1 }, "whole batch failed")
			info := r.fails.all()[0]["MemBatchInfo"].(map[string]any)
			if info["batchSize"].(float64) != 2 {
				t.Fatalf("failure info %v, want the whole batch", info)
			}
		})
	}
}

func TestQueueSourceRedeliversOnlyFailedRecordsAndGivesUpAfterRetries(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 4, MaximumRetryAttempts: intp(2), ReportBatchItemFailures: true,
		OnFailure: &specs.Destination{NATS: "f"}}
	r := start(t, es, queueMem{src}, func(ids []string) (string, string) {
		if slices.Contains(ids, "q1") {
			return "", `{"batchItemFailures":[{"itemIdentifier":"q1"}]}`
		}
		return "", ""
	}, 1)
	src.push("", "q0", "q1", "q2", "q3")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 4 }, "all done: %v", src.doneIDs())
	src.mu.Lock()
	red := slices.Clone(src.redelivered)
	src.mu.Unlock()
	if !slices.Equal(red, []string{"q1", "q1"}) {
		t.Fatalf("redelivered %v, want q1 twice (deliveries 1 and 2 ≤ 2 retries)", red)
	}
	f := r.fails.all()
	if len(f) != 1 || f[0]["MemBatchInfo"].(map[string]any)["first"] != "q1" {
		t.Fatalf("failure records %v, want q1 after its third delivery", f)
	}
	_ = r
}

func TestRecordsOlderThanMaximumAgeAreDiscarded(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 10, MaximumRecordAge: "60s", MaximumRetryAttempts: intp(-1),
		OnFailure: &specs.Destination{NATS: "f"}}
	r := start(t, es, orderedMem{src}, nil, 1)
	src.mu.Lock()
	src.pending = append(src.pending,
		&sources.Record{ID: "old0", Partition: "p", Time: time.Now().Add(-2 * time.Minute)},
		&sources.Record{ID: "old1", Partition: "p", Time: time.Now().Add(-90 * time.Second)},
		&sources.Record{ID: "new0", Partition: "p", Time: time.Now()})
	src.signalLocked()
	src.mu.Unlock()
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 3 }, "records done")
	if got := flat(r.log.all()); !slices.Equal(got, []string{"new0"}) {
		t.Fatalf("function saw %v, want only new0", got)
	}
	f := r.fails.all()
	if len(f) != 1 || f[0]["requestContext"].(map[string]any)["condition"] != sources.ConditionRecordAgeExceeded ||
		f[0]["responseContext"] != nil {
		t.Fatalf("failure records %v", f)
	}
}

func TestFunctionErrorsRetryForeverWithoutALimitAndBlockThePartition(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 1, MaximumRetryAttempts: intp(-1)}
	var mu sync.Mutex
	calls := 0
	r := start(t, es, orderedMem{src}, func(ids []string) (string, string) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if ids[0] == "e0" && calls < 6 {
			return "error", ""
		}
		return "", ""
	}, 1)
	src.push("p", "e0", "e1")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 2 }, "records done")
	got := flat(r.log.all())
	if want := []string{"e0", "e0", "e0", "e0", "e0", "e0", "e1"}; !slices.Equal(got, want) {
		t.Fatalf("function saw %v, want e0 retried until it succeeds and only then e1", got)
	}
}

func TestPartitionsRunInParallelButEachInOrder(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 1}
	r := start(t, es, orderedMem{src}, nil, 8)
	for i := range 20 {
		src.push(fmt.Sprintf("p%d", i%4), fmt.Sprintf("p%d-%02d", i%4, i))
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 20 }, "records done")
	per := map[string][]string{}
	for _, id := range flat(r.log.all()) {
		p := id[:2]
		per[p] = append(per[p], id)
	}
	for p, list := range per {
		if !slices.IsSorted(list) || len(list) != 5 {
			t.Fatalf("partition %s saw %v out of order", p, list)
		}
	}
}

func TestOnFailureWithoutDestinationStillCheckpoints(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 2, MaximumRetryAttempts: intp(0)}
	r := start(t, es, orderedMem{src}, func([]string) (string, string) { return "error", "" }, 1)
	src.push("p", "z0", "z1")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 2 }, "records done")
	if len(r.fails.all()) != 0 {
		t.Fatal("no destination configured, yet a failure record was sent")
	}
	st, _ := r.mgr.Status("m-1")
	if st.RecordsFailed != 2 || st.FunctionErrors != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestQueueSourceBisectsAFailingBatchAtOnce(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 4, MaximumRetryAttempts: intp(0), BisectBatchOnFunctionError: true,
		OnFailure: &specs.Destination{NATS: "f"}}
	r := start(t, es, queueMem{src}, func(ids []string) (string, string) {
		if slices.Contains(ids, "s2") {
			return "error", ""
		}
		return "", ""
	}, 1)
	src.push("", "s0", "s1", "s2", "s3")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 4 }, "records done")
	f := r.fails.all()
	if len(f) != 1 || f[0]["MemBatchInfo"].(map[string]any)["first"] != "s2" {
		t.Fatalf("failure records %v, want only s2", f)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.redelivered) != 0 {
		t.Fatalf("redelivered %v; with zero retries nothing goes back", src.redelivered)
	}
}

type enqueued struct {
	mu   sync.Mutex
	refs []string
	evs  []string
}

func (e *enqueued) EnqueueFunction(_ context.Context, ref string, payload []byte) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refs = append(e.refs, ref)
	e.evs = append(e.evs, string(payload))
	return "rid", nil
}

func TestSchedulesInvokeThroughTheAsyncQueue(t *testing.T) {
	src := &memSource{}
	q := &enqueued{}
	es := &specs.EventSource{Type: specs.SourceSchedule, Enabled: true, BatchSize: 1, Schedule: "rate(1 minute)"}
	mgr := sources.NewManager(sources.Deps{
		Mappings: &lister{ms: []sources.Mapping{{UUID: "s-1", Function: "fn", Qualifier: "live", Spec: es}}},
		Enqueuer: q, Sender: &failSink{},
		Openers: map[string]sources.Opener{"schedule": func(context.Context, sources.Config) (sources.Source, error) { return orderedMem{src}, nil }},
		Logger:  gatewaytest.Logger(t),
	}, sources.Options{PollWait: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); mgr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	src.push("schedule", "2026-12-02T21:00:00Z")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 1 }, "tick done")
	q.mu.Lock()
	defer q.mu.Unlock()
	if !slices.Equal(q.refs, []string{"fn:live"}) || !strings.Contains(q.evs[0], "2026-12-02T21:00:00Z") {
		t.Fatalf("enqueued %v %v", q.refs, q.evs)
	}
}

func TestRecordsNoFilterMatchesAreDroppedCheckpointedAndCounted(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 10, Filters: []string{
		`{"data":{"id":["f1"]}}`, `{"data":{"id":[{"prefix":"g"}]}}`,
	}}
	r := start(t, es, orderedMem{src}, nil, 1)
	src.push("p", "f0", "f1", "f2", "g7")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 4 }, "records done")
	if got := flat(r.log.all()); !slices.Equal(got, []string{"f1", "g7"}) {
		t.Fatalf("function saw %v, want the matching f1 and g7", got)
	}
	st, _ := r.mgr.Status("m-1")
	if st.RecordsFiltered != 2 {
		t.Fatalf("filtered = %d, want 2", st.RecordsFiltered)
	}
}

// When the retries after a partial failure run out, every record from the
// lowest failed one on goes to on_failure, as Lambda's checkpoint stays
// before it: the function named only p2, but p3 and p4 behind it were not
// proven processed (a handler may stop at its first failure).
func TestExhaustedPartialFailureDiscardsFromTheLowestFailedRecord(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 5, MaximumRetryAttempts: intp(1), ReportBatchItemFailures: true,
		OnFailure: &specs.Destination{NATS: "f"}}
	r := start(t, es, orderedMem{src}, func(ids []string) (string, string) {
		if slices.Contains(ids, "p2") {
			return "", `{"batchItemFailures":[{"itemIdentifier":"p2"}]}`
		}
		return "", ""
	}, 1)
	src.push("p", ids("p", 5)...)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 5 }, "records done")
	f := r.fails.all()
	if len(f) != 1 {
		t.Fatalf("failure records %v", f)
	}
	if info := f[0]["MemBatchInfo"].(map[string]any); info["first"] != "p2" || info["last"] != "p4" || info["batchSize"] != float64(3) {
		t.Fatalf("discarded %v, want p2 to p4", info)
	}
	if b := r.log.all(); len(b) != 2 || !slices.Equal(b[1], []string{"p2", "p3", "p4"}) {
		t.Fatalf("batches %v, want the batch and one retry from p2", b)
	}
}

func TestAFunctionFailureStaysTheLastResultWhilePollingWorks(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 1, MaximumRetryAttempts: intp(0)}
	r := start(t, es, orderedMem{src}, func([]string) (string, string) { return "error", "" }, 1)
	src.push("p", "l0")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 1 }, "record done")
	after := src.polls.Load()
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return src.polls.Load() >= after+3 }, "empty polls go on")
	st, _ := r.mgr.Status("m-1")
	if st.LastProcessingResult != sources.ResultFunctionError {
		t.Fatalf("last result %q, want %q", st.LastProcessingResult, sources.ResultFunctionError)
	}
}

type partialLister struct {
	mu  sync.Mutex
	ms  []sources.Mapping
	err error
}

func (l *partialLister) Mappings(context.Context) ([]sources.Mapping, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ms), l.err
}

func TestAPartialMappingListStopsNothing(t *testing.T) {
	es := func() *specs.EventSource { return &specs.EventSource{Type: "mem", Enabled: true, BatchSize: 1} }
	a := sources.Mapping{UUID: "a", Function: "fn", Spec: es()}
	b := sources.Mapping{UUID: "b", Function: "fn", Spec: es()}
	l := &partialLister{ms: []sources.Mapping{a, b}}
	mgr := sources.NewManager(sources.Deps{Mappings: l, Sender: &failSink{}, Logger: gatewaytest.Logger(t),
		Openers: map[string]sources.Opener{"mem": func(context.Context, sources.Config) (sources.Source, error) {
			return orderedMem{&memSource{}}, nil
		}}}, sources.Options{PollWait: 10 * time.Millisecond})
	ctx := context.Background()
	running := func(id string) bool {
		st, ok := mgr.Status(id)
		return ok && st.State == sources.StateEnabled && st.LastProcessingResult == sources.ResultNoRecords
	}
	mgr.Reconcile(ctx)
	t.Cleanup(func() {
		l.mu.Lock()
		l.ms, l.err = nil, nil
		l.mu.Unlock()
		mgr.Reconcile(ctx)
	})
	if !running("a") || !running("b") {
		t.Fatal("mappings not started")
	}
	l.mu.Lock()
	l.ms, l.err = []sources.Mapping{a}, errors.New("store unreadable")
	l.mu.Unlock()
	mgr.Reconcile(ctx)
	if !running("b") {
		t.Fatal("a partial list stopped a mapping it did not name")
	}
	l.mu.Lock()
	l.err = nil
	l.mu.Unlock()
	mgr.Reconcile(ctx)
	if _, ok := mgr.Status("b"); ok {
		t.Fatal("a full list without b left it running")
	}
}

func TestARecordTooLargeToInvokeGoesToOnFailure(t *testing.T) {
	src := &memSource{}
	es := &specs.EventSource{Type: "mem", BatchSize: 10, MaximumRetryAttempts: intp(-1), OnFailure: &specs.Destination{NATS: "f"}}
	r := start(t, es, orderedMem{src}, nil, 1)
	huge := strings.Repeat("x", invokeapi.MaxPayload+1)
	src.push("p", "ok0", huge, "ok1")
	// Bisecting a batch around a 6 MB record takes seconds under -race on
	// a loaded machine: the bound is generous, the order checks are below.
	gatewaytest.Eventually(t, time.Minute, func() bool { return len(src.doneIDs()) == 3 }, "records done")
	f := r.fails.all()
	if len(f) != 1 || f[0]["requestContext"].(map[string]any)["condition"] != sources.ConditionPayloadTooLarge ||
		f[0]["responseContext"] != nil || !strings.Contains(f[0]["reason"].(string), "limit") {
		t.Fatalf("failure records %v", f)
	}
	if got := flat(r.log.all()); !slices.Equal(got, []string{"ok0", "ok1"}) {
		t.Fatalf("function saw %v, want the two records that fit", got)
	}
}

// gatedDone is an ordered memSource whose Done calls wait for gate and
// record what was going on when they ran.
type gatedDone struct {
	*memSource
	log  *fnLog
	gate chan struct{}

	mu        sync.Mutex
	calls     [][]string
	active    int  // Done calls running
	overlap   bool // two Done calls ran at once
	early     bool // a Done named a record the function had not seen
	closeBusy bool // Close ran while a Done was running
}

func (g *gatedDone) Ordered() bool { return true }

func (g *gatedDone) Done(ctx context.Context, recs []*sources.Record) error {
	seen := map[string]bool{}
	for _, id := range flat(g.log.all()) {
		seen[id] = true
	}
	g.mu.Lock()
	g.active++
	g.overlap = g.overlap || g.active > 1
	var call []string
	for _, r := range recs {
		call = append(call, r.ID)
		g.early = g.early || !seen[r.ID]
	}
	g.calls = append(g.calls, call)
	g.mu.Unlock()
	<-g.gate
	err := g.memSource.Done(ctx, recs)
	g.mu.Lock()
	g.active--
	g.mu.Unlock()
	return err
}

func (g *gatedDone) Close() error {
	g.mu.Lock()
	g.closeBusy = g.closeBusy || g.active > 0
	g.mu.Unlock()
	return g.memSource.Close()
}

func (g *gatedDone) doneCalls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

// An ordered batch's checkpoint runs in the background: the partition's
// next batch is invoked while it is outstanding, yet checkpoints go out one
// at a time, in order, and only for batches the function has finished.
func TestOrderedCheckpointOverlapsTheNextBatch(t *testing.T) {
	g := &gatedDone{memSource: &memSource{}, gate: make(chan struct{})}
	t.Cleanup(func() {
		// Runs after the manager stopped (cleanups run last first).
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.closeBusy {
			t.Error("the source was closed while a checkpoint was still running")
		}
	})
	es := &specs.EventSource{Type: "mem", BatchSize: 2, MaximumRetryAttempts: intp(-1)}
	r := start(t, es, g, nil, 1)
	g.log = r.log // before any record exists, so before any Done
	var open sync.Once
	release := func() { open.Do(func() { close(g.gate) }) }
	t.Cleanup(release) // a failed test must not leave the manager stuck
	want := ids("c", 6)
	g.push("p", want...)
	// The first batch's checkpoint is held at the gate; the second batch
	// still reaches the function.
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(r.log.all()) >= 2 },
		"the second batch to be invoked while the first one's checkpoint is outstanding (batches %v)", r.log.all())
	if n := g.doneCalls(); n != 1 {
		t.Fatalf("%d checkpoints started while the first was outstanding, want 1", n)
	}
	if got := len(g.doneIDs()); got != 0 {
		t.Fatalf("%d records checkpointed before the gate opened", got)
	}
	release()
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(g.doneIDs()) == len(want) },
		"every record checkpointed: %v", g.doneIDs())
	if got := g.doneIDs(); !slices.Equal(got, want) {
		t.Fatalf("checkpointed %v, want %v in order", got, want)
	}
	if got := flat(r.log.all()); !slices.Equal(got, want) {
		t.Fatalf("function saw %v, want %v in order", got, want)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.overlap {
		t.Error("two checkpoints of one partition ran at once")
	}
	if g.early {
		t.Errorf("a checkpoint named records the function had not seen: %v", g.calls)
	}
}

// pauserMem is an ordered memSource that records Pause and Resume.
type pauserMem struct {
	*memSource
	mu     sync.Mutex
	paused []string
}

func (p *pauserMem) Ordered() bool { return true }

func (p *pauserMem) Pause(parts []string) {
	p.mu.Lock()
	p.paused = append(p.paused, parts...)
	p.mu.Unlock()
}

func (p *pauserMem) Resume([]string) {}

func (p *pauserMem) pauses() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.paused)
}

// A lone partition is never paused, however far polling runs ahead: no
// other partition could use the fetch, and a pause makes the client drop
// and fetch again what it holds. The poller waits for room instead, and
// the buffer stays at two batches.
func TestLonePartitionIsNotPaused(t *testing.T) {
	src := &pauserMem{memSource: &memSource{}}
	es := &specs.EventSource{Type: "mem", BatchSize: 2, MaximumRetryAttempts: intp(-1)}
	r := start(t, es, src, nil, 1)
	want := ids("l", 40)
	src.push("only", want...)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == len(want) },
		"every record checkpointed: %v", src.doneIDs())
	if got := flat(r.log.all()); !slices.Equal(got, want) {
		t.Fatalf("function saw %v, want %v in order", got, want)
	}
	if p := src.pauses(); len(p) > 0 {
		t.Fatalf("paused %v", p)
	}
}

// A partition with two batches buffered is paused while another partition
// still has room, so the other keeps getting records.
func TestFullPartitionIsPausedForAnother(t *testing.T) {
	src := &pauserMem{memSource: &memSource{}}
	es := &specs.EventSource{Type: "mem", BatchSize: 2, MaximumRetryAttempts: intp(-1)}
	r := start(t, es, src, func(ids []string) (string, string) {
		if strings.HasPrefix(ids[0], "slow") {
			return "error", "" // holds its partition: retried forever
		}
		return "", ""
	}, 2)
	src.push("fast", "fast0")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 1 }, "the fast partition's first record done")
	src.push("slow", ids("slow", 8)...)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return slices.Contains(src.pauses(), "slow") },
		"the slow partition to be paused (pauses %v, batches %d)", src.pauses(), len(r.log.all()))
	if slices.Contains(src.pauses(), "fast") {
		t.Fatalf("paused %v; the fast partition never held two batches", src.pauses())
	}
}

// A lone partition that is stuck retrying a batch with two more buffered
// is paused, so the poller keeps polling and a partition that shows up
// later still flows.
func TestStuckLonePartitionIsPausedSoOthersFlow(t *testing.T) {
	src := &pauserMem{memSource: &memSource{}}
	es := &specs.EventSource{Type: "mem", BatchSize: 2, MaximumRetryAttempts: intp(-1)}
	start(t, es, src, func(ids []string) (string, string) {
		if strings.HasPrefix(ids[0], "stuck") {
			return "error", ""
		}
		return "", ""
	}, 2)
	src.push("stuck", ids("stuck", 10)...)
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return slices.Contains(src.pauses(), "stuck") },
		"the stuck partition to be paused (pauses %v)", src.pauses())
	src.push("later", "later0", "later1", "later2")
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == 3 },
		"the later partition's records done while the stuck one retries: %v", src.doneIDs())
	if got := src.doneIDs(); !slices.Equal(got, []string{"later0", "later1", "later2"}) {
		t.Fatalf("done %v", got)
	}
}

// pushKeyed adds records of partition with key (Record.Key).
func (s *memSource) pushKeyed(partition, key string, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.pending = append(s.pending, &sources.Record{ID: id, Partition: partition, Key: key, Time: time.Now(), Size: len(id)})
	}
	s.signalLocked()
}

// twoLanes returns two keys that take different lanes under factor.
func twoLanes(t *testing.T, factor int) (string, string) {
	t.Helper()
	for i := 1; i < 100; i++ {
		b := fmt.Sprintf("key%d", i)
		if sources.Lane("key0", "", factor) != sources.Lane(b, "", factor) {
			return "key0", b
		}
	}
	t.Fatal("no two keys in different lanes")
	return "", ""
}

// With parallelization_factor, batches of two lanes of one partition run
// at once (the first batch of key a only finishes once a batch of key b
// has reached the function), each key keeps its order, a failing lane is
// retried while the other goes on, and the partition's checkpoints still
// name its records in partition order: b's records, finished first, are
// only checkpointed once a's earlier ones are.
func TestLanesOfOnePartitionRunAtOnceAndCheckpointInOrder(t *testing.T) {
	const factor = 4
	keyA, keyB := twoLanes(t, factor)
	src := &memSource{}
	bSeen := make(chan struct{})
	var once sync.Once
	var aFailures atomic.Int32
	es := &specs.EventSource{Type: "mem", BatchSize: 2, MaximumRetryAttempts: intp(-1), ParallelizationFactor: factor}
	r := start(t, es, orderedMem{src}, func(ids []string) (string, string) {
		switch {
		case strings.HasPrefix(ids[0], "b"):
			once.Do(func() { close(bSeen) })
		case ids[0] == "a00":
			select {
			case <-bSeen:
			case <-time.After(10 * time.Second):
				t.Error("a batch of key b never ran while key a's first batch was in flight")
			}
			if aFailures.Add(1) <= 2 {
				return "error", "" // key a's lane retries; key b's goes on
			}
		}
		return "", ""
	}, 4)
	var want []string
	for i := range 10 {
		a, b := fmt.Sprintf("a%02d", i), fmt.Sprintf("b%02d", i)
		src.pushKeyed("p", keyA, a)
		src.pushKeyed("p", keyB, b)
		want = append(want, a, b)
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return len(src.doneIDs()) == len(want) },
		"every record checkpointed: %v", src.doneIDs())
	if got := src.doneIDs(); !slices.Equal(got, want) {
		t.Fatalf("checkpoints named %v, want partition order %v", got, want)
	}
	var as, bs []string
	seen := map[string]bool{}
	for _, id := range flat(r.log.all()) {
		if seen[id] {
			continue // a retry of key a's first batch
		}
		seen[id] = true
		if id[0] == 'a' {
			as = append(as, id)
		} else {
			bs = append(bs, id)
		}
	}
	if !slices.IsSorted(as) || !slices.IsSorted(bs) {
		t.Fatalf("order per key broken: a %v, b %v", as, bs)
	}
	if n := aFailures.Load(); n < 3 {
		t.Fatalf("key a's first batch ran %d times, want 2 failures and a success", n)
	}
}

// A stuck lane does not stop its partition's other lanes: every record of
// the healthy lane reaches the function while the stuck one retries, and
// nothing is checkpointed past the stuck record. What the partition holds
// is bounded: with more than 20 batches per lane polled it is paused.
func TestAStuckLaneLetsOtherLanesFlowUntilTheHeldBound(t *testing.T) {
	const factor = 2
	keyA, keyB := twoLanes(t, factor)
	src := &pauserMem{memSource: &memSource{}}
	es := &specs.EventSource{Type: "mem", BatchSize: 2, MaximumRetryAttempts: intp(-1), ParallelizationFactor: factor}
	r := start(t, es, src, func(ids []string) (string, string) {
		if strings.HasPrefix(ids[0], "a") {
			return "error", "" // key a's lane retries forever
		}
		return "", ""
	}, 2)
	src.pushKeyed("p", keyA, "a0")
	src.pushKeyed("p", keyB, ids("b", 200)...)
	bSeen := func() int {
		n := map[string]bool{}
		for _, id := range flat(r.log.all()) {
			if id[0] == 'b' {
				n[id] = true
			}
		}
		return len(n)
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return bSeen() == 200 },
		"every record of the healthy lane reaches the function while the other lane is stuck (seen %d)", bSeen())
	if !slices.Contains(src.pauses(), "p") {
		t.Fatalf("the partition holding 201 records behind a stuck one was not paused (pauses %v)", src.pauses())
	}
	if d := src.doneIDs(); len(d) > 0 {
		t.Fatalf("checkpointed %v past the stuck record a0", d)
	}
}
