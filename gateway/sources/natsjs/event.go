package natsjs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// EventSource is the event's eventSource.
const EventSource = "nimbus:nats"

// pinHeader is the header the server adds to messages of a pinned
// consumer; it is the server's, not the publisher's, so events leave it
// out.
const pinHeader = "Nats-Pin-Id"

// Event is the function's event for a batch (see docs/events/nats.md).
type Event struct {
	EventSource string `json:"eventSource"`
	// EventSourceArn is "nats:<stream>" or "nats:<stream>:<subject>" when
	// the mapping filters a subject.
	EventSourceArn string        `json:"eventSourceArn"`
	Records        []EventRecord `json:"records"`
}

// EventRecord is one message of an Event.
type EventRecord struct {
	Stream   string `json:"stream"`
	Subject  string `json:"subject"`
	Sequence uint64 `json:"sequence"`
	// Timestamp is when the server stored the message (RFC 3339, UTC,
	// nanoseconds).
	Timestamp time.Time           `json:"timestamp"`
	Headers   map[string][]string `json:"headers"`
	// Data is the payload; in JSON it is base64 (standard alphabet).
	Data []byte `json:"data"`
}

// BatchInfo is the value of "NATSBatchInfo" in an on-failure record.
type BatchInfo struct {
	EventSourceArn string `json:"eventSourceArn"`
	Stream         string `json:"stream"`
	// Subject is the batch's subject when it has one; Subjects lists them
	// (sorted) when it has several (queue-like streams).
	Subject                         string   `json:"subject,omitempty"`
	Subjects                        []string `json:"subjects,omitempty"`
	FirstSequence                   uint64   `json:"firstSequence"`
	LastSequence                    uint64   `json:"lastSequence"`
	BatchSize                       int      `json:"batchSize"`
	ApproximateArrivalOfFirstRecord string   `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string   `json:"approximateArrivalOfLastRecord"`
}

// arrivalLayout is Kinesis' batch-info time format (milliseconds, UTC).
const arrivalLayout = "2006-01-02T15:04:05.000Z07:00"

func handlesOf(recs []*sources.Record) ([]*handle, error) {
	if len(recs) == 0 {
		return nil, errors.New("empty batch")
	}
	hs := make([]*handle, len(recs))
	for i, r := range recs {
		h, ok := r.Handle.(*handle)
		if !ok {
			return nil, fmt.Errorf("record %s is not from a nats source", r.ID)
		}
		hs[i] = h
	}
	return hs, nil
}

// Event builds the batch's event: the JSON encoding/json writes for an
// Event, written in one pass into a buffer sized from the records (the
// event is built for every batch, between one invocation and the next; the
// tests hold it to encoding/json's bytes).
func (s *Source) Event(recs []*sources.Record) (json.RawMessage, error) {
	hs, err := handlesOf(recs)
	if err != nil {
		return nil, err
	}
	size := 64 + len(s.arn)
	for _, r := range recs {
		size += r.Size*4/3 + 160
	}
	b := make([]byte, 0, size)
	b = append(b, `{"eventSource":`...)
	b = sources.AppendJSONString(b, EventSource)
	b = append(b, `,"eventSourceArn":`...)
	b = sources.AppendJSONString(b, s.arn)
	b = append(b, `,"records":[`...)
	var keys []string
	for i, h := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"stream":`...)
		b = sources.AppendJSONString(b, h.meta.Stream)
		b = append(b, `,"subject":`...)
		b = sources.AppendJSONString(b, h.msg.Subject())
		b = append(b, `,"sequence":`...)
		b = strconv.AppendUint(b, h.meta.Sequence.Stream, 10)
		b = append(b, `,"timestamp":"`...)
		b = h.meta.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","headers":{`...)
		hdr := h.msg.Headers()
		keys = keys[:0]
		for k := range hdr {
			if k != pinHeader {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for j, k := range keys {
			if j > 0 {
				b = append(b, ',')
			}
			b = sources.AppendJSONString(b, k)
			b = append(b, ':')
			vs := hdr[k]
			if vs == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, '[')
			for n, v := range vs {
				if n > 0 {
					b = append(b, ',')
				}
				b = sources.AppendJSONString(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, `},"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, h.msg.Data())
		b = append(b, `"}`...)
	}
	return append(b, "]}"...), nil
}

// BatchInfo describes a discarded batch: its stream coordinates only.
func (s *Source) BatchInfo(recs []*sources.Record) (string, any) {
	info := &BatchInfo{EventSourceArn: s.arn, Stream: s.cfg.Spec.Stream, BatchSize: len(recs)}
	hs, err := handlesOf(recs)
	if err != nil {
		return "NATSBatchInfo", info
	}
	first, last := hs[0], hs[0]
	var subjects []string
	for _, h := range hs {
		if h.meta.Sequence.Stream < first.meta.Sequence.Stream {
			first = h
		}
		if h.meta.Sequence.Stream > last.meta.Sequence.Stream {
			last = h
		}
		if !slices.Contains(subjects, h.msg.Subject()) {
			subjects = append(subjects, h.msg.Subject())
		}
	}
	info.FirstSequence, info.LastSequence = first.meta.Sequence.Stream, last.meta.Sequence.Stream
	info.ApproximateArrivalOfFirstRecord = first.meta.Timestamp.UTC().Format(arrivalLayout)
	info.ApproximateArrivalOfLastRecord = last.meta.Timestamp.UTC().Format(arrivalLayout)
	if len(subjects) == 1 {
		info.Subject = subjects[0]
	} else {
		slices.Sort(subjects)
		info.Subjects = subjects
	}
	return "NATSBatchInfo", info
}

// recordSize is the payload plus its headers' keys and values.
func recordSize(msg jetstream.Msg) int {
	n := len(msg.Data())
	for k, vs := range msg.Headers() {
		if k == pinHeader {
			continue
		}
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	return n
}

// filterView is the record as filter patterns see it: metadata, headers
// (first value of each) and the payload under "data" — decoded when it is
// a JSON object, else as a string.
func filterView(msg jetstream.Msg, meta *jetstream.MsgMetadata) map[string]any {
	hdr := map[string]any{}
	for k, vs := range msg.Headers() {
		if k != pinHeader && len(vs) > 0 {
			hdr[k] = vs[0]
		}
	}
	return map[string]any{
		"stream":    meta.Stream,
		"subject":   msg.Subject(),
		"sequence":  float64(meta.Sequence.Stream),
		"timestamp": meta.Timestamp.UTC().Format(time.RFC3339Nano),
		"headers":   hdr,
		"data":      payloadView(msg.Data()),
	}
}

func payloadView(data []byte) any {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		var obj map[string]any
		if json.Unmarshal(trimmed, &obj) == nil {
			return obj
		}
	}
	return string(data)
}
