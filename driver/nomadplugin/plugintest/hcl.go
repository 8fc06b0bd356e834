package plugintest

import (
	"encoding/json"
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/hclspec"
)

// DecodeSpec converts a plugin's hclspec into the hcldec spec Nomad builds
// from it, with Nomad's naming rules: an Object passes each key down as the
// default name; Default and Array children get no default name.
func DecodeSpec(s *hclspec.Spec) (hcldec.Spec, error) { return decodeSpec(s, "") }

func decodeSpec(s *hclspec.Spec, name string) (hcldec.Spec, error) {
	if s == nil {
		return nil, fmt.Errorf("nil spec given")
	}
	pick := func(n string) string {
		if n != "" {
			return n
		}
		return name
	}
	switch b := s.GetBlock().(type) {
	case *hclspec.Spec_Object:
		obj := hcldec.ObjectSpec{}
		for k, v := range b.Object.GetAttributes() {
			c, err := decodeSpec(v, k)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			obj[k] = c
		}
		return obj, nil
	case *hclspec.Spec_Array:
		var tup hcldec.TupleSpec
		for _, v := range b.Array.GetValues() {
			c, err := decodeSpec(v, "")
			if err != nil {
				return nil, err
			}
			tup = append(tup, c)
		}
		return tup, nil
	case *hclspec.Spec_Attr:
		n := pick(b.Attr.GetName())
		if n == "" {
			return nil, fmt.Errorf("missing name in attribute spec")
		}
		ty, err := typeExpr(b.Attr.GetType())
		if err != nil {
			return nil, err
		}
		return &hcldec.AttrSpec{Name: n, Type: ty, Required: b.Attr.GetRequired()}, nil
	case *hclspec.Spec_BlockValue:
		n := pick(b.BlockValue.GetName())
		nested, err := decodeSpec(b.BlockValue.GetNested(), "")
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockSpec{TypeName: n, Required: b.BlockValue.GetRequired(), Nested: nested}, nil
	case *hclspec.Spec_BlockAttrs:
		ty, err := typeExpr(b.BlockAttrs.GetType())
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockAttrsSpec{TypeName: pick(b.BlockAttrs.GetName()), ElementType: ty, Required: b.BlockAttrs.GetRequired()}, nil
	case *hclspec.Spec_BlockList:
		n := pick(b.BlockList.GetName())
		if n == "" {
			return nil, fmt.Errorf("missing name in block_list spec")
		}
		nested, err := decodeSpec(b.BlockList.GetNested(), "")
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockListSpec{TypeName: n, MinItems: int(b.BlockList.GetMinItems()), MaxItems: int(b.BlockList.GetMaxItems()), Nested: nested}, nil
	case *hclspec.Spec_BlockSet:
		n := pick(b.BlockSet.GetName())
		if n == "" {
			return nil, fmt.Errorf("missing name in block_set spec")
		}
		nested, err := decodeSpec(b.BlockSet.GetNested(), "")
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockSetSpec{TypeName: n, MinItems: int(b.BlockSet.GetMinItems()), MaxItems: int(b.BlockSet.GetMaxItems()), Nested: nested}, nil
	case *hclspec.Spec_BlockMap:
		n := pick(b.BlockMap.GetName())
		if n == "" || len(b.BlockMap.GetLabels()) == 0 {
			return nil, fmt.Errorf("block_map needs a name and at least one label")
		}
		nested, err := decodeSpec(b.BlockMap.GetNested(), "")
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockMapSpec{TypeName: n, LabelNames: b.BlockMap.GetLabels(), Nested: nested}, nil
	case *hclspec.Spec_Default:
		p, err := decodeSpec(b.Default.GetPrimary(), "")
		if err != nil {
			return nil, err
		}
		d, err := decodeSpec(b.Default.GetDefault(), "")
		if err != nil {
			return nil, err
		}
		return &hcldec.DefaultSpec{Primary: p, Default: d}, nil
	case *hclspec.Spec_Literal:
		expr, diags := hclsyntax.ParseExpression([]byte(b.Literal.GetValue()), "literal", hcl.InitialPos)
		if diags.HasErrors() {
			return nil, diags
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() {
			return nil, diags
		}
		return &hcldec.LiteralSpec{Value: v}, nil
	default:
		return nil, fmt.Errorf("spec has no block set")
	}
}

func typeExpr(s string) (cty.Type, error) {
	expr, diags := hclsyntax.ParseExpression([]byte(s), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, diags
	}
	ty, diags := typeexpr.TypeConstraint(expr)
	if diags.HasErrors() {
		return cty.NilType, diags
	}
	return ty, nil
}

// EncodeConfig encodes a config block the way Nomad does for msgpack_config
// and msgpack_driver_config: the block (a JSON object, as Nomad holds job and
// agent config) is decoded as an HCL-JSON body against the plugin's spec with
// vars as interpolation variables, and the value is written with go-cty's
// msgpack using its own type.
func EncodeConfig(spec *hclspec.Spec, block map[string]any, vars map[string]cty.Value) ([]byte, error) {
	dec, err := DecodeSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("converting spec: %w", err)
	}
	if block == nil {
		block = map[string]any{}
	}
	js, err := json.Marshal(block)
	if err != nil {
		return nil, err
	}
	body, diags := hcljson.Parse(js, "config.json")
	if diags.HasErrors() {
		return nil, diags
	}
	val, diags := hcldec.Decode(body.Body, dec, &hcl.EvalContext{Variables: vars})
	if diags.HasErrors() {
		return nil, diags
	}
	return ctymsgpack.Marshal(val, val.Type())
}
