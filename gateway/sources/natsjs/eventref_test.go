package natsjs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// refMsg is a message as Event reads it (subject, headers, data); the
// other methods are not called.
type refMsg struct {
	jetstream.Msg
	subject string
	header  nats.Header
	data    []byte
}

func (m refMsg) Subject() string      { return m.subject }
func (m refMsg) Headers() nats.Header { return m.header }
func (m refMsg) Data() []byte         { return m.data }

// refEvent is the event encoding/json writes for hs: the reference
// Source.Event's one-pass writer is held to, byte for byte.
func refEvent(t *testing.T, arn string, hs []*handle) []byte {
	t.Helper()
	ev := Event{EventSource: EventSource, EventSourceArn: arn, Records: make([]EventRecord, len(hs))}
	for i, h := range hs {
		hdr := map[string][]string{}
		for k, v := range h.msg.Headers() {
			if k != pinHeader {
				hdr[k] = v
			}
		}
		data := h.msg.Data()
		if data == nil {
			data = []byte{}
		}
		ev.Records[i] = EventRecord{Stream: h.meta.Stream, Subject: h.msg.Subject(), Sequence: h.meta.Sequence.Stream,
			Timestamp: h.meta.Timestamp.UTC(), Headers: hdr, Data: data}
	}
	b, err := json.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEventMatchesEncodingJSON: messages with and without headers and
// data, several values per header, the pin header left out, names that
// need escaping, timestamps in other zones and with and without
// fractions.
func TestEventMatchesEncodingJSON(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	msgs := []refMsg{
		{subject: "orders.new", data: []byte(`{"a":1}`)},
		{subject: "orders.new", header: nats.Header{"Trace": {"t1", "t2"}, "A": {"x"}, pinHeader: {"pin"}}, data: []byte{}},
		{subject: "odd.<&>", header: nats.Header{"K\"ey\\": {"v\n\x01 é \u2028"}, string([]byte{0xff}): {""}, "Nil": nil}},
		{subject: "bin", data: []byte{0, 0x80, 0xff}},
	}
	times := []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, berlin),
		time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC),
		time.Unix(0, 0),
	}
	hs := make([]*handle, len(msgs))
	recs := make([]*sources.Record, len(msgs))
	for i, m := range msgs {
		meta := &jetstream.MsgMetadata{Stream: "ORDERS", Timestamp: times[i]}
		meta.Sequence.Stream = uint64(i*1000 + 1)
		hs[i] = &handle{msg: m, meta: meta}
		recs[i] = &sources.Record{ID: strconv.FormatUint(meta.Sequence.Stream, 10), Size: recordSize(m), Handle: hs[i]}
	}
	for _, arn := range []string{"nats:ORDERS", "nats:ORDERS:odd.<&>"} {
		s := &Source{arn: arn}
		for n := 1; n <= len(msgs); n++ {
			got, err := s.Event(recs[:n])
			if err != nil {
				t.Fatal(err)
			}
			if want := refEvent(t, arn, hs[:n]); !bytes.Equal(got, want) {
				t.Errorf("%d messages:\n got %s\nwant %s", n, got, want)
			}
		}
	}
}
