package redis

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// EventSource is the eventSource of every Redis event.
const EventSource = "nimbus:redis"

// BatchInfoKey is the key of a discarded batch's coordinates in the
// on-failure record.
const BatchInfoKey = "RedisBatchInfo"

// DataField is the entry field that is the record's payload.
const DataField = "data"

// Event is the event a function receives for a batch of stream entries.
type Event struct {
	EventSource string `json:"eventSource"` // "nimbus:redis"
	// EventSourceArn is the Redis URL without credentials, with its
	// database number, then "/" and the stream key:
	// "redis://host:6379/0/orders".
	EventSourceArn string        `json:"eventSourceArn"`
	Records        []EventRecord `json:"records"`
}

// EventRecord is one stream entry.
type EventRecord struct {
	Stream string `json:"stream"`
	// ID is the entry id ("1718000000000-0"), the itemIdentifier of
	// batchItemFailures.
	ID string `json:"id"`
	// Timestamp is the id's millisecond part: when Redis added the entry,
	// in Unix milliseconds.
	Timestamp int64 `json:"timestamp"`
	// Fields are all the entry's fields.
	Fields map[string]string `json:"fields"`
	// Data is the "data" field's bytes, or the JSON object of all fields
	// when the entry has no "data" field; base64 in JSON.
	Data []byte `json:"data"`
}

// BatchInfo is the value of "RedisBatchInfo" in an on-failure record.
type BatchInfo struct {
	Stream                          string `json:"stream"`
	Group                           string `json:"group"`
	StartID                         string `json:"startId"`
	EndID                           string `json:"endId"`
	BatchSize                       int    `json:"batchSize"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
}

// entry is a Record's Handle: the entry as read.
// KeyField is the entry field whose value is a record's key for
// parallelization_factor: entries with the same value share a lane, so
// their order holds. Entries without it are spread over the lanes by id.
const KeyField = "key"

type entry struct {
	id     string
	fields map[string]string
}

func newEntry(m goredis.XMessage) *entry {
	f := make(map[string]string, len(m.Values))
	for k, v := range m.Values {
		switch v := v.(type) {
		case string:
			f[k] = v
		case nil:
			f[k] = ""
		default:
			f[k] = fmt.Sprint(v)
		}
	}
	return &entry{id: m.ID, fields: f}
}

// ms is the id's millisecond part.
func (e *entry) ms() int64 {
	ms, _ := splitID(e.id)
	return int64(ms)
}

func (e *entry) time() time.Time { return time.UnixMilli(e.ms()) }

// size is the sum of the lengths of fields and values.
func (e *entry) size() int {
	n := 0
	for k, v := range e.fields {
		n += len(k) + len(v)
	}
	return n
}

// filter is the entry as filter patterns see it.
func (e *entry) filter(stream string) map[string]any {
	fields := make(map[string]any, len(e.fields))
	for k, v := range e.fields {
		fields[k] = v
	}
	f := map[string]any{
		"stream":    stream,
		"id":        e.id,
		"timestamp": float64(e.ms()), // a JSON number, as a decoder would give it
		"fields":    fields,
	}
	if d, ok := e.fields[DataField]; ok {
		f[DataField] = filterData(d)
	}
	return f
}

// filterData is a payload decoded when it is a JSON object, else the
// string itself.
func filterData(d string) any {
	if strings.HasPrefix(strings.TrimSpace(d), "{") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(d), &obj); err == nil {
			return obj
		}
	}
	return d
}

// data is the payload in the event.
func (e *entry) data() ([]byte, error) {
	if d, ok := e.fields[DataField]; ok {
		return []byte(d), nil
	}
	return json.Marshal(e.fields)
}

func entryOf(r *sources.Record) (*entry, error) {
	e, ok := r.Handle.(*entry)
	if !ok || e == nil {
		return nil, fmt.Errorf("record %q was not read by a redis source", r.ID)
	}
	return e, nil
}

// Event builds the function's event for a batch: the JSON encoding/json
// writes for an Event, written in one pass into a buffer sized from the
// records (the event is built for every batch, between one invocation and
// the next; the tests hold it to encoding/json's bytes).
func (s *Source) Event(recs []*sources.Record) (json.RawMessage, error) {
	es := make([]*entry, len(recs))
	size := 64 + len(s.arn)
	for i, r := range recs {
		e, err := entryOf(r)
		if err != nil {
			return nil, err
		}
		es[i] = e
		// Fields, data as base64 and the frame.
		size += 2*r.Size + len(r.ID) + len(s.stream) + 96
	}
	b := make([]byte, 0, size)
	b = append(b, `{"eventSource":`...)
	b = sources.AppendJSONString(b, EventSource)
	b = append(b, `,"eventSourceArn":`...)
	b = sources.AppendJSONString(b, s.arn)
	b = append(b, `,"records":[`...)
	var keys []string
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"stream":`...)
		b = sources.AppendJSONString(b, s.stream)
		b = append(b, `,"id":`...)
		b = sources.AppendJSONString(b, e.id)
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, e.ms(), 10)
		b = append(b, `,"fields":`...)
		b, keys = appendFields(b, keys, e.fields)
		b = append(b, `,"data":`...)
		data, err := e.data()
		if err != nil {
			return nil, fmt.Errorf("encoding fields of entry %q: %w", e.id, err)
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, data)
		b = append(b, '"')
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// appendFields appends fields as a JSON object with sorted keys, as
// encoding/json writes a map; keys is scratch space, returned for reuse.
func appendFields(b []byte, keys []string, fields map[string]string) ([]byte, []string) {
	keys = keys[:0]
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = sources.AppendJSONString(b, k)
		b = append(b, ':')
		b = sources.AppendJSONString(b, fields[k])
	}
	return append(b, '}'), keys
}

// BatchInfo describes a discarded batch: "RedisBatchInfo" and a BatchInfo.
func (s *Source) BatchInfo(recs []*sources.Record) (string, any) {
	info := BatchInfo{Stream: s.stream, Group: s.group, BatchSize: len(recs)}
	if len(recs) > 0 {
		first, last := recs[0], recs[len(recs)-1]
		info.StartID, info.EndID = first.ID, last.ID
		info.ApproximateArrivalOfFirstRecord = formatTime(first.Time)
		info.ApproximateArrivalOfLastRecord = formatTime(last.Time)
	}
	return BatchInfoKey, info
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
