package specs

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// maxFileFunctionBytes bounds what file() reads: specs embed small things
// (a policy, a JSON event), never big data.
const maxFileFunctionBytes = 1 << 20

// functions is the function table of a spec: a stdlib set from go-cty plus
// file/fileexists (relative to dir), env (through getenv) and a few
// encoding helpers. Functions that can build unbounded values from small
// inputs (range, setproduct) are left out on purpose. Every function is
// metered by b, and the table holds the site functions of b (see
// guardExpressions).
func functions(dir string, getenv func(string) string, b *budget) map[string]function.Function {
	fs := map[string]function.Function{
		"abs":             stdlib.AbsoluteFunc,
		"ceil":            stdlib.CeilFunc,
		"floor":           stdlib.FloorFunc,
		"log":             stdlib.LogFunc,
		"max":             stdlib.MaxFunc,
		"min":             stdlib.MinFunc,
		"parseint":        stdlib.ParseIntFunc,
		"pow":             stdlib.PowFunc,
		"signum":          stdlib.SignumFunc,
		"chomp":           stdlib.ChompFunc,
		"format":          guard(stdlib.FormatFunc, formatBound),
		"formatlist":      guard(stdlib.FormatListFunc, formatBound),
		"indent":          guard(stdlib.IndentFunc, indentBound),
		"join":            stdlib.JoinFunc,
		"lower":           stdlib.LowerFunc,
		"upper":           stdlib.UpperFunc,
		"title":           stdlib.TitleFunc,
		"regex":           stdlib.RegexFunc,
		"regexall":        stdlib.RegexAllFunc,
		"replace":         guard(stdlib.ReplaceFunc, replaceBound),
		"regex_replace":   guard(stdlib.RegexReplaceFunc, replaceBound),
		"split":           stdlib.SplitFunc,
		"strrev":          stdlib.ReverseFunc,
		"strlen":          stdlib.StrlenFunc,
		"substr":          stdlib.SubstrFunc,
		"trim":            stdlib.TrimFunc,
		"trimprefix":      stdlib.TrimPrefixFunc,
		"trimsuffix":      stdlib.TrimSuffixFunc,
		"trimspace":       stdlib.TrimSpaceFunc,
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"keys":            stdlib.KeysFunc,
		"length":          stdlib.LengthFunc,
		"lookup":          stdlib.LookupFunc,
		"merge":           stdlib.MergeFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,
		"csvdecode":       stdlib.CSVDecodeFunc,
		"jsondecode":      stdlib.JSONDecodeFunc,
		"jsonencode":      stdlib.JSONEncodeFunc,
		"formatdate":      stdlib.FormatDateFunc,
		"timeadd":         stdlib.TimeAddFunc,
		"tobool":          stdlib.MakeToFunc(cty.Bool),
		"tonumber":        stdlib.MakeToFunc(cty.Number),
		"tostring":        stdlib.MakeToFunc(cty.String),
		"tolist":          stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":           stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"toset":           stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"base64encode":    base64EncodeFunc,
		"base64decode":    base64DecodeFunc,
		"sha256":          sha256Func,
	}
	fs["file"] = fileFunc(dir)
	fs["fileexists"] = fileExistsFunc(dir)
	fs["env"] = envFunc(getenv)
	for name, f := range fs {
		fs[name] = metered(b, f)
	}
	for name, f := range siteFunctions(b) {
		fs[name] = f
	}
	return fs
}

// maxValueBytes bounds any one value a spec computes (a local, a function
// result): specs are small, and the bound keeps expressions like
// replace(s, "", s) or locals that double each other from exhausting memory.
const maxValueBytes = 1 << 20

// guard wraps f so that check sees the arguments (when known) first.
func guard(f function.Function, check func(args []cty.Value) error) function.Function {
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			for _, a := range args {
				if !a.IsWhollyKnown() || a.IsNull() {
					return f.Call(args)
				}
			}
			if err := check(args); err != nil {
				return cty.NilVal, err
			}
			return f.Call(args)
		},
	})
}

// replaceBound: the result of replace(str, substr, replacement) can be no
// longer than str with every match (at most one per byte) replaced.
func replaceBound(args []cty.Value) error {
	s, old, repl := args[0].AsString(), args[1].AsString(), args[2].AsString()
	matches := len(s) + 1
	if old != "" && !strings.HasPrefix(old, "/") {
		matches = strings.Count(s, old)
	}
	// Regex replacements may expand $1 references to at most len(s) each.
	per := len(repl) * (1 + len(s)*strings.Count(repl, "$"))
	if per > maxValueBytes || len(s)+matches*per > maxValueBytes {
		return fmt.Errorf("the result could exceed %d bytes", maxValueBytes)
	}
	return nil
}

var formatWidthRE = regexp.MustCompile(`%[-+# 0]*(\[\d+\])?(\d*)(\.\d*)?`)

// formatBound rejects widths and precisions that would pad a result past
// maxValueBytes.
func formatBound(args []cty.Value) error {
	if args[0].Type() != cty.String {
		return nil
	}
	for _, m := range formatWidthRE.FindAllStringSubmatch(args[0].AsString(), -1) {
		for _, n := range []string{m[2], strings.TrimPrefix(m[3], ".")} {
			if len(n) > 5 {
				return fmt.Errorf("format width or precision %s is too large", n)
			}
		}
	}
	return nil
}

func indentBound(args []cty.Value) error {
	n, _ := args[0].AsBigFloat().Int64()
	if n < 0 || n > 1024 {
		return fmt.Errorf("indent spaces must be between 0 and 1024; got %s", args[0].AsBigFloat().Text('g', -1))
	}
	return nil
}

// valueBytes approximates the memory a value holds.
func valueBytes(v cty.Value) int {
	if !v.IsKnown() || v.IsNull() {
		return 0
	}
	v, _ = v.Unmark()
	ty := v.Type()
	switch {
	case ty == cty.String:
		return len(v.AsString())
	case ty.IsPrimitiveType():
		return 8
	case ty.IsListType(), ty.IsSetType(), ty.IsTupleType(), ty.IsMapType(), ty.IsObjectType():
		n := 0
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			n += valueBytes(k) + valueBytes(e)
			if n > maxValueBytes {
				return n
			}
		}
		return n
	}
	return 0
}

func resolve(dir, name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(dir, name)
}

func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a UTF-8 text file, relative to the spec's directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder {
			return b.NotNull()
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := resolve(dir, args[0].AsString())
			fi, err := os.Stat(name)
			if err != nil {
				return cty.NilVal, fmt.Errorf("reading %s: %w", name, err)
			}
			if !fi.Mode().IsRegular() {
				return cty.NilVal, fmt.Errorf("reading %s: not a regular file", name)
			}
			f, err := os.Open(name)
			if err != nil {
				return cty.NilVal, fmt.Errorf("reading %s: %w", name, err)
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, maxFileFunctionBytes+1))
			if err != nil {
				return cty.NilVal, fmt.Errorf("reading %s: %w", name, err)
			}
			if len(b) > maxFileFunctionBytes {
				return cty.NilVal, fmt.Errorf("reading %s: larger than %d bytes", name, maxFileFunctionBytes)
			}
			if !utf8.Valid(b) {
				return cty.NilVal, fmt.Errorf("reading %s: not valid UTF-8 text", name)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

func fileExistsFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Says whether a regular file exists, relative to the spec's directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			fi, err := os.Stat(resolve(dir, args[0].AsString()))
			return cty.BoolVal(err == nil && fi.Mode().IsRegular()), nil
		},
	})
}

func envFunc(getenv func(string) string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns an environment variable of the process reading the spec, or \"\".",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if getenv == nil {
				return cty.StringVal(""), nil
			}
			return cty.StringVal(getenv(args[0].AsString())), nil
		},
	})
}

var base64EncodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

var base64DecodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		b, err := base64.StdEncoding.DecodeString(args[0].AsString())
		if err != nil {
			return cty.NilVal, fmt.Errorf("decoding base64: %w", err)
		}
		if !utf8.Valid(b) {
			return cty.NilVal, fmt.Errorf("decoding base64: result is not valid UTF-8 text")
		}
		return cty.StringVal(string(b)), nil
	},
})

var sha256Func = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		sum := sha256.Sum256([]byte(args[0].AsString()))
		return cty.StringVal(hex.EncodeToString(sum[:])), nil
	},
})

// evalScope evaluates the `variable` and `locals` blocks of all files and
// returns the context functions and layers are decoded in. Evaluation in
// that context is metered by bud.
func evalScope(bodies []*hcl.BodyContent, dir string, opts *Options, bud *budget) (*hcl.EvalContext, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	ctx := &hcl.EvalContext{Functions: functions(dir, opts.Env, bud)}

	// Input variables.
	vars := map[string]cty.Value{}
	declared := map[string]*hcl.Block{}
	for _, c := range bodies {
		for _, b := range c.Blocks.OfType("variable") {
			name := b.Labels[0]
			if first, dup := declared[name]; dup {
				diags = append(diags, errorAt(b.DefRange, fmt.Sprintf("Duplicate variable %q; it is already declared at %s", name, posString(first.DefRange))))
				continue
			}
			if !hclsyntax.ValidIdentifier(name) {
				diags = append(diags, errorAt(b.LabelRanges[0], fmt.Sprintf("Invalid variable name %q; use letters, digits, underscores and dashes, starting with a letter", name)))
				continue
			}
			declared[name] = b
			v, ds := variableValue(name, b, opts, ctx.Functions, bud)
			diags = append(diags, ds...)
			vars[name] = v
		}
	}
	for _, name := range sortedKeys(opts.Vars) {
		if _, ok := declared[name]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Value given for undeclared variable %q; declare it with a variable %q { } block", name, name)})
		}
	}
	for _, name := range sortedKeys(opts.Values) {
		if _, ok := declared[name]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Value given for undeclared variable %q; declare it with a variable %q { } block", name, name)})
		}
	}
	ctx.Variables = map[string]cty.Value{"var": cty.ObjectVal(vars)}

	// Locals, evaluated in dependency order.
	pending := map[string]*hcl.Attribute{}
	for _, c := range bodies {
		for _, b := range c.Blocks.OfType("locals") {
			attrs, ds := b.Body.JustAttributes()
			diags = append(diags, ds...)
			for name, a := range attrs {
				if first, dup := pending[name]; dup {
					diags = append(diags, errorAt(a.NameRange, fmt.Sprintf("Duplicate local %q; it is already defined at %s", name, posString(first.NameRange))))
					continue
				}
				pending[name] = a
			}
		}
	}
	locals := map[string]cty.Value{}
	for len(pending) > 0 {
		progressed := false
		for _, name := range sortedKeys(pending) {
			a := pending[name]
			ready := true
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "local" || len(tr) < 2 {
					continue
				}
				ref, ok := tr[1].(hcl.TraverseAttr)
				if !ok {
					continue
				}
				if _, done := locals[ref.Name]; done {
					continue
				}
				if _, known := pending[ref.Name]; !known {
					continue // evaluation reports the missing local
				}
				ready = false
			}
			if !ready {
				continue
			}
			ctx.Variables["local"] = cty.ObjectVal(locals)
			v, ds := a.Expr.Value(ctx)
			diags = append(diags, ds...)
			if ds.HasErrors() {
				v = cty.DynamicVal
			} else if valueBytes(v) > maxValueBytes {
				diags = append(diags, errorAt(a.Expr.Range(), fmt.Sprintf("Local %q is larger than %d bytes", name, maxValueBytes)))
				v = cty.DynamicVal
			}
			locals[name] = v
			delete(pending, name)
			progressed = true
		}
		if !progressed {
			for _, name := range sortedKeys(pending) {
				diags = append(diags, errorAt(pending[name].NameRange, fmt.Sprintf("Local %q refers to itself through other locals; break the cycle", name)))
				locals[name] = cty.DynamicVal // unknown: uses of it report nothing more
			}
			break
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	return ctx, diags
}

func variableValue(name string, b *hcl.Block, opts *Options, funcs map[string]function.Function, bud *budget) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	attrs, ds := b.Body.JustAttributes()
	diags = append(diags, ds...)
	ty := cty.DynamicPseudoType
	for an, a := range attrs {
		switch an {
		case "type", "default", "description":
		default:
			diags = append(diags, errorAt(a.NameRange, fmt.Sprintf("Unsupported argument %q in variable block; use type, default or description", an)))
		}
	}
	if a, ok := attrs["type"]; ok {
		t, ds := typeexpr.TypeConstraint(a.Expr)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			ty = t
		}
	}
	if v, ok := opts.Values[name]; ok {
		cv, err := convert.Convert(v, ty)
		if err != nil {
			return cty.DynamicVal, append(diags, errorAt(b.DefRange, fmt.Sprintf("Invalid value for variable %q: %s", name, err)))
		}
		return cv, diags
	}
	if s, ok := opts.Vars[name]; ok {
		if ty == cty.String || ty == cty.DynamicPseudoType {
			return cty.StringVal(s), diags
		}
		// Typed variables given on the command line are HCL expressions: -var 'sizes=[1,2]'.
		expr, ds := hclsyntax.ParseExpression([]byte(s), "<value for var."+name+">", hcl.InitialPos)
		if ds.HasErrors() {
			return cty.DynamicVal, append(diags, ds...)
		}
		// No functions here, but for expressions are metered as in a spec.
		first := len(bud.sites)
		guardExpressions(bud, expr, false)
		sites := map[string]function.Function{}
		for i := first; i < len(bud.sites); i++ {
			sites[siteFuncName(i)] = siteFunc(bud, bud.sites[i])
		}
		v, ds := expr.Value(&hcl.EvalContext{Functions: sites})
		if ds.HasErrors() {
			return cty.DynamicVal, append(diags, ds...)
		}
		cv, err := convert.Convert(v, ty)
		if err != nil {
			return cty.DynamicVal, append(diags, errorAt(b.DefRange, fmt.Sprintf("Invalid value for variable %q: %s", name, err)))
		}
		return cv, diags
	}
	a, ok := attrs["default"]
	if !ok {
		return cty.DynamicVal, append(diags, errorAt(b.DefRange, fmt.Sprintf("No value for variable %q; give it a default or set it with -var %s=…", name, name)))
	}
	v, ds := a.Expr.Value(&hcl.EvalContext{Functions: funcs})
	diags = append(diags, ds...)
	if ds.HasErrors() {
		return cty.DynamicVal, diags
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		return cty.DynamicVal, append(diags, errorAt(a.Expr.Range(), fmt.Sprintf("Default for variable %q does not match its type: %s", name, err)))
	}
	return cv, diags
}

func errorAt(rng hcl.Range, summary string) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Subject: &r}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Evaluation budget. A spec is small, but a small spec can describe a huge
// computation: a for expression nested in another over a 100,000-element
// list is ten billion steps. Every Parse/Load evaluates under one budget.
//
// The budget is checked at sites: before build evaluates anything,
// guardExpressions rewrites the syntax tree so that every for expression's
// collection, key, value and condition, and every function call's result,
// pass through a site function that knows its place in the source. Stdlib
// functions are metered too (arguments and results are charged). When a
// site finds the budget spent it ends evaluation at once with
// runtime.Goexit, which unwinds through HCL and cty (their recover() does
// not stop it) to budget.run, and build answers one diagnostic at that site.
const (
	// maxForElements bounds how many elements for expressions iterate over,
	// summed over the whole spec set. HCL spends about 2µs on an element.
	maxForElements = 100_000
	// maxEvalCost bounds the size of the collections for expressions
	// iterate over and of everything they and function calls produce,
	// summed over the whole spec set (see valueCost: bytes of strings plus
	// 16 per value).
	maxEvalCost = 64 << 20
	// maxEvalReads bounds how many values function calls are given, summed
	// over the whole spec set: cty reads every argument whole (one walk at
	// about 50ns a value, several times) even when a call, like length or
	// contains, returns a small result.
	maxEvalReads = 1_000_000
)

// evalTimeout bounds the time evaluation may take, for work the counts
// above do not see (comparing or indexing big values in a loop). A variable
// only so that tests of the counts can lift it on a slow machine.
var evalTimeout = 5 * time.Second

// budget meters one evaluation of a spec set. Its methods run on the
// goroutine of budget.run.
type budget struct {
	elements int
	cost     int
	reads    int
	deadline time.Time
	now      func() time.Time
	sites    []site
	spent    string     // why the budget is spent; "" while it is not
	at       *hcl.Range // the site that found it spent
}

// site is one place where evaluation checks the budget.
type site struct {
	kind siteKind
	rng  hcl.Range
}

type siteKind int

const (
	siteForCollection siteKind = iota // charges the collection's length and cost
	siteForElement                    // charges the value's cost
	siteCall                          // only checks: the metered function charged
)

// siteFuncPrefix starts the names of the site functions. The names contain
// spaces, so no spec can call them.
const siteFuncPrefix = "nimbus site "

func newBudget(now func() time.Time) *budget {
	if now == nil {
		now = time.Now
	}
	return &budget{deadline: now().Add(evalTimeout), now: now}
}

// run runs eval and says whether it finished; false means a site ended it
// because the budget is spent. A panic in eval is returned as an error.
func (b *budget) run(eval func()) (finished bool, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("internal error evaluating the specs: %v", r)
			}
		}()
		eval()
		finished = true
	}()
	<-done
	return finished, err
}

// check marks the budget spent once the deadline has passed.
func (b *budget) check() {
	if b.spent == "" && b.now().After(b.deadline) {
		b.spent = fmt.Sprintf("evaluating the specs took longer than %s", evalTimeout)
	}
}

// iterate charges n elements a for expression is about to iterate over.
func (b *budget) iterate(n int) {
	b.elements += n
	if b.spent == "" && b.elements > maxForElements {
		b.spent = fmt.Sprintf("for expressions iterate over more than %d elements in all", maxForElements)
	}
}

// charge charges the cost of v.
func (b *budget) charge(v cty.Value) {
	b.cost += valueCost(v, maxEvalCost-b.cost+1)
	if b.spent == "" && b.cost > maxEvalCost {
		b.spent = fmt.Sprintf("expressions build more than %d bytes of values in all", maxEvalCost)
	}
}

// read charges the values a function call is given.
func (b *budget) read(args []cty.Value) {
	for _, a := range args {
		b.reads += valueCount(a, maxEvalReads-b.reads+1)
	}
	if b.spent == "" && b.reads > maxEvalReads {
		b.spent = fmt.Sprintf("function calls are given more than %d values in all", maxEvalReads)
	}
}

// stopAt ends evaluation, at rng, when the budget is spent.
func (b *budget) stopAt(rng hcl.Range) {
	b.check()
	if b.spent == "" {
		return
	}
	r := rng
	b.at = &r
	runtime.Goexit()
}

const evalBudgetSummary = "Spec too costly to evaluate"

// diagnostic reports the spent budget at the site that found it spent.
func (b *budget) diagnostic() *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  evalBudgetSummary,
		Detail:   b.spent + "; a spec describes functions, so keep its lists and loops small",
		Subject:  b.at,
	}
}

// valueCost approximates the memory v holds: string bytes plus 16 per
// value. It stops counting once the cost passes limit.
func valueCost(v cty.Value, limit int) int {
	if !v.IsKnown() || v.IsNull() {
		return 16
	}
	v, _ = v.Unmark()
	ty := v.Type()
	switch {
	case ty == cty.String:
		return 16 + len(v.AsString())
	case ty.IsListType(), ty.IsSetType(), ty.IsTupleType(), ty.IsMapType(), ty.IsObjectType():
		n := 16
		for it := v.ElementIterator(); it.Next() && n <= limit; {
			k, e := it.Element()
			if ty.IsMapType() || ty.IsObjectType() {
				n += valueCost(k, limit-n)
			}
			n += valueCost(e, limit-n)
		}
		return n
	}
	return 16
}

// valueCount counts the values in v, itself included. It stops counting
// once the count passes limit.
func valueCount(v cty.Value, limit int) int {
	if !v.IsKnown() || v.IsNull() {
		return 1
	}
	v, _ = v.Unmark()
	if !v.CanIterateElements() {
		return 1
	}
	n := 1
	for it := v.ElementIterator(); it.Next() && n <= limit; {
		_, e := it.Element()
		n += valueCount(e, limit-n)
	}
	return n
}

// metered wraps f so that each call charges its arguments (read) and its
// result (cost) to b. A call made after the budget is spent (only the
// deadline can do that: a site follows every call) returns an unknown value
// without running f.
func metered(b *budget, f function.Function) function.Function {
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, retType cty.Type) (cty.Value, error) {
			b.read(args)
			b.check()
			if b.spent != "" {
				return cty.UnknownVal(retType), nil
			}
			v, err := f.Call(args)
			if err == nil {
				b.charge(v)
			}
			return v, err
		},
	})
}

// siteFunctions returns the site function of each of b's sites, by name.
func siteFunctions(b *budget) map[string]function.Function {
	fs := make(map[string]function.Function, len(b.sites))
	for i, st := range b.sites {
		fs[siteFuncName(i)] = siteFunc(b, st)
	}
	return fs
}

func siteFuncName(i int) string { return siteFuncPrefix + strconv.Itoa(i) }

// siteFunc passes its argument through unchanged (any value: unknown,
// null, marked) after charging and checking b as its kind says.
func siteFunc(b *budget, st site) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{
			Name: "value", Type: cty.DynamicPseudoType,
			AllowNull: true, AllowUnknown: true, AllowDynamicType: true, AllowMarked: true,
		}},
		Type: func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v := args[0]
			switch st.kind {
			case siteForCollection:
				if u, _ := v.Unmark(); u.IsKnown() && !u.IsNull() && u.CanIterateElements() {
					b.iterate(u.LengthInt())
					b.charge(u)
				}
			case siteForElement:
				b.charge(v)
			}
			b.stopAt(st.rng)
			return v, nil
		},
	})
}

// guardExpressions rewrites the expressions under n so that they check b
// (see the budget's comment): every for expression's collection, key,
// value and condition, and, when calls is true, every function call's
// result, become the argument of a site function. Site calls span what
// they wrap, so other diagnostics keep their places. The "type" attributes
// of variable blocks are type constraints that typeexpr reads as syntax, so
// they are left as they are.
func guardExpressions(b *budget, n hclsyntax.Node, calls bool) {
	wrapped := map[*hclsyntax.FunctionCallExpr]bool{}
	wrap := func(kind siteKind, e hclsyntax.Expression) *hclsyntax.FunctionCallExpr {
		rng, start := e.Range(), e.StartRange()
		b.sites = append(b.sites, site{kind: kind, rng: rng})
		call := &hclsyntax.FunctionCallExpr{
			Name:            siteFuncName(len(b.sites) - 1),
			Args:            []hclsyntax.Expression{e},
			NameRange:       start,
			OpenParenRange:  start,
			CloseParenRange: rng,
		}
		wrapped[call] = true
		return call
	}
	wrapOpt := func(kind siteKind, e hclsyntax.Expression) hclsyntax.Expression {
		if e == nil {
			return nil
		}
		return wrap(kind, e)
	}
	// Type constraints, which typeexpr reads as syntax, stay as they are.
	skip := map[hclsyntax.Expression]bool{}
	_ = hclsyntax.VisitAll(n, func(n hclsyntax.Node) hcl.Diagnostics {
		if blk, ok := n.(*hclsyntax.Block); ok && blk.Type == "variable" {
			if a, ok := blk.Body.Attributes["type"]; ok {
				_ = hclsyntax.VisitAll(a.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
					switch e := n.(type) {
					case *hclsyntax.ForExpr:
						skip[e] = true
					case *hclsyntax.FunctionCallExpr:
						skip[e] = true
					}
					return nil
				})
			}
		}
		return nil
	})
	visit := func(n hclsyntax.Node) hcl.Diagnostics {
		switch e := n.(type) {
		case *hclsyntax.ForExpr:
			if skip[e] {
				return nil
			}
			e.CollExpr = wrap(siteForCollection, e.CollExpr)
			e.KeyExpr = wrapOpt(siteForElement, e.KeyExpr)
			e.ValExpr = wrap(siteForElement, e.ValExpr)
			e.CondExpr = wrapOpt(siteForElement, e.CondExpr)
		case *hclsyntax.FunctionCallExpr:
			if !calls || wrapped[e] || skip[e] {
				return nil
			}
			// Turn the call node itself into its site, so whatever holds it
			// now holds the site, which holds a copy of the call.
			orig := *e
			*e = *wrap(siteCall, &orig)
			wrapped[e] = true
			wrapped[&orig] = true
		}
		return nil
	}
	_ = hclsyntax.VisitAll(n, visit)
}
