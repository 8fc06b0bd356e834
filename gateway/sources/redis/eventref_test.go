package redis

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// refEvent is the event encoding/json writes for es: the reference
// Source.Event's one-pass writer is held to, byte for byte.
func refEvent(t *testing.T, s *Source, es []*entry) []byte {
	t.Helper()
	ev := Event{EventSource: EventSource, EventSourceArn: s.arn, Records: make([]EventRecord, 0, len(es))}
	for _, e := range es {
		data, err := e.data()
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, EventRecord{Stream: s.stream, ID: e.id, Timestamp: e.ms(), Fields: e.fields, Data: data})
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEventMatchesEncodingJSON: entries with and without a data field,
// empty ones, fields in no particular order and names and values that
// need escaping or are not UTF-8.
func TestEventMatchesEncodingJSON(t *testing.T) {
	es := []*entry{
		{id: "1718000000000-0", fields: map[string]string{"data": `{"a":1}`}},
		{id: "1718000000001-7", fields: map[string]string{"z": "last", "a": "first", "m": "<b>&amp;</b>", "data": ""}},
		{id: "1718000000002-0", fields: map[string]string{"kind": "no data field", "n": "3"}},
		{id: "1718000000003-0", fields: map[string]string{}},
		{id: "1718000000004-0", fields: map[string]string{"quote\"back\\slash": "line\nbreak\x01 é \u2028", string([]byte{0xff}): "x", "data": string([]byte{0, 0x80, 0xff})}},
	}
	for _, s := range []*Source{
		{arn: "redis://localhost:6379/0/orders", stream: "orders"},
		{arn: "redis://h/1/odd<&>", stream: "odd<&>"},
	} {
		for n := 0; n <= len(es); n++ {
			recs := make([]*sources.Record, n)
			for i, e := range es[:n] {
				recs[i] = &sources.Record{ID: e.id, Size: e.size(), Handle: e}
			}
			got, err := s.Event(recs)
			if err != nil {
				t.Fatal(err)
			}
			if want := refEvent(t, s, es[:n]); !bytes.Equal(got, want) {
				t.Errorf("%d entries:\n got %s\nwant %s", n, got, want)
			}
		}
	}
}
