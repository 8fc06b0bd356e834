package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startNATS runs a real NATS server with JetStream in the test process.
func startNATS(t *testing.T) *nats.Conn {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func post(body string) events.LambdaFunctionURLRequest {
	var r events.LambdaFunctionURLRequest
	r.RequestContext.HTTP.Method = http.MethodPost
	r.Body = body
	return r
}

// TestIngestThenProcess: orders POSTed to ingest land in the stream once
// (a retried POST is a duplicate); the processor prices what it reads and
// publishes the result, and reports an order it cannot price as failed.
func TestIngestThenProcess(t *testing.T) {
	nc := startNATS(t)
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	in := &Ingest{JS: js, Stream: "test-orders", Subject: "test.orders.new"}
	for i, tc := range []struct {
		body   string
		status int
		says   string
	}{
		{`{"id":"o1","customer":"ann","items":[{"sku":"tea","qty":2},{"sku":"cake","qty":1}]}`, http.StatusAccepted, `"sequence":1`},
		{`{"id":"o1","customer":"ann","items":[{"sku":"tea","qty":2},{"sku":"cake","qty":1}]}`, http.StatusAccepted, `"duplicate":true`},
		{`{"id":"o2","customer":"bob","items":[{"sku":"caviar","qty":1}]}`, http.StatusAccepted, `"sequence":2`},
		{`{"id":"o3","customer":"bob","items":[]}`, http.StatusBadRequest, "items must hold"},
		{`{"id":"o4","customer":"bob","items":[{"sku":"tea","qty":1}],"note":"x"}`, http.StatusBadRequest, "note"},
	} {
		r, err := in.Handle(ctx, post(tc.body))
		if err != nil || r.StatusCode != tc.status || !strings.Contains(r.Body, tc.says) {
			t.Fatalf("post %d: %v %d %s; want %d with %s", i, err, r.StatusCode, r.Body, tc.status, tc.says)
		}
	}
	r, _ := in.Handle(ctx, events.LambdaFunctionURLRequest{})
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `"waiting":2`) {
		t.Fatalf("GET: %d %s", r.StatusCode, r.Body)
	}

	// Read the stream as the event source would and hand the batch over.
	cons, err := js.CreateConsumer(ctx, "test-orders", jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var ev NATSEvent
	for m := range batch.Messages() {
		md, _ := m.Metadata()
		ev.Records = append(ev.Records, NATSRecord{Stream: md.Stream, Subject: m.Subject(), Sequence: md.Sequence.Stream, Data: m.Data()})
	}
	if len(ev.Records) != 2 {
		t.Fatalf("the stream holds %d orders, want 2", len(ev.Records))
	}
	results, err := nc.SubscribeSync("test.orders.processed")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&Process{Out: nc, Results: "test.orders.processed"}).Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "2" {
		t.Fatalf("failures %+v, want only sequence 2 (caviar)", resp.BatchItemFailures)
	}
	msg, err := results.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var p Priced
	if err := json.Unmarshal(msg.Data, &p); err != nil || p.ID != "o1" || p.TotalCents != 2*350+500 || p.Sequence != 1 {
		t.Fatalf("result %s (%v)", msg.Data, err)
	}
}

// TestProcessEventShape decodes the event exactly as Nimbus documents it.
func TestProcessEventShape(t *testing.T) {
	raw := `{"eventSource":"nimbus:nats","eventSourceArn":"nats:ORDERS","records":[{"stream":"ORDERS","subject":"o.new",` +
		`"sequence":7,"timestamp":"2024-03-15T10:01:02.123456789Z","headers":{},"data":"eyJpZCI6Im85In0="}]}`
	var ev NATSEvent
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Records[0].Sequence != 7 || string(ev.Records[0].Data) != `{"id":"o9"}` {
		t.Fatalf("decoded %+v", ev.Records[0])
	}
	resp, _ := (&Process{Out: nil, Results: "x"}).Handle(context.Background(), ev)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "7" {
		t.Fatalf("an order without customer or items must fail: %+v", resp)
	}
	b, _ := json.Marshal(BatchResponse{BatchItemFailures: []ItemFailure{{ItemIdentifier: "7"}}})
	if string(b) != `{"batchItemFailures":[{"itemIdentifier":"7"}]}` {
		t.Fatalf("response JSON %s", b)
	}
}

func TestRunChecksItsEnvironment(t *testing.T) {
	env := map[string]string{"NATS_URL": "nats://127.0.0.1:1", "STREAM": "s", "SUBJECT": "a", "RESULTS_SUBJECT": "b"}
	if err := run("other", func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "want ingest or process") {
		t.Errorf("unknown handler: %v", err)
	}
	delete(env, "STREAM")
	if err := run("ingest", func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "STREAM") {
		t.Errorf("without STREAM: %v", err)
	}
}
