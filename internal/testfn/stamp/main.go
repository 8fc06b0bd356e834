// Command stamp is a real aws-lambda-go function for event-source
// benchmarks. For every record of the batch it gets (the Kafka event's
// "records" map of partitions with base64 "value", taken in key order, or
// the "records" list with base64 "data" that NATS and Redis mappings send)
// it appends the line "<payload>\t<unix nanos>\n" to the file named by
// STAMP_LOG, the time being when the invocation started (a batch's records
// are seen at once). The lines of one invocation go out in one write, so
// concurrent invocations never interleave within a line. It answers
// {"batchItemFailures":[]}.
//
// It is a measuring instrument, so it reads the event in one pass: it
// implements lambda.Handler (the raw payload, no reflective decode into a
// handler argument) and walks the top-level object with a json.Decoder,
// decoding each record where it stands. Decoding "records" through a
// custom UnmarshalJSON, as it used to, scanned that part of the event four
// times (validity check, the skip to find its end, and the inner Unmarshal's
// check and decode), which made the function, not the mapping, most of what
// a 100-record batch cost in the benchmark.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// record is one element of either shape.
type record struct {
	Value string `json:"value"` // Kafka
	Data  string `json:"data"`  // NATS, Redis
}

// partition is one key of Kafka's records map.
type partition struct {
	key  string
	recs []record
}

// answer is the function's response.
var answer = []byte(`{"batchItemFailures":[]}`)

type stamp struct{ path string }

func main() {
	lambda.Start(stamp{path: os.Getenv("STAMP_LOG")})
}

// Invoke implements lambda.Handler.
func (s stamp) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	if s.path == "" {
		return nil, errors.New("STAMP_LOG is not set")
	}
	recs, err := readRecords(payload)
	if err != nil {
		return nil, err
	}
	var buf []byte
	for i, r := range recs {
		p := r.Value
		if p == "" {
			p = r.Data
		}
		buf, err = base64.StdEncoding.AppendDecode(buf, []byte(p))
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		buf = append(buf, '\t')
		buf = append(buf, now...)
		buf = append(buf, '\n')
	}
	if err := appendLog(s.path, buf); err != nil {
		return nil, err
	}
	return answer, nil
}

// readRecords returns the event's records: the "records" list, or Kafka's
// map of partitions with the partitions in key order.
func readRecords(payload []byte) ([]record, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	var out []record
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("event: %w", err)
		}
		if key, _ := tok.(string); key != "records" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("event %q: %w", key, err)
			}
			continue
		}
		if out, err = readRecordsValue(dec); err != nil {
			return nil, fmt.Errorf("event records: %w", err)
		}
	}
	return out, nil
}

func readRecordsValue(dec *json.Decoder) ([]record, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('['):
		return readList(dec, nil)
	case json.Delim('{'):
	default:
		return nil, fmt.Errorf("not a list or an object: %v", tok)
	}
	var parts []partition
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		if err := expectDelim(dec, '['); err != nil {
			return nil, fmt.Errorf("partition %q: %w", key, err)
		}
		recs, err := readList(dec, nil)
		if err != nil {
			return nil, fmt.Errorf("partition %q: %w", key, err)
		}
		parts = append(parts, partition{key: key, recs: recs})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].key < parts[j].key })
	var out []record
	for _, p := range parts {
		out = append(out, p.recs...)
	}
	return out, nil
}

// readList decodes the elements of a list whose '[' was read, and its ']'.
func readList(dec *json.Decoder, out []record) ([]record, error) {
	for dec.More() {
		var r record
		if err := dec.Decode(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	_, err := dec.Token() // ']'
	return out, err
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("want %v, got %v", d, tok)
	}
	return nil
}

// logClient posts to the log collector over kept-alive connections.
var logClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 8}}

// appendLog appends b to the file path or, for an http:// URL (what
// isolated functions, which do not see the host's files, are given), POSTs
// it there (see testfn.LogURL).
func appendLog(path string, b []byte) error {
	if strings.HasPrefix(path, "http://") {
		resp, err := logClient.Post(path, "text/plain", bytes.NewReader(b))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("log collector: %s", resp.Status)
		}
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
