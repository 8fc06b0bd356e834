package filter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// This file is a small JSON reader that keeps the byte offset of every
// value and object key and the order of keys, so Compile can point at the
// exact place a pattern goes wrong and report problems in source order.
// encoding/json's decoders give neither.

type nodeKind uint8

const (
	kindNull nodeKind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k nodeKind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "boolean"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindArray:
		return "array"
	default:
		return "object"
	}
}

// node is one JSON value. Objects keep their members in source order.
type node struct {
	kind  nodeKind
	off   int // byte offset of the value's first character
	b     bool
	num   float64
	str   string
	elems []*node   // array elements
	mems  []*member // object members
}

type member struct {
	key string
	off int // byte offset of the key's opening quote
	val *node
}

// maxJSONDepth bounds the reader's recursion. A valid pattern nests far less
// (MaxDepth objects, each adding at most a few levels of matcher syntax).
const maxJSONDepth = 4*MaxDepth + 8

type reader struct {
	src string
	pos int
}

func parseJSON(src string) (*node, *Error) {
	r := &reader{src: src}
	r.space()
	if r.pos == len(src) {
		return nil, &Error{Offset: r.pos, Msg: "pattern is empty; it must be a JSON object"}
	}
	n, err := r.value(0)
	if err != nil {
		return nil, err
	}
	r.space()
	if r.pos != len(src) {
		return nil, r.errorf(r.pos, "invalid JSON: unexpected %s after the pattern", r.describe(r.pos))
	}
	return n, nil
}

func (r *reader) errorf(off int, format string, args ...any) *Error {
	return &Error{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// describe names the character at off for an error message.
func (r *reader) describe(off int) string {
	if off >= len(r.src) {
		return "end of input"
	}
	c, _ := utf8.DecodeRuneInString(r.src[off:])
	return strconv.QuoteRune(c)
}

func (r *reader) space() {
	for r.pos < len(r.src) {
		switch r.src[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

func (r *reader) value(depth int) (*node, *Error) {
	if depth > maxJSONDepth {
		return nil, r.errorf(r.pos, "invalid JSON: nested more than %d levels deep", maxJSONDepth)
	}
	if r.pos >= len(r.src) {
		return nil, r.errorf(r.pos, "invalid JSON: unexpected end of input")
	}
	start := r.pos
	switch c := r.src[r.pos]; {
	case c == '{':
		return r.object(depth)
	case c == '[':
		return r.array(depth)
	case c == '"':
		s, err := r.string()
		if err != nil {
			return nil, err
		}
		return &node{kind: kindString, off: start, str: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return r.number()
	case r.literal("true"):
		return &node{kind: kindBool, off: start, b: true}, nil
	case r.literal("false"):
		return &node{kind: kindBool, off: start}, nil
	case r.literal("null"):
		return &node{kind: kindNull, off: start}, nil
	default:
		return nil, r.errorf(start, "invalid JSON: unexpected %s", r.describe(start))
	}
}

func (r *reader) literal(word string) bool {
	if len(r.src)-r.pos >= len(word) && r.src[r.pos:r.pos+len(word)] == word {
		r.pos += len(word)
		return true
	}
	return false
}

func (r *reader) object(depth int) (*node, *Error) {
	n := &node{kind: kindObject, off: r.pos}
	r.pos++ // '{'
	r.space()
	if r.pos < len(r.src) && r.src[r.pos] == '}' {
		r.pos++
		return n, nil
	}
	for {
		r.space()
		if r.pos >= len(r.src) || r.src[r.pos] != '"' {
			return nil, r.errorf(r.pos, "invalid JSON: expected a quoted object key, found %s", r.describe(r.pos))
		}
		keyOff := r.pos
		key, err := r.string()
		if err != nil {
			return nil, err
		}
		r.space()
		if r.pos >= len(r.src) || r.src[r.pos] != ':' {
			return nil, r.errorf(r.pos, "invalid JSON: expected ':' after object key, found %s", r.describe(r.pos))
		}
		r.pos++
		r.space()
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.mems = append(n.mems, &member{key: key, off: keyOff, val: v})
		r.space()
		if r.pos < len(r.src) && r.src[r.pos] == ',' {
			r.pos++
			continue
		}
		if r.pos < len(r.src) && r.src[r.pos] == '}' {
			r.pos++
			return n, nil
		}
		return nil, r.errorf(r.pos, "invalid JSON: expected ',' or '}' in object, found %s", r.describe(r.pos))
	}
}

func (r *reader) array(depth int) (*node, *Error) {
	n := &node{kind: kindArray, off: r.pos}
	r.pos++ // '['
	r.space()
	if r.pos < len(r.src) && r.src[r.pos] == ']' {
		r.pos++
		return n, nil
	}
	for {
		r.space()
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, v)
		r.space()
		if r.pos < len(r.src) && r.src[r.pos] == ',' {
			r.pos++
			continue
		}
		if r.pos < len(r.src) && r.src[r.pos] == ']' {
			r.pos++
			return n, nil
		}
		return nil, r.errorf(r.pos, "invalid JSON: expected ',' or ']' in array, found %s", r.describe(r.pos))
	}
}

// string reads a quoted string at r.pos. It finds the closing quote itself
// (rejecting control characters and bad escapes where they are) and lets
// encoding/json decode the escapes, surrogate pairs included.
func (r *reader) string() (string, *Error) {
	start := r.pos
	r.pos++ // opening quote
	escaped := false
	for r.pos < len(r.src) {
		c := r.src[r.pos]
		switch {
		case c < 0x20:
			return "", r.errorf(r.pos, "invalid JSON: control character %s in string", strconv.QuoteRune(rune(c)))
		case c == '\\':
			escaped = true
			if r.pos+1 >= len(r.src) {
				return "", r.errorf(r.pos, "invalid JSON: unterminated string")
			}
			switch e := r.src[r.pos+1]; e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.pos += 2
			case 'u':
				if len(r.src)-r.pos < 6 || !isHex4(r.src[r.pos+2:r.pos+6]) {
					return "", r.errorf(r.pos, `invalid JSON: \u must be followed by four hex digits`)
				}
				r.pos += 6
			default:
				return "", r.errorf(r.pos, "invalid JSON: invalid escape %q in string", r.src[r.pos:r.pos+2])
			}
		case c == '"':
			r.pos++
			raw := r.src[start+1 : r.pos-1]
			if !utf8.ValidString(raw) {
				return "", r.errorf(start, "invalid JSON: string is not valid UTF-8")
			}
			if !escaped {
				return raw, nil
			}
			var s string
			if err := json.Unmarshal([]byte(r.src[start:r.pos]), &s); err != nil {
				return "", r.errorf(start, "invalid JSON: bad string: %v", err)
			}
			return s, nil
		default:
			r.pos++
		}
	}
	return "", r.errorf(start, "invalid JSON: unterminated string")
}

func isHex4(s string) bool {
	for i := 0; i < 4; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *reader) number() (*node, *Error) {
	start := r.pos
	bad := func() *Error {
		return r.errorf(start, "invalid JSON: malformed number")
	}
	if r.src[r.pos] == '-' {
		r.pos++
	}
	switch {
	case r.pos < len(r.src) && r.src[r.pos] == '0':
		r.pos++
	case r.digits() == 0:
		return nil, bad()
	}
	if r.pos < len(r.src) && r.src[r.pos] == '.' {
		r.pos++
		if r.digits() == 0 {
			return nil, bad()
		}
	}
	if r.pos < len(r.src) && (r.src[r.pos] == 'e' || r.src[r.pos] == 'E') {
		r.pos++
		if r.pos < len(r.src) && (r.src[r.pos] == '+' || r.src[r.pos] == '-') {
			r.pos++
		}
		if r.digits() == 0 {
			return nil, bad()
		}
	}
	f, err := strconv.ParseFloat(r.src[start:r.pos], 64)
	if err != nil {
		return nil, r.errorf(start, "number %s is out of range", r.src[start:r.pos])
	}
	return &node{kind: kindNumber, off: start, num: f}, nil
}

func (r *reader) digits() int {
	n := 0
	for r.pos < len(r.src) && r.src[r.pos] >= '0' && r.src[r.pos] <= '9' {
		r.pos++
		n++
	}
	return n
}
