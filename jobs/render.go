package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/hashicorp/nomad/api"
	"github.com/zclconf/go-cty/cty"
)

// RenderJSON writes the job as `nomad job run -json` and the register API
// (PUT /v1/jobs) take it: the API job wrapped in {"Job": …}, which is also
// what `nomad job run -output` prints. Output is indented and deterministic.
func RenderJSON(job *api.Job) ([]byte, error) {
	if job == nil {
		return nil, errors.New("rendering job JSON: job is nil")
	}
	b, err := json.MarshalIndent(struct{ Job *api.Job }{job}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering job JSON: %w", err)
	}
	return append(b, '\n'), nil
}

// RenderHCL writes the job as an HCL2 jobspec (`job "<id>" { … }`) that
// `nomad job run` accepts. It walks the api structs through their `hcl`
// tags, the same names Nomad's own jobspec parser decodes; a field of a
// kind it cannot write is an error, never silently dropped.
func RenderHCL(job *api.Job) ([]byte, error) {
	if job == nil || job.ID == nil || *job.ID == "" {
		return nil, errors.New("rendering job HCL: job has no ID")
	}
	f := hclwrite.NewEmptyFile()
	block := f.Body().AppendNewBlock("job", []string{*job.ID})
	r := renderer{}
	if err := r.body(block.Body(), reflect.ValueOf(job).Elem(), "job"); err != nil {
		return nil, fmt.Errorf("rendering job %q as HCL: %w", *job.ID, err)
	}
	return hclwrite.Format(f.Bytes()), nil
}

type renderer struct{}

var durationType = reflect.TypeFor[time.Duration]()

type hclTag struct {
	name  string
	kind  string // "label", "optional", "block", "" (required attribute)
	valid bool
}

func parseTag(f reflect.StructField) hclTag {
	tag, ok := f.Tag.Lookup("hcl")
	if !ok {
		return hclTag{}
	}
	name, kind, _ := strings.Cut(tag, ",")
	return hclTag{name: name, kind: kind, valid: true}
}

// body writes struct v's tagged fields into b. Labels were written by the
// caller. Attributes come first, then blocks, each in field order.
func (r renderer) body(b *hclwrite.Body, v reflect.Value, where string) error {
	t := v.Type()
	var blocks []int
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := parseTag(sf)
		if !tag.valid || tag.kind == "label" || sf.PkgPath != "" {
			continue
		}
		fv := v.Field(i)
		if where == "job" && (tag.name == "id" || (tag.name == "name" && sameString(fv, v.FieldByName("ID")))) {
			continue // the job's label is its ID; Name defaults to it
		}
		if tag.kind == "block" {
			blocks = append(blocks, i)
			continue
		}
		if skipValue(fv) {
			continue
		}
		val, err := r.value(fv, where+"."+tag.name)
		if err != nil {
			return err
		}
		b.SetAttributeValue(tag.name, val)
	}
	for _, i := range blocks {
		sf := t.Field(i)
		tag := parseTag(sf)
		if err := r.blockField(b, tag.name, v.Field(i), where+"."+tag.name); err != nil {
			return err
		}
	}
	// A task's default workload identity has no hcl tag in the api (the
	// jobspec parser fills it from the `identity` block without a name).
	if t == taskType {
		if id := v.FieldByName("Identity"); !id.IsNil() {
			return r.block(b, "identity", id.Elem(), where+".identity")
		}
	}
	return nil
}

var taskType = reflect.TypeFor[api.Task]()

// sameString reports whether the *string name is unset or equals the *string id.
func sameString(name, id reflect.Value) bool {
	if name.IsNil() {
		return true
	}
	return !id.IsNil() && name.Elem().String() == id.Elem().String()
}

// skipValue reports whether an attribute is absent: nil pointers, slices and
// maps, and zero non-pointer values (pointers to zero values are written,
// they are how the api marks "set to zero").
func skipValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	default:
		return v.IsZero()
	}
}

// blockField writes a `hcl:"x,block"` field: a struct pointer is one block,
// a slice is one block per element, a map is a block of attributes (or an
// attribute holding an object when a key is not an identifier, as Nomad's
// docs prescribe for meta keys with dots).
func (r renderer) blockField(b *hclwrite.Body, name string, v reflect.Value, where string) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return r.block(b, name, v.Elem(), where)
	case reflect.Struct:
		if v.IsZero() {
			return nil
		}
		return r.block(b, name, v, where)
	case reflect.Slice:
		for i := range v.Len() {
			e := v.Index(i)
			if e.Kind() == reflect.Pointer {
				if e.IsNil() {
					continue
				}
				e = e.Elem()
			}
			if err := r.block(b, name, e, fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if v.Len() == 0 {
			return nil
		}
		if name == "policy" {
			m, ok := v.Interface().(map[string]any)
			if !ok {
				return fmt.Errorf("%s: policy is %s, not map[string]any", where, v.Type())
			}
			return r.policyBlock(b.AppendNewBlock(name, nil).Body(), m, where)
		}
		if et := v.Type().Elem(); et.Kind() == reflect.Struct || (et.Kind() == reflect.Pointer && et.Elem().Kind() == reflect.Struct) {
			return r.labelledBlocks(b, name, v, where)
		}
		return r.mapBlock(b, name, v, where)
	default:
		return fmt.Errorf("%s: cannot write a %s as a block", where, v.Type())
	}
}

func (r renderer) block(b *hclwrite.Body, name string, v reflect.Value, where string) error {
	if v.Kind() != reflect.Struct {
		return fmt.Errorf("%s: cannot write a %s as a block", where, v.Type())
	}
	var labels []string
	t := v.Type()
	for i := range t.NumField() {
		if tag := parseTag(t.Field(i)); tag.valid && tag.kind == "label" {
			fv := v.Field(i)
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					return fmt.Errorf("%s: block label %s is nil", where, t.Field(i).Name)
				}
				fv = fv.Elem()
			}
			labels = append(labels, fv.String())
		}
	}
	blk := b.AppendNewBlock(name, labels)
	return r.body(blk.Body(), v, where)
}

// labelledBlocks writes a map of structs (a group's `volume "name" { … }`)
// as one block per entry in key order, each labelled by its struct's own
// label field.
func (r renderer) labelledBlocks(b *hclwrite.Body, name string, v reflect.Value, where string) error {
	keys := make([]string, 0, v.Len())
	for _, k := range v.MapKeys() {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key()))
		if e.Kind() == reflect.Pointer {
			if e.IsNil() {
				continue
			}
			e = e.Elem()
		}
		if err := r.block(b, name, e, where+"."+k); err != nil {
			return err
		}
	}
	return nil
}

func (r renderer) mapBlock(b *hclwrite.Body, name string, v reflect.Value, where string) error {
	keys := make([]string, 0, v.Len())
	for _, k := range v.MapKeys() {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	identifiers := true
	for _, k := range keys {
		if !hclsyntax.ValidIdentifier(k) {
			identifiers = false
		}
	}
	if identifiers {
		blk := b.AppendNewBlock(name, nil).Body()
		for _, k := range keys {
			val, err := r.value(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), where+"."+k)
			if err != nil {
				return err
			}
			blk.SetAttributeValue(k, val)
		}
		return nil
	}
	obj := map[string]cty.Value{}
	for _, k := range keys {
		val, err := r.value(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), where+"."+k)
		if err != nil {
			return err
		}
		obj[k] = val
	}
	b.SetAttributeRaw(name, objectTokens(keys, obj))
	return nil
}

// objectTokens writes { "k" = v, … } with quoted keys in the given order
// (hclwrite's own object writer leaves identifier-like keys unquoted and
// cannot express keys with dots as plain names).
func objectTokens(keys []string, obj map[string]cty.Value) hclwrite.Tokens {
	toks := hclwrite.Tokens{
		{Type: hclsyntax.TokenOBrace, Bytes: []byte("{")},
		{Type: hclsyntax.TokenNewline, Bytes: []byte("\n")},
	}
	for _, k := range keys {
		toks = append(toks, hclwrite.TokensForValue(cty.StringVal(k))...)
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenEqual, Bytes: []byte("=")})
		toks = append(toks, hclwrite.TokensForValue(obj[k])...)
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenNewline, Bytes: []byte("\n")})
	}
	return append(toks, &hclwrite.Token{Type: hclsyntax.TokenCBrace, Bytes: []byte("}")})
}

// policyBlock writes a scaling policy map in the shape Nomad stores it:
// nested blocks are lists of maps, and a labelled block is a one-key map
// from the label to a list holding the body.
func (r renderer) policyBlock(b *hclwrite.Body, m map[string]any, where string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var blockKeys []string
	for _, k := range keys {
		if isBlockList(m[k]) {
			blockKeys = append(blockKeys, k)
			continue
		}
		val, err := r.value(reflect.ValueOf(m[k]), where+"."+k)
		if err != nil {
			return err
		}
		b.SetAttributeValue(k, val)
	}
	for _, k := range blockKeys {
		for i, e := range m[k].([]any) {
			em := e.(map[string]any)
			at := fmt.Sprintf("%s.%s[%d]", where, k, i)
			if label, inner, ok := labelled(em); ok {
				for _, body := range inner {
					if err := r.policyBlock(b.AppendNewBlock(k, []string{label}).Body(), body, at); err != nil {
						return err
					}
				}
				continue
			}
			if err := r.policyBlock(b.AppendNewBlock(k, nil).Body(), em, at); err != nil {
				return err
			}
		}
	}
	return nil
}

func isBlockList(v any) bool {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return false
	}
	for _, e := range l {
		if _, ok := e.(map[string]any); !ok {
			return false
		}
	}
	return true
}

func labelled(m map[string]any) (string, []map[string]any, bool) {
	if len(m) != 1 {
		return "", nil, false
	}
	for k, v := range m {
		if !isBlockList(v) {
			return "", nil, false
		}
		var out []map[string]any
		for _, e := range v.([]any) {
			out = append(out, e.(map[string]any))
		}
		return k, out, true
	}
	return "", nil, false
}

// value converts an attribute value to cty. Durations become Go duration
// strings, which Nomad's jobspec parser reads back.
func (r renderer) value(v reflect.Value, where string) (cty.Value, error) {
	if v.Kind() == reflect.Interface {
		if v.IsNil() {
			return cty.NullVal(cty.DynamicPseudoType), nil
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return cty.NullVal(cty.DynamicPseudoType), nil
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		return cty.StringVal(time.Duration(v.Int()).String()), nil
	}
	switch v.Kind() {
	case reflect.String:
		return cty.StringVal(v.String()), nil
	case reflect.Bool:
		return cty.BoolVal(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return cty.NumberIntVal(v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return cty.NumberUIntVal(v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return cty.NumberFloatVal(v.Float()), nil
	case reflect.Slice:
		if v.Len() == 0 {
			return cty.ListValEmpty(cty.String), nil
		}
		elems := make([]cty.Value, v.Len())
		for i := range v.Len() {
			e, err := r.value(v.Index(i), fmt.Sprintf("%s[%d]", where, i))
			if err != nil {
				return cty.NilVal, err
			}
			elems[i] = e
		}
		return cty.TupleVal(elems), nil
	case reflect.Map:
		obj := map[string]cty.Value{}
		for _, k := range v.MapKeys() {
			e, err := r.value(v.MapIndex(k), where+"."+k.String())
			if err != nil {
				return cty.NilVal, err
			}
			obj[k.String()] = e
		}
		return cty.ObjectVal(obj), nil
	default:
		return cty.NilVal, fmt.Errorf("%s: cannot write a %s as an attribute", where, v.Type())
	}
}
