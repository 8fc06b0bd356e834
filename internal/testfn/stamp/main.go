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
// It is a measuring instrument, so it reads the event in one pass and
// builds nothing it does not need: it implements lambda.Handler (the raw
// payload, no reflective decode into a handler argument) and walks the
// bytes with a small scanner that takes each record's "value" or "data"
// string in place and skips everything else. Both earlier readers (a custom
// UnmarshalJSON, then json.Decoder tokens) made the function, not the
// mapping, the largest cost of a 100-record batch: the runtime processes
// took 40% of the two cores while a mapping ran. main_test.go holds the
// scanner to encoding/json's reading of the same events and measures both.
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
	Value []byte // Kafka
	Data  []byte // NATS, Redis
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
		if len(p) == 0 {
			p = r.Data
		}
		buf, err = base64.StdEncoding.AppendDecode(buf, p)
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
	sc := &scanner{b: payload}
	var out []record
	err := sc.object(func(key []byte) error {
		if string(key) != "records" {
			return sc.skip()
		}
		var err error
		out, err = sc.recordsValue()
		if err != nil {
			return fmt.Errorf("records: %w", err)
		}
		return nil
	})
	if err == nil {
		sc.space()
		if sc.i != len(sc.b) {
			err = sc.errorf("data after the event")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	return out, nil
}

// scanner walks a JSON document in place, without building values it is
// not asked for.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// peek is the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.space()
	if s.i == len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.errorf("want %q", c)
	}
	s.i++
	return nil
}

// object reads an object, calling member with each key; member must read
// the key's value.
func (s *scanner) object(member func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or '}'")
		}
	}
}

// array reads an array, calling elem to read each element.
func (s *scanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or ']'")
		}
	}
}

// str reads a string and returns its contents; one with escapes is
// unquoted into a new slice.
func (s *scanner) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.i
	for {
		end := bytes.IndexByte(s.b[s.i:], '"')
		if end < 0 {
			return nil, s.errorf("unterminated string")
		}
		s.i += end
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for j := s.i - 1; j >= start && s.b[j] == '\\'; j-- {
			n++
		}
		s.i++
		if n%2 == 1 {
			continue
		}
		raw := s.b[start : s.i-1]
		if bytes.IndexByte(raw, '\\') < 0 {
			return raw, nil
		}
		var v string
		if err := json.Unmarshal(s.b[start-1:s.i], &v); err != nil {
			return nil, err
		}
		return []byte(v), nil
	}
}

// skip reads one value of any kind.
func (s *scanner) skip() error {
	switch c := s.peek(); c {
	case '{':
		return s.object(func([]byte) error { return s.skip() })
	case '[':
		return s.array(s.skip)
	case '"':
		_, err := s.str()
		return err
	case 0:
		return s.errorf("want a value")
	default: // a number, true, false or null
		start := s.i
		for s.i < len(s.b) && literalByte[s.b[s.i]] {
			s.i++
		}
		if lit := s.b[start:s.i]; !isLiteral(lit) {
			return s.errorf("bad literal %q", lit)
		}
		return nil
	}
}

// isLiteral says whether lit is true, false, null or made like a number
// (digits, signs, '.', exponents; ending in a digit). It is looser than
// JSON's number grammar, which is enough for an instrument that only
// skips these values.
func isLiteral(lit []byte) bool {
	switch string(lit) {
	case "true", "false", "null":
		return true
	case "":
		return false
	}
	for _, c := range lit {
		if (c < '0' || c > '9') && c != '+' && c != '-' && c != '.' && c != 'e' && c != 'E' {
			return false
		}
	}
	last := lit[len(lit)-1]
	return last >= '0' && last <= '9'
}

// literalByte marks the bytes a number or true/false/null is made of.
var literalByte = func() (t [256]bool) {
	for _, c := range "0123456789+-.eEtrufalsn" {
		t[c] = true
	}
	return t
}()

// recordsValue reads the value of "records".
func (s *scanner) recordsValue() ([]record, error) {
	if s.peek() == '[' {
		return s.recordList(nil)
	}
	var parts []partition
	err := s.object(func(key []byte) error {
		recs, err := s.recordList(nil)
		if err != nil {
			return fmt.Errorf("partition %q: %w", key, err)
		}
		parts = append(parts, partition{key: string(key), recs: recs})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].key < parts[j].key })
	var out []record
	for _, p := range parts {
		out = append(out, p.recs...)
	}
	return out, nil
}

// recordList reads a list of records, taking each one's "value" or "data"
// string and skipping the rest.
func (s *scanner) recordList(out []record) ([]record, error) {
	err := s.array(func() error {
		var r record
		err := s.object(func(key []byte) error {
			k := string(key)
			if (k != "value" && k != "data") || s.peek() != '"' {
				return s.skip()
			}
			v, err := s.str()
			if k == "value" {
				r.Value = v
			} else {
				r.Data = v
			}
			return err
		})
		out = append(out, r)
		return err
	})
	return out, err
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
