package specs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Limits on what Parse reads, so no input can exhaust memory or the stack.
const (
	// MaxFileBytes is the largest spec file Parse reads.
	MaxFileBytes = 1 << 20
	// maxNesting bounds brackets, braces and template nesting.
	maxNesting = 64
)

// Extension is the file name suffix Load reads in a directory: every
// "*.hcl" file directly inside it (not in subdirectories), in name order.
const Extension = ".hcl"

// Options are the inputs of a spec besides its source.
type Options struct {
	// Vars sets `variable` blocks by name from strings (as -var name=value
	// does). A variable declared with a non-string type reads its string as
	// an HCL expression: -var 'zones=["a","b"]'.
	Vars map[string]string
	// Values sets `variable` blocks to typed values; it wins over Vars.
	Values map[string]cty.Value
	// Env is what env("NAME") reads. Nil means an empty environment: env()
	// returns "" for every name.
	Env func(string) string
}

// Function returns the function named name, or nil.
func (f *File) Function(name string) *Function {
	for _, fn := range f.Functions {
		if fn.Name == name {
			return fn
		}
	}
	return nil
}

// Layer returns the layer named name, or nil.
func (f *File) Layer(name string) *Layer {
	for _, l := range f.Layers {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// ParseFile parses, fills defaults in and validates one spec file. filename
// is used in diagnostics and as the base of relative paths (file(), code
// dirs). The File is nil when there are errors; warnings may come with a
// File.
func ParseFile(filename string, src []byte, opts *Options) (*File, hcl.Diagnostics) {
	f, diags := parseSource(filename, src)
	if diags.HasErrors() {
		return nil, diags
	}
	return build([]*hcl.File{f}, filepath.Dir(filename), opts, diags)
}

// Load reads a spec file, or every "*.hcl" file directly inside a
// directory, as one set: variables and locals are shared across the files,
// and names must be unique across them. The result is validated and has
// defaults filled in; it is nil when there are errors.
func Load(p string, opts *Options) (*File, hcl.Diagnostics) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fmt.Sprintf("Cannot read specs: %v", err)}}
	}
	names := []string{p}
	dir := filepath.Dir(p)
	if fi.IsDir() {
		dir = p
		names, err = SpecFiles(p)
		if err != nil {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fmt.Sprintf("Cannot read specs: %v", err)}}
		}
		if len(names) == 0 {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fmt.Sprintf("No *%s files in %s", Extension, p)}}
		}
	}
	var diags hcl.Diagnostics
	var files []*hcl.File
	for _, name := range names {
		src, err := readLimited(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Cannot read %s: %v", name, err)})
			continue
		}
		f, ds := parseSource(name, src)
		diags = append(diags, ds...)
		files = append(files, f)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return build(files, dir, opts, diags)
}

// SpecFiles lists the spec files Load reads from dir, in name order.
func SpecFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), Extension) && !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

func readLimited(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileBytes)
	}
	return os.ReadFile(name)
}

// parseSource checks the limits and parses HCL native syntax.
func parseSource(filename string, src []byte) (*hcl.File, hcl.Diagnostics) {
	if len(src) > MaxFileBytes {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fmt.Sprintf("%s is larger than %d bytes", filename, MaxFileBytes)}}
	}
	if d := tooDeep(filename, src); d != nil {
		return nil, hcl.Diagnostics{d}
	}
	return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
}

// tooDeep reports nesting beyond maxNesting before the recursive parser
// sees it.
func tooDeep(filename string, src []byte) *hcl.Diagnostic {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	depth := 0
	for _, t := range tokens {
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc:
			depth++
			if depth > maxNesting {
				return errorAt(t.Range, fmt.Sprintf("Nesting deeper than %d levels", maxNesting))
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenTemplateSeqEnd, hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			depth--
		}
	}
	return nil
}

// build evaluates, decodes, fills defaults in and validates parsed files.
func build(files []*hcl.File, dir string, opts *Options, diags hcl.Diagnostics) (*File, hcl.Diagnostics) {
	if opts == nil {
		opts = &Options{}
	}
	bud := newBudget(nil)
	bodies := make([]*hcl.BodyContent, 0, len(files))
	for _, f := range files {
		if sb, ok := f.Body.(*hclsyntax.Body); ok {
			guardExpressions(bud, sb, true)
		}
		c, ds := f.Body.Content(fileSchema)
		diags = append(diags, ds...)
		if c != nil {
			bodies = append(bodies, c)
		}
	}

	d := &decoder{ranges: ranges{}}
	out := &File{}
	// Evaluation and decoding run under the budget; see budget.run.
	finished, err := bud.run(func() {
		ctx, ds := evalScope(bodies, dir, opts, bud)
		diags = append(diags, ds...)
		d.ctx = ctx
		fnSeen := map[string]hcl.Range{}
		layerSeen := map[string]hcl.Range{}
		for _, c := range bodies {
			for _, b := range c.Blocks {
				switch b.Type {
				case "function":
					if first, dup := fnSeen[b.Labels[0]]; dup {
						d.errorf(b.DefRange, "Duplicate function %q; it is already declared at %s", b.Labels[0], posString(first))
						continue
					}
					fnSeen[b.Labels[0]] = b.DefRange
					out.Functions = append(out.Functions, d.function(b, dir))
				case "layer":
					if first, dup := layerSeen[b.Labels[0]]; dup {
						d.errorf(b.DefRange, "Duplicate layer %q; it is already declared at %s", b.Labels[0], posString(first))
						continue
					}
					layerSeen[b.Labels[0]] = b.DefRange
					out.Layers = append(out.Layers, d.layer(b, dir))
				}
			}
		}
	})
	switch {
	case err != nil:
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: err.Error()})
	case !finished:
		return nil, append(diags, bud.diagnostic())
	}
	diags = append(diags, sortDiags(d.diags)...)
	explainReferences(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	for _, fn := range out.Functions {
		applyDefaults(fn)
	}
	sortModel(out)
	v := &validator{ranges: d.ranges}
	v.file(out)
	diags = append(diags, sortDiags(v.diags)...)
	if diags.HasErrors() {
		return nil, diags
	}
	return out, diags
}

// sortDiags orders diagnostics by where they are, so a person reads them
// top to bottom; those without a place come first.
func sortDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
	return diags
}

// explainReferences turns HCL's "Unsupported attribute" on var.X and
// local.X into a message that says what is missing.
func explainReferences(diags hcl.Diagnostics) {
	for _, d := range diags {
		e, ok := d.Expression.(*hclsyntax.ScopeTraversalExpr)
		if d.Summary != "Unsupported attribute" || !ok || len(e.Traversal) < 2 {
			continue
		}
		step, ok := e.Traversal[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		switch e.Traversal.RootName() {
		case "var":
			d.Summary = fmt.Sprintf("Undeclared variable %q", step.Name)
			d.Detail = fmt.Sprintf("Declare it with a variable %q { } block.", step.Name)
		case "local":
			d.Summary = fmt.Sprintf("Undefined local %q", step.Name)
			d.Detail = fmt.Sprintf("Define it in a locals { } block as %s = ….", step.Name)
		}
	}
}
