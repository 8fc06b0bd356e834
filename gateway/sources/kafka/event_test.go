package kafka

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/internal/kafkatest"
)

func TestEventDecodesAsAWSKafkaEvent(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"ev": 2})
	p := producer(t, addrs)
	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	binary := []byte{0x00, 0x7f, 0x80, 0xff, 'h'}
	produce(t, p,
		&kgo.Record{Topic: "ev", Partition: 0, Key: []byte("k1"), Value: []byte(` {"device":"AB1","n":3}`), Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-1")}, {Key: "bin", Value: binary}}},
		&kgo.Record{Topic: "ev", Partition: 0, Value: []byte("plain text"), Timestamp: ts.Add(time.Second)},
		&kgo.Record{Topic: "ev", Partition: 1, Key: []byte("gone"), Timestamp: ts.Add(2 * time.Second)}, // tombstone
	)
	s := openSource(t, config(t, addrs, "events", "TRIM_HORIZON", "ev"))
	recs := pollN(t, s, 3)
	parts := byPartition(recs)
	batch := append(parts["ev-0"], parts["ev-1"]...)

	raw, err := s.Event(batch)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KafkaEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("aws-lambda-go cannot decode the event: %v\n%s", err, raw)
	}
	if ev.EventSource != "SelfManagedKafka" || ev.EventSourceARN != "" || ev.BootstrapServers != strings.Join(addrs, ",") {
		t.Fatalf("event header = %q %q %q", ev.EventSource, ev.EventSourceARN, ev.BootstrapServers)
	}
	if len(ev.Records) != 2 || len(ev.Records["ev-0"]) != 2 || len(ev.Records["ev-1"]) != 1 {
		t.Fatalf("records = %+v", ev.Records)
	}
	r0, r1, r2 := ev.Records["ev-0"][0], ev.Records["ev-0"][1], ev.Records["ev-1"][0]
	if r0.Topic != "ev" || r0.Partition != 0 || r0.Offset != 0 || r1.Offset != 1 || r2.Partition != 1 || r2.Offset != 0 {
		t.Errorf("coordinates: %+v %+v %+v", r0, r1, r2)
	}
	if !r0.Timestamp.Equal(ts) || !r1.Timestamp.Equal(ts.Add(time.Second)) || r0.TimestampType != "CREATE_TIME" {
		t.Errorf("timestamps: %v %v %q, want %v", r0.Timestamp.Time, r1.Timestamp.Time, r0.TimestampType, ts)
	}
	if got := decode(t, r0.Key); got != "k1" {
		t.Errorf("key = %q", got)
	}
	if got := decode(t, r0.Value); got != ` {"device":"AB1","n":3}` {
		t.Errorf("value = %q", got)
	}
	if r1.Key != "" || decode(t, r1.Value) != "plain text" {
		t.Errorf("record without key: key %q value %q", r1.Key, r1.Value)
	}
	if decode(t, r2.Key) != "gone" || r2.Value != "" {
		t.Errorf("tombstone: key %q value %q", r2.Key, r2.Value)
	}
	wantHeaders := []map[string]events.JSONNumberBytes{{"trace": []byte("t-1")}, {"bin": binary}}
	if !reflect.DeepEqual(r0.Headers, wantHeaders) {
		t.Errorf("headers = %v, want %v", r0.Headers, wantHeaders)
	}
	if r1.Headers == nil || len(r1.Headers) != 0 {
		t.Errorf("no headers must be an empty list, got %#v", r1.Headers)
	}

	// The wire form: header bytes as Java bytes, absent key and value
	// left out rather than null.
	for _, want := range []string{`"bin":[0,127,-128,-1,104]`, `"headers":[]`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("event lacks %s:\n%s", want, raw)
		}
	}
	var wire struct {
		Records map[string][]map[string]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		t.Fatal(err)
	}
	if _, ok := wire.Records["ev-0"][1]["key"]; ok {
		t.Error("a record without key has a key field")
	}
	if _, ok := wire.Records["ev-1"][0]["value"]; ok {
		t.Error("a tombstone has a value field")
	}

	// Size is the record's element of the event, byte for byte.
	for _, r := range batch {
		el, err := json.Marshal(newEventRecord(r.Handle.(*kgo.Record)))
		if err != nil {
			t.Fatal(err)
		}
		if r.Size != len(el) {
			t.Errorf("record %s/%s size %d, element is %d bytes: %s", r.Partition, r.ID, r.Size, len(el), el)
		}
	}

	// The filter view: value as JSON when it is an object, else a string.
	f0, f1 := parts["ev-0"][0].Filter, parts["ev-0"][1].Filter
	if v, ok := f0["value"].(map[string]any); !ok || v["device"] != "AB1" || v["n"] != float64(3) {
		t.Errorf("JSON value in filter view = %#v", f0["value"])
	}
	if f1["value"] != "plain text" {
		t.Errorf("plain value in filter view = %#v", f1["value"])
	}
	if f0["topic"] != "ev" || f0["partition"] != float64(0) || f0["offset"] != float64(0) ||
		f0["timestamp"] != float64(ts.UnixMilli()) || f0["timestampType"] != "CREATE_TIME" ||
		f0["key"] != base64.StdEncoding.EncodeToString([]byte("k1")) {
		t.Errorf("filter metadata = %#v", f0)
	}
	if _, ok := f1["key"]; ok {
		t.Errorf("filter view of a record without key has key %#v", f1["key"])
	}
}

func TestBatchInfo(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"bi": 1})
	p := producer(t, addrs)
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	produce(t, p,
		&kgo.Record{Topic: "bi", Value: []byte("one"), Timestamp: ts},
		&kgo.Record{Topic: "bi", Value: []byte("two"), Timestamp: ts.Add(time.Second)},
		&kgo.Record{Topic: "bi", Value: []byte("three"), Timestamp: ts.Add(2 * time.Second)},
	)
	s := openSource(t, config(t, addrs, "info", "TRIM_HORIZON", "bi"))
	recs := pollN(t, s, 3)

	key, info := s.BatchInfo(recs[1:])
	if key != "KafkaBatchInfo" {
		t.Fatalf("key = %q", key)
	}
	ev, err := s.Event(recs[1:])
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"batchSize":2,"bootstrapServers":"` + strings.Join(addrs, ",") + `","payloadSize":` + itoa(len(ev)) +
		`,"recordsInfo":{"bi-0":{"firstRecordOffset":"1","lastRecordOffset":"2",` +
		`"firstRecordTimestamp":"2024-05-06T07:08:10.123Z","lastRecordTimestamp":"2024-05-06T07:08:11.123Z"}}}`
	if string(got) != want {
		t.Fatalf("batch info\n got %s\nwant %s", got, want)
	}
}

func TestProducerPublishesWithHeaders(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"dlq": 1})
	pr, err := NewProducer(addrs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	body := []byte(`{"requestContext":{"condition":"RetryAttemptsExhausted"}}`)
	if err := pr.Publish(ctx, "dlq", body, map[string]string{"nimbus-mapping": "m-1", "content-type": "application/json"}); err != nil {
		t.Fatal(err)
	}

	s := openSource(t, config(t, addrs, "reader", "TRIM_HORIZON", "dlq"))
	got := pollN(t, s, 1)[0].Handle.(*kgo.Record)
	if !bytes.Equal(got.Value, body) {
		t.Fatalf("value = %s", got.Value)
	}
	want := []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}, {Key: "nimbus-mapping", Value: []byte("m-1")}}
	if !reflect.DeepEqual(got.Headers, want) {
		t.Fatalf("headers = %v, want %v", got.Headers, want)
	}

	// A topic that does not exist is an error, not a hang.
	if err := pr.Publish(ctx, "no-such-topic", body, nil); err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Fatalf("publish to a missing topic: %v", err)
	}
	if _, err := NewProducer([]string{" "}, nil); err == nil {
		t.Fatal("producer without brokers accepted")
	}
}

func decode(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q is not base64: %v", s, err)
	}
	return string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }
