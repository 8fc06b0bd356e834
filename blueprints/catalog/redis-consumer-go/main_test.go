package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

func TestHandleStopsAtTheFirstFailure(t *testing.T) {
	ev := Event{Records: []EventRecord{
		{ID: "1-0", Data: []byte(`{"order_id":"a","amount":1}`)},
		{ID: "2-0", Data: []byte(`{"order_id":"b"}`)},
		{ID: "3-0", Data: []byte(`broken`)},
		{ID: "4-0", Data: []byte(`{"order_id":"d","amount":1}`)},
	}}
	resp, err := handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	if want := `{"batchItemFailures":[{"itemIdentifier":"2-0"},{"itemIdentifier":"3-0"},{"itemIdentifier":"4-0"}]}`; string(b) != want {
		t.Fatalf("response %s, want %s", b, want)
	}
}

func TestSampleEvents(t *testing.T) {
	for file, want := range map[string]string{
		"events/batch.json":         `{"batchItemFailures":[]}`,
		"events/batch-one-bad.json": `{"batchItemFailures":[{"itemIdentifier":"1796278800123-0"},{"itemIdentifier":"1796278800200-0"}]}`,
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if ev.EventSource != "nimbus:redis" || len(ev.Records) == 0 || len(ev.Records[0].Data) == 0 {
			t.Fatalf("%s decoded to %+v", file, ev)
		}
		resp, _ := handle(context.Background(), ev)
		if got, _ := json.Marshal(resp); string(got) != want {
			t.Errorf("%s: %s, want %s", file, got, want)
		}
	}
}
