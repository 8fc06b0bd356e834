package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

func TestHandleReportsOnlyFailedMessages(t *testing.T) {
	ev := NATSEvent{Records: []NATSEventRecord{
		{Subject: "orders.eu", Sequence: 10, Data: []byte(`{"order_id":"a","amount":2}`)},
		{Subject: "orders.eu", Sequence: 11, Data: []byte(`{"amount":2}`)},
		{Subject: "orders.us", Sequence: 12, Data: []byte(`[]`)},
		{Subject: "orders.us", Sequence: 13, Data: []byte(`{"order_id":"d","amount":1}`)},
	}}
	resp, err := handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	if want := `{"batchItemFailures":[{"itemIdentifier":"11"},{"itemIdentifier":"12"}]}`; string(b) != want {
		t.Fatalf("response %s, want %s", b, want)
	}
}

// The samples decode (base64 data, RFC 3339 timestamps) as Nimbus sends them.
func TestSampleEvents(t *testing.T) {
	for file, want := range map[string]string{
		"events/batch.json":         `{"batchItemFailures":[]}`,
		"events/batch-one-bad.json": `{"batchItemFailures":[{"itemIdentifier":"1043"}]}`,
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ev NATSEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if ev.EventSource != "nimbus:nats" || len(ev.Records) == 0 || ev.Records[0].Timestamp.IsZero() {
			t.Fatalf("%s decoded to %+v", file, ev)
		}
		resp, _ := handle(context.Background(), ev)
		if got, _ := json.Marshal(resp); string(got) != want {
			t.Errorf("%s: %s, want %s", file, got, want)
		}
	}
}
