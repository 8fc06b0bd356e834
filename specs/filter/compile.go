package filter

import (
	"errors"
	"fmt"
	"strings"
)

// Limits. Lambda documents MaxFilters and MaxPatternBytes; the others are
// Nimbus's own bounds, which keep compiling and matching cheap.
const (
	// MaxFilters is how many patterns one event-source mapping may have.
	MaxFilters = 5
	// MaxPatternBytes is the longest pattern Compile accepts (Lambda's
	// Filter.Pattern length limit).
	MaxPatternBytes = 4096
	// MaxDepth is how many pattern objects may nest: the pattern itself is
	// depth 1, each nested object or $or branch adds one.
	MaxDepth = 10
	// MaxMatchers caps the matchers in one pattern: every element of a
	// matcher array counts one, and an anything-but list counts one per
	// value.
	MaxMatchers = 256
)

// Error is returned by Compile for a malformed pattern; Offset is the byte
// offset into the pattern string where the problem is (0 when unknown) so
// the spec layer can turn it into file:line:col.
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string { return "filter: " + e.Msg }

// SetError is CompileSet's error for one bad pattern. Index is the
// pattern's position in the list (from 0); Err says what is wrong and where.
type SetError struct {
	Index int
	Err   *Error
}

func (e *SetError) Error() string { return fmt.Sprintf("filter %d: %s", e.Index, e.Err.Msg) }

// Unwrap returns the pattern's *Error.
func (e *SetError) Unwrap() error { return e.Err }

// ErrTooManyFilters is wrapped by CompileSet when given more than
// MaxFilters patterns.
var ErrTooManyFilters = errors.New("filter: too many filters")

// Pattern is one compiled filter pattern. It is immutable and safe for
// concurrent use.
type Pattern struct {
	src  string
	root *object
}

// String returns the pattern as it was given to Compile.
func (p *Pattern) String() string { return p.src }

// object is a pattern object: every field and every $or must match.
type object struct {
	fields []field
	ors    [][]*object // each $or lists its branches; one must match
}

// field is one key of a pattern object: a nested object or matchers.
type field struct {
	key string
	sub *object   // nested pattern, or nil
	ms  []matcher // ORed leaf matchers when sub is nil
}

type op uint8

const (
	opExact op = iota
	opPrefix
	opSuffix
	opEqualsIgnoreCase
	opWildcard
	opAnythingBut
	opNumeric
	opExists
)

// matcher is one element of a matcher array.
type matcher struct {
	op     op
	val    value        // opExact
	str    string       // opPrefix, opSuffix, opEqualsIgnoreCase
	fold   bool         // opPrefix, opSuffix: compare ignoring case
	glob   []string     // opWildcard: literal segments between the *s
	not    []value      // opAnythingBut with values
	inner  *matcher     // opAnythingBut with prefix, suffix, equals-ignore-case or wildcard
	cmps   []comparison // opNumeric: one or two
	exists bool         // opExists
}

// value is a JSON scalar to compare a record value with.
type value struct {
	kind nodeKind // kindNull, kindBool, kindNumber or kindString
	b    bool
	num  float64
	str  string
}

type comparison struct {
	op  string // =, <, <=, >, >=
	num float64
}

// Compile parses one filter pattern (a JSON object as a string).
func Compile(pattern string) (*Pattern, error) {
	if len(pattern) > MaxPatternBytes {
		return nil, &Error{Offset: MaxPatternBytes, Msg: fmt.Sprintf("pattern is %d bytes; at most %d are allowed", len(pattern), MaxPatternBytes)}
	}
	n, jerr := parseJSON(pattern)
	if jerr != nil {
		return nil, jerr
	}
	if n.kind != kindObject {
		return nil, &Error{Offset: n.off, Msg: fmt.Sprintf(`pattern must be a JSON object such as {"body":{"kind":["order"]}}; got %s %s`, article(n.kind), n.kind)}
	}
	c := &compiler{}
	root, err := c.object(n, nil, 1)
	if err != nil {
		return nil, err
	}
	return &Pattern{src: pattern, root: root}, nil
}

// CompileSet compiles the patterns of one mapping. More than MaxFilters
// patterns is an error wrapping ErrTooManyFilters; a bad pattern is a
// *SetError naming its index.
func CompileSet(patterns []string) (Set, error) {
	if len(patterns) > MaxFilters {
		return nil, fmt.Errorf("%w: at most %d are allowed; got %d", ErrTooManyFilters, MaxFilters, len(patterns))
	}
	s := make(Set, 0, len(patterns))
	for i, src := range patterns {
		p, err := Compile(src)
		if err != nil {
			return nil, &SetError{Index: i, Err: err.(*Error)}
		}
		s = append(s, p)
	}
	return s, nil
}

type compiler struct {
	nmatchers int
}

// errorf builds an Error at off whose message starts with the quoted key
// path (when there is one).
func errorf(off int, path []string, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if len(path) > 0 {
		msg = fmt.Sprintf("%q: %s", strings.Join(path, "."), msg)
	}
	return &Error{Offset: off, Msg: msg}
}

func article(k nodeKind) string {
	if k == kindArray || k == kindObject {
		return "an"
	}
	return "a"
}

// with returns path extended by key, never sharing path's backing array.
func with(path []string, key string) []string {
	return append(path[:len(path):len(path)], key)
}

func (c *compiler) object(n *node, path []string, depth int) (*object, *Error) {
	if depth > MaxDepth {
		return nil, errorf(n.off, path, "pattern objects nest more than %d deep", MaxDepth)
	}
	if len(n.mems) == 0 {
		if len(path) == 0 {
			return nil, errorf(n.off, nil, "pattern is an empty object; it must name at least one key")
		}
		return nil, errorf(n.off, path, "empty object; a nested pattern must name at least one key")
	}
	o := &object{}
	seen := make(map[string]bool, len(n.mems))
	for _, m := range n.mems {
		p := with(path, m.key)
		if seen[m.key] {
			return nil, errorf(m.off, p, "key appears twice in one object")
		}
		seen[m.key] = true
		if m.key == "$or" {
			branches, err := c.or(m.val, p, depth)
			if err != nil {
				return nil, err
			}
			o.ors = append(o.ors, branches)
			continue
		}
		switch m.val.kind {
		case kindObject:
			sub, err := c.object(m.val, p, depth+1)
			if err != nil {
				return nil, err
			}
			o.fields = append(o.fields, field{key: m.key, sub: sub})
		case kindArray:
			ms, err := c.matcherArray(m.val, p)
			if err != nil {
				return nil, err
			}
			o.fields = append(o.fields, field{key: m.key, ms: ms})
		default:
			return nil, errorf(m.val.off, p, "value must be an array of matchers such as [\"order\"] or a nested object; got %s %s", article(m.val.kind), m.val.kind)
		}
	}
	return o, nil
}

func (c *compiler) or(n *node, path []string, depth int) ([]*object, *Error) {
	if n.kind != kindArray || len(n.elems) < 2 {
		what := fmt.Sprintf("%s %s", article(n.kind), n.kind)
		if n.kind == kindArray {
			what = fmt.Sprintf("%d", len(n.elems))
		}
		return nil, errorf(n.off, path, "$or needs an array of at least two pattern objects; got %s", what)
	}
	branches := make([]*object, 0, len(n.elems))
	for i, e := range n.elems {
		p := append(path[:len(path)-1:len(path)-1], fmt.Sprintf("$or[%d]", i))
		if e.kind != kindObject {
			return nil, errorf(e.off, p, "$or branch must be a pattern object; got %s %s", article(e.kind), e.kind)
		}
		b, err := c.object(e, p, depth+1)
		if err != nil {
			return nil, err
		}
		branches = append(branches, b)
	}
	return branches, nil
}

// count charges n matchers against MaxMatchers.
func (c *compiler) count(off int, path []string, n int) *Error {
	c.nmatchers += n
	if c.nmatchers > MaxMatchers {
		return errorf(off, path, "pattern has more than %d matchers", MaxMatchers)
	}
	return nil
}

func (c *compiler) matcherArray(n *node, path []string) ([]matcher, *Error) {
	if len(n.elems) == 0 {
		return nil, errorf(n.off, path, "matcher array is empty; it needs at least one value or matcher")
	}
	ms := make([]matcher, 0, len(n.elems))
	for _, e := range n.elems {
		if err := c.count(e.off, path, 1); err != nil {
			return nil, err
		}
		switch e.kind {
		case kindNull, kindBool, kindNumber, kindString:
			ms = append(ms, matcher{op: opExact, val: scalar(e)})
		case kindObject:
			m, err := c.matcherObject(e, path)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		default:
			return nil, errorf(e.off, path, "a matcher must be a string, number, boolean, null or matcher object; got an array")
		}
	}
	return ms, nil
}

func scalar(n *node) value {
	return value{kind: n.kind, b: n.b, num: n.num, str: n.str}
}

const matcherNames = "prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric or exists"

func (c *compiler) matcherObject(n *node, path []string) (matcher, *Error) {
	if len(n.mems) != 1 {
		got := "none"
		if len(n.mems) > 1 {
			got = fmt.Sprintf("%d", len(n.mems))
		}
		return matcher{}, errorf(n.off, path, "a matcher object has exactly one key (%s); got %s", matcherNames, got)
	}
	m := n.mems[0]
	v := m.val
	switch m.key {
	case "prefix", "suffix":
		o := opPrefix
		if m.key == "suffix" {
			o = opSuffix
		}
		if v.kind == kindString {
			return matcher{op: o, str: v.str}, nil
		}
		if v.kind == kindObject && len(v.mems) == 1 && v.mems[0].key == "equals-ignore-case" && v.mems[0].val.kind == kindString {
			return matcher{op: o, str: v.mems[0].val.str, fold: true}, nil
		}
		return matcher{}, errorf(v.off, path, `%s needs a string or {"equals-ignore-case": string}; got %s`, m.key, describe(v))
	case "equals-ignore-case":
		if v.kind != kindString {
			return matcher{}, errorf(v.off, path, "equals-ignore-case needs a string; got %s", describe(v))
		}
		return matcher{op: opEqualsIgnoreCase, str: v.str}, nil
	case "wildcard":
		return wildcard(v, path)
	case "anything-but":
		return c.anythingBut(v, path)
	case "numeric":
		return numeric(v, path)
	case "exists":
		if v.kind != kindBool {
			return matcher{}, errorf(v.off, path, "exists needs true or false; got %s", describe(v))
		}
		return matcher{op: opExists, exists: v.b}, nil
	case "cidr":
		return matcher{}, errorf(m.off, path, "the cidr matcher is not supported; use %s", matcherNames)
	default:
		return matcher{}, errorf(m.off, path, "unknown matcher %q; use %s", m.key, matcherNames)
	}
}

// describe names a value's type for errors: "a string", "an object".
func describe(n *node) string {
	return fmt.Sprintf("%s %s", article(n.kind), n.kind)
}

func wildcard(v *node, path []string) (matcher, *Error) {
	if v.kind != kindString {
		return matcher{}, errorf(v.off, path, "wildcard needs a string; got %s", describe(v))
	}
	var segs []string
	var cur strings.Builder
	s := v.str
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) || (s[i+1] != '*' && s[i+1] != '\\') {
				return matcher{}, errorf(v.off, path, `wildcard %q: a backslash must escape * or \`, s)
			}
			i++
			cur.WriteByte(s[i])
		case '*':
			if i > 0 && s[i-1] == '*' {
				return matcher{}, errorf(v.off, path, "wildcard %q: consecutive * are not allowed", s)
			}
			segs = append(segs, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	segs = append(segs, cur.String())
	return matcher{op: opWildcard, glob: segs}, nil
}

func (c *compiler) anythingBut(v *node, path []string) (matcher, *Error) {
	const want = `anything-but needs a string, a number, a list of only strings or only numbers, or {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": string}`
	switch v.kind {
	case kindString, kindNumber:
		return matcher{op: opAnythingBut, not: []value{scalar(v)}}, nil
	case kindArray:
		if len(v.elems) == 0 {
			return matcher{}, errorf(v.off, path, "anything-but list is empty")
		}
		// The matcher itself was already counted once.
		if err := c.count(v.off, path, len(v.elems)-1); err != nil {
			return matcher{}, err
		}
		not := make([]value, 0, len(v.elems))
		for _, e := range v.elems {
			if e.kind != kindString && e.kind != kindNumber {
				return matcher{}, errorf(e.off, path, "%s; got %s in the list", want, describe(e))
			}
			if e.kind != v.elems[0].kind {
				return matcher{}, errorf(e.off, path, "anything-but list mixes strings and numbers")
			}
			not = append(not, scalar(e))
		}
		return matcher{op: opAnythingBut, not: not}, nil
	case kindObject:
		if len(v.mems) == 1 {
			m := v.mems[0]
			var inner matcher
			switch m.key {
			case "prefix":
				inner.op = opPrefix
			case "suffix":
				inner.op = opSuffix
			case "equals-ignore-case":
				inner.op = opEqualsIgnoreCase
			case "wildcard":
				inner.op = opWildcard
			default:
				return matcher{}, errorf(m.off, path, "%s; got %q", want, m.key)
			}
			if m.val.kind != kindString {
				return matcher{}, errorf(m.val.off, path, "anything-but %s needs a string; got %s", m.key, describe(m.val))
			}
			if inner.op == opWildcard {
				w, err := wildcard(m.val, path)
				if err != nil {
					return matcher{}, err
				}
				inner = w
			} else {
				inner.str = m.val.str
			}
			return matcher{op: opAnythingBut, inner: &inner}, nil
		}
	}
	return matcher{}, errorf(v.off, path, "%s; got %s", want, describe(v))
}

func numeric(v *node, path []string) (matcher, *Error) {
	const need = `numeric needs an operator followed by a number, such as [">", 0, "<=", 5]`
	if v.kind != kindArray || len(v.elems) == 0 {
		return matcher{}, errorf(v.off, path, "%s; got %s", need, describe(v))
	}
	if len(v.elems) > 4 {
		return matcher{}, errorf(v.elems[4].off, path, "numeric allows at most two comparisons")
	}
	var cmps []comparison
	for i := 0; i < len(v.elems); i += 2 {
		o := v.elems[i]
		if o.kind != kindString {
			return matcher{}, errorf(o.off, path, "%s; got %s where an operator belongs", need, describe(o))
		}
		switch o.str {
		case "=", "<", "<=", ">", ">=":
		default:
			return matcher{}, errorf(o.off, path, "numeric operator %q is not one of =, <, <=, >, >=", o.str)
		}
		if i+1 == len(v.elems) {
			return matcher{}, errorf(o.off, path, "%s; operator %q has no number", need, o.str)
		}
		num := v.elems[i+1]
		if num.kind != kindNumber {
			return matcher{}, errorf(num.off, path, "%s; got %s after %q", need, describe(num), o.str)
		}
		cmps = append(cmps, comparison{op: o.str, num: num.num})
	}
	if len(cmps) == 2 {
		lo, hi := cmps[0], cmps[1]
		if lo.op == "=" || hi.op == "=" {
			return matcher{}, errorf(v.elems[2].off, path, `numeric "=" cannot be combined with another comparison`)
		}
		if (lo.op != ">" && lo.op != ">=") || (hi.op != "<" && hi.op != "<=") {
			return matcher{}, errorf(v.elems[2].off, path, "numeric range needs a lower bound (> or >=) first and an upper bound (< or <=) second")
		}
		if lo.num > hi.num || (lo.num == hi.num && (lo.op == ">" || hi.op == "<")) {
			return matcher{}, errorf(v.elems[3].off, path, "numeric range %s %v, %s %v matches no number", lo.op, lo.num, hi.op, hi.num)
		}
	}
	return matcher{op: opNumeric, cmps: cmps}, nil
}
