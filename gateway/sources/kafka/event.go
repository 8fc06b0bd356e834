package kafka

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// EventSource is the eventSource of Lambda's self-managed Kafka event.
const EventSource = "SelfManagedKafka"

// BatchInfoKey is the on-failure record's key for a discarded Kafka batch.
const BatchInfoKey = "KafkaBatchInfo"

func timestampType(kr *kgo.Record) string {
	if kr.Attrs.TimestampType() == 1 {
		return "LOG_APPEND_TIME"
	}
	return "CREATE_TIME"
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
//
// It writes the JSON in one pass into a buffer sized from the records'
// Size, with the same bytes encoding/json would give the event and
// eventRecord types (the tests hold it to that): the event is built for
// every batch, on the path between one invocation and the next, and the
// reflective encoder with its per-record strings and maps cost more than
// the rest of that path on the gateway's side.
func (s *Source) Event(recs []*sources.Record) (json.RawMessage, error) {
	krs, err := handles(recs)
	if err != nil {
		return nil, err
	}
	// Partition keys in sorted order (encoding/json's order for a map),
	// each with its records in the order given. An ordered mapping's
	// batch is one partition, so this is usually one group.
	type group struct {
		key string
		krs []*kgo.Record
	}
	var groups []group
	size := 64 + len(s.bootstrap())
	for i, kr := range krs {
		size += recs[i].Size + 1
		key := topicPartition{kr.Topic, kr.Partition}.String()
		j := len(groups) - 1
		if j < 0 || groups[j].key != key {
			j = slices.IndexFunc(groups, func(g group) bool { return g.key == key })
		}
		if j < 0 {
			groups = append(groups, group{key: key})
			j = len(groups) - 1
			size += len(key) + 8
		}
		groups[j].krs = append(groups[j].krs, kr)
	}
	slices.SortStableFunc(groups, func(a, b group) int { return strings.Compare(a.key, b.key) })

	b := make([]byte, 0, size)
	b = append(b, `{"eventSource":`...)
	b = sources.AppendJSONString(b, EventSource)
	b = append(b, `,"bootstrapServers":`...)
	b = sources.AppendJSONString(b, s.bootstrap())
	b = append(b, `,"records":{`...)
	for i, g := range groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = sources.AppendJSONString(b, g.key)
		b = append(b, ":["...)
		for j, kr := range g.krs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendEventRecord(b, kr)
		}
		b = append(b, ']')
	}
	return append(b, "}}"...), nil
}

// bootstrap is the event's bootstrapServers.
func (s *Source) bootstrap() string { return strings.Join(s.servers, ",") }

// appendEventRecord appends kr's element of the event: what encoding/json
// writes for newEventRecord(kr).
func appendEventRecord(b []byte, kr *kgo.Record) []byte {
	b = append(b, `{"topic":`...)
	b = sources.AppendJSONString(b, kr.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(kr.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, kr.Offset, 10)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, kr.Timestamp.UnixMilli(), 10)
	b = append(b, `,"timestampType":`...)
	b = sources.AppendJSONString(b, timestampType(kr))
	if kr.Key != nil {
		b = append(b, `,"key":"`...)
		b = base64.StdEncoding.AppendEncode(b, kr.Key)
		b = append(b, '"')
	}
	if kr.Value != nil {
		b = append(b, `,"value":"`...)
		b = base64.StdEncoding.AppendEncode(b, kr.Value)
		b = append(b, '"')
	}
	b = append(b, `,"headers":[`...)
	for i, h := range kr.Headers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = sources.AppendJSONString(b, h.Key)
		b = append(b, ':')
		b = appendJavaBytes(b, h.Value)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendJavaBytes appends v as a JSON array of signed bytes (jbytes).
func appendJavaBytes(b []byte, v []byte) []byte {
	b = append(b, '[')
	for i, c := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(int8(c)), 10)
	}
	return append(b, ']')
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
		BootstrapServers: s.bootstrap(),
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
