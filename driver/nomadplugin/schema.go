package nomadplugin

import (
	"fmt"
	"math/big"
	"reflect"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/hclspec"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
)

// attr is one attribute of a flat configuration block: the single source
// from which both the hclspec sent to Nomad and the cty type used to decode
// Nomad's msgpack bytes are built, so the two cannot disagree.
type attr struct {
	name     string
	typ      string // HCL type expression: string, number, bool, list(string)
	required bool
	// def is an HCL literal expression applied by Nomad when the attribute
	// is absent ("" means none).
	def string
}

// schema is an ordered flat block.
type schema []attr

// spec returns the hclspec Object Nomad decodes the block with. Attributes
// with a default need their name set: hcldec passes no default name into
// a Default spec.
func (s schema) spec() *hclspec.Spec {
	attrs := make(map[string]*hclspec.Spec, len(s))
	for _, a := range s {
		a := a
		if a.def == "" {
			attrs[a.name] = &hclspec.Spec{Block: &hclspec.Spec_Attr{Attr: &hclspec.Attr{Type: a.typ, Required: a.required}}}
			continue
		}
		attrs[a.name] = &hclspec.Spec{Block: &hclspec.Spec_Default{Default: &hclspec.Default{
			Primary: &hclspec.Spec{Block: &hclspec.Spec_Attr{Attr: &hclspec.Attr{Name: a.name, Type: a.typ}}},
			Default: &hclspec.Spec{Block: &hclspec.Spec_Literal{Literal: &hclspec.Literal{Value: a.def}}},
		}}}
	}
	return &hclspec.Spec{Block: &hclspec.Spec_Object{Object: &hclspec.Object{Attributes: attrs}}}
}

// impliedType is the object type Nomad's encoder writes for this block:
// every attribute present (null when unset), keyed by name.
func (s schema) impliedType() (cty.Type, error) {
	ats := make(map[string]cty.Type, len(s))
	for _, a := range s {
		ty, err := parseType(a.typ)
		if err != nil {
			return cty.NilType, fmt.Errorf("attribute %s: %w", a.name, err)
		}
		ats[a.name] = ty
	}
	return cty.Object(ats), nil
}

func parseType(expr string) (cty.Type, error) {
	e, diags := hclsyntax.ParseExpression([]byte(expr), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("parsing type %q: %s", expr, diags.Error())
	}
	ty, diags := typeexpr.TypeConstraint(e)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("type %q: %s", expr, diags.Error())
	}
	return ty, nil
}

// decode reads go-cty msgpack bytes written against s.spec() into dst, a
// pointer to a struct whose fields carry `hcl:"name"` tags. Null attributes
// leave their field untouched, so callers preset defaults. Numbers arrive
// as integers, floats or decimal strings; go-cty reads all three.
func (s schema) decode(b []byte, dst any) error {
	if len(b) == 0 {
		return nil
	}
	ty, err := s.impliedType()
	if err != nil {
		return err
	}
	v, err := ctymsgpack.Unmarshal(b, ty)
	if err != nil {
		return fmt.Errorf("decoding msgpack config: %w", err)
	}
	if v.IsNull() {
		return nil
	}
	rv := reflect.ValueOf(dst).Elem()
	fields := hclFields(rv.Type())
	for _, a := range s {
		av := v.GetAttr(a.name)
		if av.IsNull() {
			continue
		}
		idx, ok := fields[a.name]
		if !ok {
			return fmt.Errorf("attribute %s has no field in %s", a.name, rv.Type())
		}
		if err := assign(rv.Field(idx), av); err != nil {
			return fmt.Errorf("attribute %s: %w", a.name, err)
		}
	}
	return nil
}

// hclFields maps hcl tag names to field indexes.
func hclFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("hcl")
		if tag == "" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		m[name] = i
	}
	return m
}

func assign(f reflect.Value, v cty.Value) error {
	if !v.IsKnown() {
		return fmt.Errorf("value is unknown")
	}
	switch f.Kind() {
	case reflect.String:
		if v.Type() != cty.String {
			return fmt.Errorf("want a string, got %s", v.Type().FriendlyName())
		}
		f.SetString(v.AsString())
	case reflect.Bool:
		if v.Type() != cty.Bool {
			return fmt.Errorf("want a bool, got %s", v.Type().FriendlyName())
		}
		f.SetBool(v.True())
	case reflect.Int, reflect.Int64, reflect.Int32:
		if v.Type() != cty.Number {
			return fmt.Errorf("want a number, got %s", v.Type().FriendlyName())
		}
		n, acc := v.AsBigFloat().Int64()
		if acc != big.Exact {
			return fmt.Errorf("%s is not a whole number", v.AsBigFloat().Text('g', -1))
		}
		if f.OverflowInt(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		f.SetInt(n)
	case reflect.Slice:
		if et := f.Type().Elem(); et.Kind() == reflect.Map && et.Key().Kind() == reflect.String && et.Elem().Kind() == reflect.String {
			if !(v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType()) {
				return fmt.Errorf("want a list of maps, got %s", v.Type().FriendlyName())
			}
			out := reflect.MakeSlice(f.Type(), 0, v.LengthInt())
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				m := reflect.New(et).Elem()
				if err := assign(m, e); err != nil {
					return err
				}
				out = reflect.Append(out, m)
			}
			f.Set(out)
			return nil
		}
		if f.Type().Elem().Kind() != reflect.String || !(v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType()) {
			return fmt.Errorf("want a list of strings, got %s", v.Type().FriendlyName())
		}
		out := make([]string, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsNull() || e.Type() != cty.String {
				return fmt.Errorf("list elements must be strings")
			}
			out = append(out, e.AsString())
		}
		f.Set(reflect.ValueOf(out))
	case reflect.Map:
		if f.Type().Key().Kind() != reflect.String || f.Type().Elem().Kind() != reflect.String || !(v.Type().IsMapType() || v.Type().IsObjectType()) {
			return fmt.Errorf("want a map of strings, got %s", v.Type().FriendlyName())
		}
		out := make(map[string]string, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.IsNull() || e.Type() != cty.String {
				return fmt.Errorf("map values must be strings")
			}
			out[k.AsString()] = e.AsString()
		}
		f.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("unsupported field kind %s", f.Kind())
	}
	return nil
}

// taskSchema is the task `config {}` block, straight from the contract.
func taskSchema() schema {
	src := taskconfig.Schema()
	s := make(schema, 0, len(src))
	for _, a := range src {
		s = append(s, attr{name: a.Name, typ: a.Type, required: a.Required})
	}
	return s
}

// DecodeTaskConfig decodes a task's msgpack_driver_config (go-cty msgpack
// against TaskConfigSchema's spec) and normalises it.
func DecodeTaskConfig(b []byte) (*taskconfig.TaskConfig, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: task has no driver config", taskconfig.ErrInvalid)
	}
	var tc taskconfig.TaskConfig
	if err := taskSchema().decode(b, &tc); err != nil {
		return nil, fmt.Errorf("decoding task config: %w", err)
	}
	if err := tc.Normalize(); err != nil {
		return nil, err
	}
	return &tc, nil
}
