package natsjs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/specs"
)

// env is an embedded JetStream server and a client connection to it.
type env struct {
	srv *natsembed.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, nc: nc, js: js}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) stream(t *testing.T, name string, retention jetstream.RetentionPolicy, subjects ...string) {
	t.Helper()
	_, err := e.js.CreateStream(ctxT(t), jetstream.StreamConfig{Name: name, Subjects: subjects, Retention: retention, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) publish(t *testing.T, subject, data string) uint64 {
	t.Helper()
	ack, err := e.js.Publish(ctxT(t), subject, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// config is a mapping's Config. Its spec has a filter, so records carry
// the Filter view the tests read payloads from (the engine, not the
// source, applies it).
func config(nc *nats.Conn, es *specs.EventSource) sources.Config {
	if es.Group == "" {
		es.Group = specs.DefaultGroup("fn", "src")
	}
	if es.Filters == nil {
		es.Filters = []string{`{"data":[{"exists":true}]}`}
	}
	return sources.Config{UUID: "7b0c3e0e-3f4e-4d7e-9a55-1f2b3c4d5e6f", Function: "fn", Spec: es, Member: "m1",
		FunctionTimeout: 3 * time.Second, NATS: nc, Region: "us-east-1", AccountID: "000000000000"}
}

func open(t *testing.T, cfg sources.Config, opts Options) sources.Source {
	t.Helper()
	src, err := OpenWith(ctxT(t), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

// pollN polls until n records arrived (or fails after 10 s).
func pollN(t *testing.T, src sources.Source, n int) []*sources.Record {
	t.Helper()
	var got []*sources.Record
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		recs, err := src.Poll(ctxT(t), n-len(got), 200*time.Millisecond)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		got = append(got, recs...)
		return len(got) >= n
	}, "%d records, got %d", n, len(got))
	return got
}

func ids(recs []*sources.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func payloads(recs []*sources.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprint(r.Filter["data"])
	}
	return out
}

func bySubject(recs []*sources.Record) map[string][]string {
	out := map[string][]string{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], fmt.Sprint(r.Filter["data"]))
	}
	return out
}

// A limits stream is read in order per subject, Partition is the subject,
// and Done acks: nothing is left pending.
func TestOrderedStreamKeepsSubjectOrderAndDoneAcks(t *testing.T) {
	e := newEnv(t)
	e.stream(t, "ORD", jetstream.LimitsPolicy, "ord.>")
	for i := 1; i <= 3; i++ {
		e.publish(t, "ord.a", fmt.Sprintf("a%d", i))
		e.publish(t, "ord.b", fmt.Sprintf("b%d", i))
	}
	src := open(t, config(e.nc, &specs.EventSource{Stream: "ORD", StartingFrom: "TRIM_HORIZON"}), Options{})
	if o, ok := src.(sources.Ordered); !ok || !o.Ordered() {
		t.Fatal("a limits stream must give an ordered source")
	}
	if _, ok := src.(sources.Redeliverer); ok {
		t.Fatal("an ordered source must not be a Redeliverer")
	}
	recs := pollN(t, src, 6)
	if got := ids(recs); !slices.Equal(got, []string{"1", "2", "3", "4", "5", "6"}) {
		t.Fatalf("ids %v", got)
	}
	parts := bySubject(recs)
	if !slices.Equal(parts["ord.a"], []string{"a1", "a2", "a3"}) || !slices.Equal(parts["ord.b"], []string{"b1", "b2", "b3"}) {
		t.Fatalf("per subject %v", parts)
	}
	if recs[0].Deliveries != 1 || recs[0].Size != 2 || recs[0].Time.IsZero() {
		t.Fatalf("record 1 %+v", recs[0])
	}
	if err := src.Done(ctxT(t), recs); err != nil {
		t.Fatal(err)
	}
	lag := src.(sources.Lagger)
	// Acks are asynchronous: the server counts them a moment later.
	var l []sources.PartitionLag
	var err error
	gatewaytest.Eventually(t, 5*time.Second, func() bool {
		l, err = lag.Lag(ctxT(t))
		return err == nil && len(l) == 1 && l[0].Records == 0
	}, "Lag after Done = %+v, %v", l, err)
	e.publish(t, "ord.a", "a4")
	recs = pollN(t, src, 1)
	if recs[0].ID != "7" || recs[0].Partition != "ord.a" {
		t.Fatalf("after acking, got %s on %s", recs[0].ID, recs[0].Partition)
	}
}

// Records not Done stay with their Source while it reports progress, even
// well past AckWait; after Close they go to the next Source at once, in
// order, with a higher delivery count. The pin moves on Close, not after
// PinnedTTL (set to a minute here).
func TestOrderedHoldsRecordsUntilCloseThenRedelivers(t *testing.T) {
	e := newEnv(t)
	e.stream(t, "HOLD", jetstream.LimitsPolicy, "hold.>")
	for i := 1; i <= 3; i++ {
		e.publish(t, "hold.x", fmt.Sprintf("x%d", i))
	}
	const ackWait = 600 * time.Millisecond
	opts := Options{AckWait: ackWait, PinnedTTL: time.Minute}
	cfg := config(e.nc, &specs.EventSource{Stream: "HOLD", StartingFrom: "TRIM_HORIZON"})
	a, err := OpenWith(ctxT(t), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	recs := pollN(t, a, 3)
	if err := a.Done(ctxT(t), recs[:1]); err != nil {
		t.Fatal(err)
	}
	// Poll for four ack waits: the two records not Done must not come back.
	start := time.Now()
	for time.Since(start) < 4*ackWait {
		again, err := a.Poll(ctxT(t), 10, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) > 0 {
			t.Fatalf("records %v redelivered while still in progress", ids(again))
		}
	}
	cons, err := e.js.Consumer(ctxT(t), "HOLD", cfg.Spec.Group)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || info.NumAckPending != 2 {
		t.Fatalf("consumer redelivered %d, ack pending %d; want 0, 2", info.NumRedelivered, info.NumAckPending)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.Member = "m2"
	b := open(t, cfg, opts)
	got := pollN(t, b, 2)
	if !slices.Equal(ids(got), []string{"2", "3"}) || !slices.Equal(payloads(got), []string{"x2", "x3"}) {
		t.Fatalf("after Close the next source got %v %v", ids(got), payloads(got))
	}
	if got[0].Deliveries != 2 {
		t.Fatalf("redelivered record has Deliveries %d, want 2", got[0].Deliveries)
	}
}

// On a work-queue stream the source is queue-like: Redeliver brings the
// message back with Deliveries 2, and Done removes it from the stream.
func TestWorkQueueRedeliver(t *testing.T) {
	e := newEnv(t)
	e.stream(t, "WQ", jetstream.WorkQueuePolicy, "wq.>")
	e.publish(t, "wq.jobs", `{"job":1}`)
	// LATEST must not hide the queued message: a work queue has no position.
	src := open(t, config(e.nc, &specs.EventSource{Stream: "WQ", StartingFrom: "LATEST"}), Options{})
	if _, ok := src.(*QueueSource); !ok {
		t.Fatalf("a work-queue stream gives %T, want *QueueSource", src)
	}
	if src.(sources.Ordered).Ordered() {
		t.Fatal("a work-queue source must not be ordered")
	}
	rec := pollN(t, src, 1)[0]
	if rec.ID != "1" || rec.Deliveries != 1 || rec.Partition != "" {
		t.Fatalf("first delivery %+v", rec)
	}
	if d, ok := rec.Filter["data"].(map[string]any); !ok || d["job"] != float64(1) {
		t.Fatalf("filter data %#v", rec.Filter["data"])
	}
	if err := src.(sources.Redeliverer).Redeliver(ctxT(t), []*sources.Record{rec}, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	again := pollN(t, src, 1)[0]
	if again.ID != "1" || again.Deliveries != 2 {
		t.Fatalf("redelivery %+v", again)
	}
	if err := src.Done(ctxT(t), []*sources.Record{again}); err != nil {
		t.Fatal(err)
	}
	st, err := e.js.Stream(ctxT(t), "WQ")
	if err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, 5*time.Second, func() bool {
		info, err := st.Info(ctxT(t))
		return err == nil && info.State.Msgs == 0
	}, "the acked message leaves the work queue")
}

// Two sources on one durable share the messages: each message goes to
// exactly one of them.
func TestTwoSourcesOnOneDurableCompete(t *testing.T) {
	e := newEnv(t)
	e.stream(t, "JOBS", jetstream.WorkQueuePolicy, "jobs.>")
	const n = 20
	for i := 1; i <= n; i++ {
		e.publish(t, "jobs.x", fmt.Sprint(i))
	}
	cfg := config(e.nc, &specs.EventSource{Stream: "JOBS"})
	a := open(t, cfg, Options{})
	cfg.Member = "m2"
	b := open(t, cfg, Options{})
	seen := map[string]string{}
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		for name, src := range map[string]sources.Source{"a": a, "b": b} {
			recs, err := src.Poll(ctxT(t), 3, 100*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if other, dup := seen[r.ID]; dup {
					t.Fatalf("message %s went to %s and %s", r.ID, other, name)
				}
				seen[r.ID] = name
			}
		}
		return len(seen) == n
	}, "every message delivered once")
	var na, nb int
	for _, who := range seen {
		if who == "a" {
			na++
		} else {
			nb++
		}
	}
	if na == 0 || nb == 0 {
		t.Fatalf("a got %d, b got %d: both must get some", na, nb)
	}
}

// TRIM_HORIZON, LATEST and AT_TIMESTAMP start new durables where they
// say; an existing durable keeps its position whatever the spec says now.
func TestStartingPositions(t *testing.T) {
	e := newEnv(t)
	e.stream(t, "POS", jetstream.LimitsPolicy, "pos.>")
	e.publish(t, "pos.a", "m1")
	e.publish(t, "pos.a", "m2")
	st, err := e.js.Stream(ctxT(t), "POS")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := st.GetMsg(ctxT(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, "pos.a", "m3")

	trim := open(t, config(e.nc, &specs.EventSource{Stream: "POS", Group: "trim", StartingFrom: "TRIM_HORIZON"}), Options{})
	if got := payloads(pollN(t, trim, 3)); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("TRIM_HORIZON got %v", got)
	}
	at := open(t, config(e.nc, &specs.EventSource{Stream: "POS", Group: "at", StartingFrom: "AT_TIMESTAMP",
		StartingTimestamp: m2.Time.Format(time.RFC3339Nano)}), Options{})
	if got := payloads(pollN(t, at, 2)); !slices.Equal(got, []string{"m2", "m3"}) {
		t.Fatalf("AT_TIMESTAMP %s got %v", m2.Time.Format(time.RFC3339Nano), got)
	}
	latestCfg := config(e.nc, &specs.EventSource{Stream: "POS", Group: "latest", StartingFrom: "LATEST"})
	latest := open(t, latestCfg, Options{})
	if recs, err := latest.Poll(ctxT(t), 10, 300*time.Millisecond); err != nil || len(recs) != 0 {
		t.Fatalf("LATEST before new messages: %v, %v", ids(recs), err)
	}
	e.publish(t, "pos.a", "m4")
	got := pollN(t, latest, 1)
	if payloads(got)[0] != "m4" {
		t.Fatalf("LATEST got %v", payloads(got))
	}
	if err := latest.Done(ctxT(t), got); err != nil {
		t.Fatal(err)
	}
	if err := latest.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened as TRIM_HORIZON the durable keeps its place after m4.
	latestCfg.Spec.StartingFrom = "TRIM_HORIZON"
	re := open(t, latestCfg, Options{})
	e.publish(t, "pos.a", "m5")
	if got := payloads(pollN(t, re, 1)); got[0] != "m5" {
		t.Fatalf("reopened durable got %v, want m5", got)
	}

	if _, err := Open(ctxT(t), config(e.nc, &specs.EventSource{Stream: "POS", StartingFrom: "AT_TIMESTAMP", StartingTimestamp: "yesterday"})); err == nil {
		t.Fatal("a bad starting_position_timestamp must fail Open")
	}
}

// A missing stream is a Poll error that names it.
func TestMissingStreamPollErrorNamesIt(t *testing.T) {
	e := newEnv(t)
	src := open(t, config(e.nc, &specs.EventSource{Stream: "NOSUCHSTREAM", StartingFrom: "TRIM_HORIZON"}), Options{OpenTimeout: time.Second})
	_, err := src.Poll(ctxT(t), 1, 0)
	if err == nil || !strings.Contains(err.Error(), `"NOSUCHSTREAM"`) || !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("Poll error %v", err)
	}
	if !src.(sources.Ordered).Ordered() {
		t.Fatal("an unreadable stream leaves the source ordered")
	}
	// Once the stream exists the source reads it.
	e.stream(t, "NOSUCHSTREAM", jetstream.LimitsPolicy, "late.>")
	e.publish(t, "late.x", "hello")
	if got := payloads(pollN(t, src, 1)); got[0] != "hello" {
		t.Fatalf("got %v", got)
	}
}

// The event carries base64 data and every header; filters see the decoded
// payload; BatchInfo has the coordinates; Lag counts pending + ack pending.
func TestEventBatchInfoAndLag(t *testing.T) {
	e := newEnv(t)
	e.stream(t, "EV", jetstream.LimitsPolicy, "ev.>")
	msg := nats.NewMsg("ev.orders")
	msg.Data = []byte(`{"order":42,"item":"tea"}`)
	msg.Header.Add("Trace", "t1")
	msg.Header.Add("Trace", "t2")
	if _, err := e.js.PublishMsg(ctxT(t), msg); err != nil {
		t.Fatal(err)
	}
	bin := []byte{0, 1, 2, 255, 'x'}
	if _, err := e.js.Publish(ctxT(t), "ev.orders", bin); err != nil {
		t.Fatal(err)
	}
	e.publish(t, "ev.orders", "third")
	src := open(t, config(e.nc, &specs.EventSource{Stream: "EV", Subject: "ev.orders", StartingFrom: "TRIM_HORIZON"}), Options{})
	recs := pollN(t, src, 2)

	l, err := src.(sources.Lagger).Lag(ctxT(t))
	if err != nil || len(l) != 1 || l[0].Records != 3 || l[0].Partition != "ev.orders" {
		t.Fatalf("Lag = %+v, %v; want 3 (1 pending + 2 ack pending)", l, err)
	}

	if recs[0].Size != len(msg.Data)+len("Trace")*2+4 {
		t.Fatalf("size %d", recs[0].Size)
	}
	f := recs[0].Filter
	if f["stream"] != "EV" || f["subject"] != "ev.orders" || f["sequence"] != float64(1) {
		t.Fatalf("filter %#v", f)
	}
	if h := f["headers"].(map[string]any); h["Trace"] != "t1" {
		t.Fatalf("filter headers %#v", h)
	}
	if d := f["data"].(map[string]any); d["item"] != "tea" {
		t.Fatalf("filter data %#v", f["data"])
	}
	if s, ok := recs[1].Filter["data"].(string); !ok || s != string(bin) {
		t.Fatalf("non-JSON filter data %#v", recs[1].Filter["data"])
	}

	raw, err := src.Event(recs)
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.EventSource != "nimbus:nats" || ev.EventSourceArn != "nats:EV:ev.orders" || len(ev.Records) != 2 {
		t.Fatalf("event %s", raw)
	}
	r0, r1 := ev.Records[0], ev.Records[1]
	if r0.Stream != "EV" || r0.Subject != "ev.orders" || r0.Sequence != 1 || !bytes.Equal(r0.Data, msg.Data) ||
		!slices.Equal(r0.Headers["Trace"], []string{"t1", "t2"}) || !r0.Timestamp.Equal(recs[0].Time) {
		t.Fatalf("record 0 %+v", r0)
	}
	if r1.Sequence != 2 || !bytes.Equal(r1.Data, bin) {
		t.Fatalf("record 1 %+v", r1)
	}
	// On the wire: base64 data, RFC 3339 timestamps.
	var wire struct {
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		t.Fatal(err)
	}
	if wire.Records[1]["data"] != base64.StdEncoding.EncodeToString(bin) {
		t.Fatalf("data on the wire %v", wire.Records[1]["data"])
	}
	if ts, _ := wire.Records[0]["timestamp"].(string); !strings.HasSuffix(ts, "Z") {
		t.Fatalf("timestamp %q is not RFC 3339 UTC", ts)
	}
	if _, pinned := wire.Records[0]["headers"].(map[string]any)[pinHeader]; pinned {
		t.Fatal("the server's pin header leaked into the event")
	}

	key, v := src.BatchInfo(recs)
	bi := v.(*BatchInfo)
	if key != "NATSBatchInfo" || bi.Stream != "EV" || bi.Subject != "ev.orders" || bi.FirstSequence != 1 ||
		bi.LastSequence != 2 || bi.BatchSize != 2 || bi.ApproximateArrivalOfFirstRecord == "" {
		t.Fatalf("batch info %s %+v", key, bi)
	}
	if err := src.Done(ctxT(t), recs); err != nil {
		t.Fatal(err)
	}
	// Done acks without waiting for the server's confirmation (a
	// checkpoint per batch must not cost a round trip), so the consumer's
	// ack-pending count reaches the server a moment later.
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		l, err = src.(sources.Lagger).Lag(ctxT(t))
		return err == nil && l[0].Records == 1
	}, "the lag to count only the record not done")
}

// Credentials in the URL never show in errors or logs.
func TestCredentialsStayOutOfErrorsAndLogs(t *testing.T) {
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), Username: "nimbus", Password: "s3cr3t-pw", NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	addr := s.Addr().String()

	var logs gatewaytest.LogBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	for _, pw := range []string{"s3cr3t-pw", "wr0ng-pw"} {
		cfg := config(nil, &specs.EventSource{Stream: "MISSING", URL: "nats://nimbus:" + pw + "@" + addr})
		cfg.Logger = logger
		src := open(t, cfg, Options{OpenTimeout: 500 * time.Millisecond})
		_, err := src.Poll(ctxT(t), 1, 0)
		if err == nil {
			t.Fatalf("password %s: Poll of a missing stream succeeded", pw)
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("error shows the password: %v", err)
		}
		if pw == "s3cr3t-pw" && !strings.Contains(err.Error(), `"MISSING"`) {
			t.Fatalf("error does not name the stream: %v", err)
		}
		_ = src.Close()
	}
	if strings.Contains(logs.String(), "s3cr3t-pw") || strings.Contains(logs.String(), "wr0ng-pw") {
		t.Fatalf("logs show a password:\n%s", logs.String())
	}
	if got := redactURL("nats://u:p@h1:4222,nats://tok@h2:4222"); got != "nats://h1:4222,nats://h2:4222" {
		t.Fatalf("redactURL = %s", got)
	}
}

// An interest stream is queue-like too, and keeps its starting position
// (unlike a work queue).
func TestInterestStreamIsQueueLike(t *testing.T) {
	e := newEnv(t)
	e.stream(t, "INT", jetstream.InterestPolicy, "int.>")
	src := open(t, config(e.nc, &specs.EventSource{Stream: "INT", StartingFrom: "LATEST"}), Options{})
	if _, ok := src.(*QueueSource); !ok {
		t.Fatalf("an interest stream gives %T, want *QueueSource", src)
	}
	if recs, err := src.Poll(ctxT(t), 5, 0); err != nil || len(recs) != 0 {
		t.Fatalf("first poll %v, %v", ids(recs), err)
	}
	e.publish(t, "int.a", "hello")
	if got := pollN(t, src, 1); got[0].ID != "1" || got[0].Partition != "" || payloads(got)[0] != "hello" {
		t.Fatalf("got %+v", got[0])
	}
}

// A member that dies holding records (no Close, no acks): the next member
// must see those records, redelivered after the ack wait, before any newer
// record of their subject.
func TestOrderedRecordsOfADeadMemberComeFirst(t *testing.T) {
	e := newEnv(t)
	e.stream(t, "DEAD", jetstream.LimitsPolicy, "dead.>")
	for i := 1; i <= 4; i++ {
		e.publish(t, "dead.x", fmt.Sprintf("x%d", i))
	}
	const ackWait = 2 * time.Second
	opts := Options{AckWait: ackWait, PinnedTTL: ackWait}
	// The dying member has its own connection, closed without Close.
	nc2, err := nats.Connect(e.srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(nc2, &specs.EventSource{Stream: "DEAD", StartingFrom: "TRIM_HORIZON"})
	a, err := OpenWith(ctxT(t), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	recs := pollN(t, a, 4)
	if err := a.Done(ctxT(t), recs[:1]); err != nil {
		t.Fatal(err)
	}
	nc2.Close() // dies holding x2..x4
	for i := 5; i <= 7; i++ {
		e.publish(t, "dead.x", fmt.Sprintf("x%d", i))
	}
	cfg = config(e.nc, &specs.EventSource{Stream: "DEAD", StartingFrom: "TRIM_HORIZON"})
	cfg.Member = "m2"
	b := open(t, cfg, opts)
	got := pollN(t, b, 6)
	if want := []string{"x2", "x3", "x4", "x5", "x6", "x7"}; !slices.Equal(payloads(got), want) {
		t.Fatalf("next member got %v, want %v", payloads(got), want)
	}
}

// Without filters no record carries a Filter view: nothing would read it.
func TestNoFilterViewWithoutFilters(t *testing.T) {
	e := newEnv(t)
	e.stream(t, "NF", jetstream.LimitsPolicy, "nf.>")
	e.publish(t, "nf.a", `{"a":1}`)
	src := open(t, config(e.nc, &specs.EventSource{Stream: "NF", StartingFrom: "TRIM_HORIZON", Filters: []string{}}), Options{})
	recs := pollN(t, src, 1)
	if recs[0].Filter != nil {
		t.Fatalf("record %s has filter view %#v, want none", recs[0].ID, recs[0].Filter)
	}
}
