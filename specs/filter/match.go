package filter

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Set is the OR of up to MaxFilters patterns; an empty Set matches everything.
type Set []*Pattern

// Match reports whether any pattern matches rec; an empty Set matches
// every record.
func (s Set) Match(rec map[string]any) bool {
	if len(s) == 0 {
		return true
	}
	for _, p := range s {
		if p.Match(rec) {
			return true
		}
	}
	return false
}

// Match reports whether the record matches. rec is a decoded JSON object
// (map[string]any with float64 numbers, string, bool, nil, []any,
// map[string]any). Numbers may also be int, int64 or json.Number. Match
// never modifies rec.
func (p *Pattern) Match(rec map[string]any) bool {
	return p.root.match(rec)
}

func (o *object) match(rec map[string]any) bool {
	for i := range o.fields {
		f := &o.fields[i]
		v, present := rec[f.key]
		if f.sub != nil {
			if !f.sub.matchNested(v, present) {
				return false
			}
		} else if !f.matchLeaves(v, present) {
			return false
		}
	}
	for _, branches := range o.ors {
		ok := false
		for _, b := range branches {
			if b.match(rec) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchNested matches a nested pattern against a record value: an object,
// or any object element of an array. A value holding no object at all
// (absent, a scalar, an empty array) is matched as an empty object, so
// only patterns made of exists:false succeed on it.
func (o *object) matchNested(v any, present bool) bool {
	if !present {
		return o.match(nil)
	}
	found := false
	if o.matchObjects(v, &found) {
		return true
	}
	return !found && o.match(nil)
}

func (o *object) matchObjects(v any, found *bool) bool {
	switch x := v.(type) {
	case map[string]any:
		*found = true
		return o.match(x)
	case []any:
		for _, e := range x {
			if o.matchObjects(e, found) {
				return true
			}
		}
	}
	return false
}

// matchLeaves reports whether any of the field's matchers matches the
// record value v (present says whether the key is there at all).
func (f *field) matchLeaves(v any, present bool) bool {
	for i := range f.ms {
		m := &f.ms[i]
		if m.op == opExists {
			if m.exists == (present && hasLeaf(v)) {
				return true
			}
			continue
		}
		if present && m.matchValue(v) {
			return true
		}
	}
	return false
}

// hasLeaf reports whether v is or holds (in arrays, at any depth) a value
// that is not an object. null is a leaf.
func hasLeaf(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return false
	case []any:
		for _, e := range x {
			if hasLeaf(e) {
				return true
			}
		}
		return false
	}
	return true
}

// matchValue matches v, or when v is an array any of its elements at any
// depth. Objects never match a leaf matcher.
func (m *matcher) matchValue(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return false
	case []any:
		for _, e := range x {
			if m.matchValue(e) {
				return true
			}
		}
		return false
	}
	return m.matchLeaf(v)
}

// matchLeaf matches one scalar record value.
func (m *matcher) matchLeaf(v any) bool {
	switch m.op {
	case opExact:
		return m.val.equal(v)
	case opPrefix:
		s, ok := v.(string)
		if !ok {
			return false
		}
		if m.fold {
			return hasPrefixFold(s, m.str)
		}
		return strings.HasPrefix(s, m.str)
	case opSuffix:
		s, ok := v.(string)
		if !ok {
			return false
		}
		if m.fold {
			return hasSuffixFold(s, m.str)
		}
		return strings.HasSuffix(s, m.str)
	case opEqualsIgnoreCase:
		s, ok := v.(string)
		return ok && strings.EqualFold(s, m.str)
	case opWildcard:
		s, ok := v.(string)
		return ok && globMatch(m.glob, s)
	case opAnythingBut:
		if m.inner != nil {
			return !m.inner.matchLeaf(v)
		}
		for _, n := range m.not {
			if n.equal(v) {
				return false
			}
		}
		return true
	case opNumeric:
		n, ok := number(v)
		if !ok {
			return false
		}
		for _, c := range m.cmps {
			if !c.holds(n) {
				return false
			}
		}
		return true
	}
	return false
}

func (c comparison) holds(n float64) bool {
	switch c.op {
	case "=":
		return n == c.num
	case "<":
		return n < c.num
	case "<=":
		return n <= c.num
	case ">":
		return n > c.num
	default: // ">="
		return n >= c.num
	}
}

// equal compares a pattern scalar with a record scalar; types must agree
// ("5" is not 5).
func (p value) equal(v any) bool {
	switch p.kind {
	case kindNull:
		return v == nil
	case kindBool:
		b, ok := v.(bool)
		return ok && b == p.b
	case kindNumber:
		n, ok := number(v)
		return ok && n == p.num
	case kindString:
		s, ok := v.(string)
		return ok && s == p.str
	}
	return false
}

// number returns v as a float64 when it is a number.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	}
	return 0, false
}

// hasPrefixFold is strings.HasPrefix under Unicode simple case folding.
// Folding maps runes to runes, so a case-insensitive prefix of s has as
// many runes as prefix.
func hasPrefixFold(s, prefix string) bool {
	n := utf8.RuneCountInString(prefix)
	i := 0
	for ; n > 0 && i < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return n == 0 && strings.EqualFold(s[:i], prefix)
}

// hasSuffixFold is strings.HasSuffix under Unicode simple case folding.
func hasSuffixFold(s, suffix string) bool {
	n := utf8.RuneCountInString(suffix)
	i := len(s)
	for ; n > 0 && i > 0; n-- {
		_, size := utf8.DecodeLastRuneInString(s[:i])
		i -= size
	}
	return n == 0 && strings.EqualFold(s[i:], suffix)
}

// globMatch matches s against a wildcard: segs are the literal pieces
// between the *s (one piece when there is no *). The first piece anchors
// at the start, the last at the end, and the ones between are found left
// to right; taking the leftmost occurrence each time is never worse, so
// this is linear in len(s) per piece.
func globMatch(segs []string, s string) bool {
	if len(segs) == 1 {
		return s == segs[0]
	}
	first, last := segs[0], segs[len(segs)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	mid := s[len(first) : len(s)-len(last)]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(mid, seg)
		if i < 0 {
			return false
		}
		mid = mid[i+len(seg):]
	}
	return true
}
