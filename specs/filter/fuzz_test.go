package filter

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzRecords are matched against every pattern that compiles, besides the
// record the fuzzer supplies.
var fuzzRecords = []string{
	`{}`,
	`{"a":"x","b":1,"c":true,"d":null,"e":[],"f":{}}`,
	`{"a":["x",1,null,{"b":"y"},[["z"]]],"body":{"kind":"order","size":3}}`,
	`{"a":{"b":{"c":{"d":[1,"1",{"e":false}]}}},"$or":"x","k":{"k":{"k":"v"}}}`,
}

// FuzzCompile: no input makes Compile or Match panic; a compile error is a
// *Error with an offset inside the pattern; the JSON reader accepts exactly
// what encoding/json accepts (less the documented bounds) and reads the
// same values; Match is deterministic.
func FuzzCompile(f *testing.F) {
	for _, c := range matchCases {
		f.Add(c.pattern, []byte(c.rec))
	}
	for _, c := range errCases {
		if len(c.pattern) <= MaxPatternBytes {
			f.Add(c.pattern, []byte(`{"a":"x"}`))
		}
	}
	var fixed []map[string]any
	for _, r := range fuzzRecords {
		fixed = append(fixed, decode(f, r))
	}
	f.Fuzz(func(t *testing.T, pattern string, recJSON []byte) {
		checkReader(t, pattern)

		p, err := Compile(pattern)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not a *Error", err, err)
			}
			if e.Offset < 0 || e.Offset > len(pattern) || e.Msg == "" {
				t.Fatalf("bad error for %q: offset %d, message %q", pattern, e.Offset, e.Msg)
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("String() = %q, want %q", p.String(), pattern)
		}
		recs := fixed
		var rec map[string]any
		if json.Unmarshal(recJSON, &rec) == nil {
			recs = append(recs[:len(recs):len(recs)], rec)
		}
		set := Set{p}
		for _, r := range recs {
			got := p.Match(r)
			if again := p.Match(r); again != got {
				t.Fatalf("Match not deterministic for %s", pattern)
			}
			if set.Match(r) != got {
				t.Fatalf("Set{p}.Match differs from p.Match for %s", pattern)
			}
		}
	})
}

// checkReader compares the offset-keeping JSON reader with encoding/json.
func checkReader(t *testing.T, src string) {
	n, jerr := parseJSON(src)
	var want any
	stdErr := json.Unmarshal([]byte(src), &want)
	if jerr == nil {
		if stdErr != nil {
			t.Fatalf("reader accepts %q, encoding/json does not: %v", src, stdErr)
		}
		if got := nodeValue(n); !reflect.DeepEqual(got, want) {
			t.Fatalf("reader reads %q as %#v, encoding/json as %#v", src, got, want)
		}
		return
	}
	if jerr.Offset < 0 || jerr.Offset > len(src) {
		t.Fatalf("reader error offset %d outside %q", jerr.Offset, src)
	}
	if stdErr == nil && utf8.ValidString(src) &&
		!strings.Contains(jerr.Msg, "nested more than") && !strings.Contains(jerr.Msg, "out of range") {
		t.Fatalf("encoding/json accepts %q, reader does not: %s", src, jerr.Msg)
	}
}

// nodeValue converts a node to what encoding/json would decode; with
// duplicate keys the last wins, as there.
func nodeValue(n *node) any {
	switch n.kind {
	case kindNull:
		return nil
	case kindBool:
		return n.b
	case kindNumber:
		return n.num
	case kindString:
		return n.str
	case kindArray:
		a := make([]any, len(n.elems))
		for i, e := range n.elems {
			a[i] = nodeValue(e)
		}
		return a
	default:
		m := make(map[string]any, len(n.mems))
		for _, mem := range n.mems {
			m[mem.key] = nodeValue(mem.val)
		}
		return m
	}
}
