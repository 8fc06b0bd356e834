package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// viaJSON is the reading encoding/json gives: what a handler taking
// events.KafkaEvent, or a list of records, sees.
func viaJSON(payload []byte) ([]record, error) {
	var ev struct {
		Records json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	if len(ev.Records) == 0 || string(ev.Records) == "null" {
		return nil, nil
	}
	type rec struct {
		Value string `json:"value"`
		Data  string `json:"data"`
	}
	conv := func(rs []rec) []record {
		var out []record
		for _, r := range rs {
			var x record
			if r.Value != "" {
				x.Value = []byte(r.Value)
			}
			if r.Data != "" {
				x.Data = []byte(r.Data)
			}
			out = append(out, x)
		}
		return out
	}
	if ev.Records[0] == '[' {
		var rs []rec
		if err := json.Unmarshal(ev.Records, &rs); err != nil {
			return nil, err
		}
		return conv(rs), nil
	}
	var parts map[string][]rec
	if err := json.Unmarshal(ev.Records, &parts); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []record
	for _, k := range keys {
		out = append(out, conv(parts[k])...)
	}
	return out, nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// kafkaEvent is a self-managed Kafka event of n records over two
// partitions, written by encoding/json from aws-lambda-go's types.
func kafkaEvent(tb testing.TB, n int) []byte {
	ev := events.KafkaEvent{EventSource: "SelfManagedKafka", BootstrapServers: "127.0.0.1:9092",
		Records: map[string][]events.KafkaRecord{}}
	for i := range n {
		key := fmt.Sprintf("orders-%d", i%2)
		ev.Records[key] = append(ev.Records[key], events.KafkaRecord{Topic: "orders", Partition: int64(i % 2),
			Offset: int64(i), Timestamp: events.MilliSecondsEpochTime{Time: time.UnixMilli(1700000000000 + int64(i))},
			TimestampType: "CREATE_TIME", Key: b64(fmt.Sprintf("k%02d", i%64)),
			Value:   b64(fmt.Sprintf(`{"id":"kafka-thr/%05d","ns":0}`, i)),
			Headers: []map[string]events.JSONNumberBytes{{"value": events.JSONNumberBytes("h")}}})
	}
	b, err := json.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The scanner reads every event shape the way encoding/json does,
// including the places where a "value" or "data" key is not a record's.
func TestReadRecordsMatchesEncodingJSON(t *testing.T) {
	for name, ev := range map[string]string{
		"kafka":      string(kafkaEvent(t, 7)),
		"list":       `{"eventSource":"nimbus:redis","records":[{"id":"1-0","fields":{"data":"x","k":"v"},"data":"` + b64("r1") + `"},{"data":"` + b64("r2") + `","id":"1-1"}]}`,
		"nats":       `{"eventSource":"nimbus:nats","records":[{"stream":"s","sequence":3,"headers":{"data":["a"]},"data":"` + b64("n1") + `","timestamp":"2024-01-01T00:00:00Z"}]}`,
		"spaces":     " {\n\t\"records\" : [ { \"data\" : \"" + b64("a") + "\" } , {\"value\":null} ] , \"x\": [1, -2.5e3, true, false, null, {}, []] }\r\n",
		"escaped":    `{"records":[{"data":"` + strings.ReplaceAll(b64("??>"), "/", `\/`) + `"}],"note":"a \"quoted\" \\ \u00e9"}`,
		"no records": `{"eventSource":"x"}`,
		"empty":      `{"records":[]}`,
		"empty map":  `{"records":{}}`,
	} {
		got, err := readRecords([]byte(ev))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want, err := viaJSON([]byte(ev))
		if err != nil {
			t.Fatalf("%s: encoding/json: %v", name, err)
		}
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: scanner read %q, encoding/json %q", name, got, want)
		}
	}
}

// What encoding/json refuses, the scanner refuses too, with where.
func TestReadRecordsRefusesMalformedEvents(t *testing.T) {
	for _, ev := range []string{``, `[]`, `{`, `{"records":[{"data":"a"}`, `{"records":[{"data":"a"},]}`,
		`{"records":[{"data":"a"}]} x`, `{"records":[{"data":"a}]}`, `{"records":[{"data":tru}]}`, `{"a" 1}`,
		`{"records":{"p":{}}}`} {
		if _, err := viaJSON([]byte(ev)); err == nil && ev != `{"records":{"p":{}}}` {
			t.Fatalf("encoding/json takes %q: the case is wrong", ev)
		}
		got, err := readRecords([]byte(ev))
		if err == nil || !strings.Contains(err.Error(), "offset") && ev != `` {
			t.Errorf("readRecords(%q) = %q, %v; want an error with its offset", ev, got, err)
		}
	}
}

// BenchmarkReadRecords reads a 100-record Kafka event with the scanner
// and, as the baseline in the same run, with encoding/json into
// aws-lambda-go's events.KafkaEvent (what a user's handler does).
func BenchmarkReadRecords(b *testing.B) {
	ev := kafkaEvent(b, 100)
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			if recs, err := readRecords(ev); err != nil || len(recs) != 100 {
				b.Fatal(len(recs), err)
			}
		}
	})
	b.Run("encoding-json-KafkaEvent", func(b *testing.B) {
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			var k events.KafkaEvent
			if err := json.Unmarshal(ev, &k); err != nil || len(k.Records) != 2 {
				b.Fatal(err)
			}
		}
	})
}
