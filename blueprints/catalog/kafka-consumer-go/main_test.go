package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func record(offset int64, value string) events.KafkaRecord {
	return events.KafkaRecord{Topic: "orders", Offset: offset, Value: base64.StdEncoding.EncodeToString([]byte(value))}
}

func TestHandleReportsOnlyFailedRecords(t *testing.T) {
	ev := events.KafkaEvent{Records: map[string][]events.KafkaRecord{
		"orders-0": {
			record(1, `{"order_id":"a","amount":1}`),
			record(2, `not json`),
			record(3, `{"order_id":"","amount":1}`),
			record(4, `{"order_id":"d","amount":0}`),
			record(5, `{"order_id":"e","amount":3}`),
		},
	}}
	resp, err := handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range resp.BatchItemFailures {
		got = append(got, f.ItemIdentifier)
	}
	if want := []string{"2", "3", "4"}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("failures %v, want %v", got, want)
	}
}

func TestAllGoodIsAnEmptyList(t *testing.T) {
	resp, err := handle(context.Background(), events.KafkaEvent{Records: map[string][]events.KafkaRecord{
		"orders-0": {record(7, `{"order_id":"a","amount":1}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	if string(b) != `{"batchItemFailures":[]}` {
		t.Fatalf("response %s", b)
	}
}

func TestSampleEvents(t *testing.T) {
	for file, want := range map[string]int{"events/batch.json": 0, "events/batch-one-bad.json": 1} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ev events.KafkaEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		resp, _ := handle(context.Background(), ev)
		if len(resp.BatchItemFailures) != want {
			t.Errorf("%s: %d failures, want %d", file, len(resp.BatchItemFailures), want)
		}
	}
}
