package kafka

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// The event as types for encoding/json: the reference Source.Event's
// one-pass writer is held to, byte for byte.

// event is Lambda's self-managed Kafka event (aws-lambda-go's
// events.KafkaEvent). Self-managed clusters have no eventSourceArn.
type event struct {
	EventSource      string                    `json:"eventSource"`
	BootstrapServers string                    `json:"bootstrapServers"`
	Records          map[string][]*eventRecord `json:"records"`
}

// eventRecord is one record of the event. Key and Value are base64 and are
// left out when the record has none (a null key, a tombstone); header values
// are byte arrays written as Java bytes, -128…127, which is what Lambda sends
// and what aws-lambda-go's JSONNumberBytes decodes.
type eventRecord struct {
	Topic         string              `json:"topic"`
	Partition     int32               `json:"partition"`
	Offset        int64               `json:"offset"`
	Timestamp     int64               `json:"timestamp"`
	TimestampType string              `json:"timestampType"`
	Key           *string             `json:"key,omitempty"`
	Value         *string             `json:"value,omitempty"`
	Headers       []map[string]jbytes `json:"headers"`
}

// jbytes marshals as a JSON array of signed bytes.
type jbytes []byte

func (b jbytes) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 2+4*len(b))
	out = append(out, '[')
	for i, c := range b {
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendInt(out, int64(int8(c)), 10)
	}
	return append(out, ']'), nil
}

func newEventRecord(kr *kgo.Record) *eventRecord {
	er := &eventRecord{
		Topic:         kr.Topic,
		Partition:     kr.Partition,
		Offset:        kr.Offset,
		Timestamp:     kr.Timestamp.UnixMilli(),
		TimestampType: timestampType(kr),
		Headers:       make([]map[string]jbytes, 0, len(kr.Headers)),
	}
	if kr.Key != nil {
		k := base64.StdEncoding.EncodeToString(kr.Key)
		er.Key = &k
	}
	if kr.Value != nil {
		v := base64.StdEncoding.EncodeToString(kr.Value)
		er.Value = &v
	}
	for _, h := range kr.Headers {
		er.Headers = append(er.Headers, map[string]jbytes{h.Key: jbytes(h.Value)})
	}
	return er
}

// refEvent is the event encoding/json writes for krs.
func refEvent(servers string, krs []*kgo.Record) []byte {
	ev := event{EventSource: EventSource, BootstrapServers: servers, Records: map[string][]*eventRecord{}}
	for _, kr := range krs {
		key := topicPartition{kr.Topic, kr.Partition}.String()
		ev.Records[key] = append(ev.Records[key], newEventRecord(kr))
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// TestEventMatchesEncodingJSON holds the one-pass writer to encoding/json's
// bytes: several partitions out of key order, keys and values absent, empty
// and binary, headers with keys that need escaping.
func TestEventMatchesEncodingJSON(t *testing.T) {
	ts := time.UnixMilli(1_700_000_000_123)
	krs := []*kgo.Record{
		{Topic: "orders.v2", Partition: 10, Offset: 7, Timestamp: ts, Key: []byte("k"), Value: []byte(`{"a":1}`)},
		{Topic: "orders.v2", Partition: 2, Offset: 0, Timestamp: ts, Value: []byte{}},
		{Topic: "orders.v2", Partition: 10, Offset: 8, Timestamp: ts.Add(time.Hour), Key: []byte{}},
		{Topic: "a-b_c", Partition: 0, Offset: 1 << 40, Timestamp: time.UnixMilli(-5),
			Value: []byte{0, 0x80, 0xff, '<'}, Headers: []kgo.RecordHeader{
				{Key: "plain", Value: []byte("v")},
				{Key: "needs \"escaping\" <&> \u2028 \n\x01 é", Value: []byte{0x80, 0x7f}},
				{Key: "", Value: nil},
				{Key: string([]byte{0xff, 'x'}), Value: []byte{}},
			}},
		{Topic: "orders.v2", Partition: 2, Offset: 1, Timestamp: ts},
	}
	for _, servers := range [][]string{{"b1:9092", "b2:9092"}, {"host<1>:9092"}} {
		s := &Source{servers: servers}
		for n := 1; n <= len(krs); n++ {
			recs := make([]*sources.Record, n)
			for i, kr := range krs[:n] {
				recs[i] = &sources.Record{ID: strconv.FormatInt(kr.Offset, 10), Size: elementSize(kr), Handle: kr}
			}
			got, err := s.Event(recs)
			if err != nil {
				t.Fatal(err)
			}
			if want := refEvent(strings.Join(servers, ","), krs[:n]); !bytes.Equal(got, want) {
				t.Errorf("%d records:\n got %s\nwant %s", n, got, want)
			}
		}
	}
}
