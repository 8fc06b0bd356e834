package specs

import (
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// path names a place in the spec tree the way a person reads it in HCL:
// function "hello" → url → cors → allow_methods[2]. Parse records the source
// range of every path it decodes, so validation rules can work on the model
// alone and still point at the exact file:line:col.
type path []string

func (p path) with(seg string) path {
	out := make(path, len(p), len(p)+1)
	copy(out, p)
	return append(out, seg)
}

// attr is an attribute or unlabelled block inside p.
func (p path) attr(name string) path { return p.with(name) }

// block is a labelled block inside p.
func (p path) block(typ, label string) path { return p.with(typ + " " + strconv.Quote(label)) }

// index is an element of a list attribute.
func (p path) index(i int) path { return p.with("[" + strconv.Itoa(i) + "]") }

// key is an element of a map attribute.
func (p path) key(k string) path { return p.with("[" + strconv.Quote(k) + "]") }

func (p path) mapKey() string { return strings.Join(p, "\x00") }

// String renders p for messages without a source range:
// `function "hello".url.cors.allow_methods[2]`.
func (p path) String() string {
	var b strings.Builder
	for i, s := range p {
		if i > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// ranges maps paths to where they are in the source.
type ranges map[string]hcl.Range

func (r ranges) set(p path, rng hcl.Range) {
	if r != nil {
		r[p.mapKey()] = rng
	}
}

// lookup returns the range of p or of its nearest recorded ancestor.
func (r ranges) lookup(p path) *hcl.Range {
	for n := len(p); n > 0 && r != nil; n-- {
		if rng, ok := r[p[:n].mapKey()]; ok {
			return &rng
		}
	}
	return nil
}
