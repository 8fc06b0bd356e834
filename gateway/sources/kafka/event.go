package kafka

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// EventSource is the eventSource of Lambda's self-managed Kafka event.
const EventSource = "SelfManagedKafka"

// BatchInfoKey is the on-failure record's key for a discarded Kafka batch.
const BatchInfoKey = "KafkaBatchInfo"

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

func timestampType(kr *kgo.Record) string {
	if kr.Attrs.TimestampType() == 1 {
		return "LOG_APPEND_TIME"
	}
	return "CREATE_TIME"
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

func handles(recs []*sources.Record) ([]*kgo.Record, error) {
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		kr, ok := r.Handle.(*kgo.Record)
		if !ok {
			return nil, fmt.Errorf("kafka: record %s was not read by a kafka source", r.ID)
		}
		krs[i] = kr
	}
	return krs, nil
}

// Event builds Lambda's self-managed Kafka event for recs, grouped under
// "<topic>-<partition>" in the order given.
func (s *Source) Event(recs []*sources.Record) (json.RawMessage, error) {
	krs, err := handles(recs)
	if err != nil {
		return nil, err
	}
	ev := event{
		EventSource:      EventSource,
		BootstrapServers: strings.Join(s.servers, ","),
		Records:          map[string][]*eventRecord{},
	}
	for _, kr := range krs {
		key := topicPartition{kr.Topic, kr.Partition}.String()
		ev.Records[key] = append(ev.Records[key], newEventRecord(kr))
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("kafka: encoding event: %w", err)
	}
	return b, nil
}

// batchInfo is the on-failure record's KafkaBatchInfo. Offsets are decimal
// strings and timestamps RFC 3339 with milliseconds, as in Lambda's stream
// batch infos; self-managed clusters have no eventSourceArn.
type batchInfo struct {
	BatchSize        int                     `json:"batchSize"`
	BootstrapServers string                  `json:"bootstrapServers"`
	PayloadSize      int                     `json:"payloadSize"`
	RecordsInfo      map[string]*recordsInfo `json:"recordsInfo"`
}

type recordsInfo struct {
	FirstRecordOffset    string `json:"firstRecordOffset"`
	LastRecordOffset     string `json:"lastRecordOffset"`
	FirstRecordTimestamp string `json:"firstRecordTimestamp"`
	LastRecordTimestamp  string `json:"lastRecordTimestamp"`
}

const batchTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// BatchInfo describes a discarded batch: its size, the size of its event
// (payloadSize) and, per partition, the first and last record's offset and
// timestamp. Records that are not Kafka records are left out.
func (s *Source) BatchInfo(recs []*sources.Record) (string, any) {
	info := &batchInfo{
		BatchSize:        len(recs),
		BootstrapServers: strings.Join(s.servers, ","),
		RecordsInfo:      map[string]*recordsInfo{},
	}
	if ev, err := s.Event(recs); err == nil {
		info.PayloadSize = len(ev)
	}
	for _, r := range recs {
		kr, ok := r.Handle.(*kgo.Record)
		if !ok {
			continue
		}
		key := topicPartition{kr.Topic, kr.Partition}.String()
		off := strconv.FormatInt(kr.Offset, 10)
		ts := kr.Timestamp.UTC().Format(batchTimeLayout)
		ri := info.RecordsInfo[key]
		if ri == nil {
			ri = &recordsInfo{FirstRecordOffset: off, FirstRecordTimestamp: ts}
			info.RecordsInfo[key] = ri
		}
		ri.LastRecordOffset, ri.LastRecordTimestamp = off, ts
	}
	return BatchInfoKey, info
}

// filterView is the record as filter patterns see it. Lambda filters Kafka
// records on "value" only: a value that is a JSON object is matched as JSON,
// anything else as a plain string (so a JSON pattern never matches a plain
// value and the other way round). Nimbus also shows the record's metadata
// (topic, partition, offset, timestamp, timestampType, key as base64,
// headers as in the event) so patterns on them work; Lambda itself rejects
// such patterns. Numbers are float64 and arrays []any, as encoding/json
// decodes them, so metadata and value compare alike.
func filterView(kr *kgo.Record) map[string]any {
	headers := make([]any, 0, len(kr.Headers))
	for _, h := range kr.Headers {
		nums := make([]any, len(h.Value))
		for i, c := range h.Value {
			nums[i] = float64(int8(c))
		}
		headers = append(headers, map[string]any{h.Key: nums})
	}
	view := map[string]any{
		"topic":         kr.Topic,
		"partition":     float64(kr.Partition),
		"offset":        float64(kr.Offset),
		"timestamp":     float64(kr.Timestamp.UnixMilli()),
		"timestampType": timestampType(kr),
		"headers":       headers,
		"value":         payloadView(kr.Value),
	}
	if kr.Key != nil {
		view["key"] = base64.StdEncoding.EncodeToString(kr.Key)
	}
	return view
}

// payloadView decodes a JSON object, else returns the bytes as a string.
func payloadView(v []byte) any {
	if t := bytes.TrimSpace(v); len(t) > 0 && t[0] == '{' {
		var obj map[string]any
		if json.Unmarshal(t, &obj) == nil {
			return obj
		}
	}
	return string(v)
}

// elementSize is the length of the record's element in the event JSON,
// computed without encoding it (exact unless a topic or header key needs
// JSON escaping).
func elementSize(kr *kgo.Record) int {
	const frame = len(`{"topic":"","partition":,"offset":,"timestamp":,"timestampType":"","headers":[]}`)
	n := frame + len(kr.Topic) + digits(int64(kr.Partition)) + digits(kr.Offset) +
		digits(kr.Timestamp.UnixMilli()) + len(timestampType(kr))
	if kr.Key != nil {
		n += len(`,"key":""`) + base64.StdEncoding.EncodedLen(len(kr.Key))
	}
	if kr.Value != nil {
		n += len(`,"value":""`) + base64.StdEncoding.EncodedLen(len(kr.Value))
	}
	for i, h := range kr.Headers {
		if i > 0 {
			n++ // comma between headers
		}
		n += len(`{"":[]}`) + len(h.Key)
		for j, c := range h.Value {
			if j > 0 {
				n++
			}
			n += digits(int64(int8(c)))
		}
	}
	return n
}

// digits is the length of n in decimal, sign included.
func digits(n int64) int {
	return len(strconv.AppendInt(make([]byte, 0, 20), n, 10))
}
