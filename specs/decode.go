package specs

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// decoder turns evaluated HCL attributes into model values. It collects
// diagnostics instead of stopping at the first one and records the source
// range of everything it decodes (see path).
type decoder struct {
	ctx    *hcl.EvalContext
	diags  hcl.Diagnostics
	ranges ranges
}

func (d *decoder) errorf(rng hcl.Range, summary string, args ...any) {
	r := rng
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf(summary, args...),
		Subject:  &r,
	})
}

// open records where the block at p is declared (for diagnostics and the
// model's ranges) and decodes its body as content does.
func (d *decoder) open(p path, b *hcl.Block, schema *hcl.BodySchema, once ...string) *hcl.BodyContent {
	d.ranges.set(p, b.DefRange)
	return d.content(b.Body, schema, once...)
}

// content decodes body against schema and reports duplicate singleton blocks
// (those in once).
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema, once ...string) *hcl.BodyContent {
	c, diags := body.Content(schema)
	for _, diag := range diags {
		suggestArgument(diag, schema)
	}
	d.diags = append(d.diags, diags...)
	if c == nil {
		return &hcl.BodyContent{Attributes: hcl.Attributes{}}
	}
	for _, typ := range once {
		var first *hcl.Block
		for _, b := range c.Blocks.OfType(typ) {
			if first == nil {
				first = b
				continue
			}
			d.errorf(b.DefRange, "Duplicate %s block; a %s block is already declared at %s", typ, typ, posString(first.DefRange))
		}
	}
	return c
}

var unsupportedArgRE = regexp.MustCompile(`^An argument named "([^"]+)" is not expected here\.$`)

// suggestArgument adds a "Did you mean" to HCL's unsupported-argument
// diagnostic when a known argument extends or abbreviates the unknown one
// (memory → memory_mb), which HCL's edit-distance suggestion misses.
func suggestArgument(diag *hcl.Diagnostic, schema *hcl.BodySchema) {
	m := unsupportedArgRE.FindStringSubmatch(diag.Detail)
	if m == nil {
		return
	}
	for _, a := range schema.Attributes {
		if strings.HasPrefix(a.Name, m[1]+"_") || strings.HasPrefix(m[1], a.Name+"_") {
			diag.Detail += fmt.Sprintf(" Did you mean %q?", a.Name)
			return
		}
	}
}

// unique drops (and reports) labelled blocks whose label repeats an earlier one.
func (d *decoder) unique(blocks hcl.Blocks) hcl.Blocks {
	seen := map[string]*hcl.Block{}
	out := blocks[:0:0]
	for _, b := range blocks {
		if first, dup := seen[b.Labels[0]]; dup {
			d.errorf(b.DefRange, "Duplicate %s %q; it is already declared at %s", b.Type, b.Labels[0], posString(first.DefRange))
			continue
		}
		seen[b.Labels[0]] = b
		out = append(out, b)
	}
	return out
}

// value evaluates attribute name (if present and not null) and converts it
// to ty. ok is false when the attribute is absent, null or wrong.
func (d *decoder) value(attrs hcl.Attributes, name string, p path, ty cty.Type, what string) (cty.Value, bool) {
	attr, ok := attrs[name]
	if !ok {
		return cty.NilVal, false
	}
	d.record(p, attr.Expr)
	v, diags := attr.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() {
		// Only a variable or local that failed (and was reported) is unknown.
		return cty.NilVal, false
	}
	v, _ = v.UnmarkDeep()
	cv, err := convert.Convert(v, ty)
	if err != nil {
		d.errorf(attr.Expr.Range(), "%s must be %s; %s", name, what, err)
		return cty.NilVal, false
	}
	if !cv.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return cv, true
}

// record remembers where p (and, for list and map literals, each element) is.
func (d *decoder) record(p path, expr hcl.Expression) {
	d.ranges.set(p, expr.Range())
	switch e := expr.(type) {
	case *hclsyntax.TupleConsExpr:
		for i, el := range e.Exprs {
			d.ranges.set(p.index(i), el.Range())
		}
	case *hclsyntax.ObjectConsExpr:
		for _, item := range e.Items {
			k, diags := item.KeyExpr.Value(d.ctx)
			if diags.HasErrors() || !k.IsKnown() || k.IsNull() {
				continue
			}
			k, _ = k.Unmark()
			if ks, err := convert.Convert(k, cty.String); err == nil && ks.IsKnown() && !ks.IsNull() {
				d.ranges.set(p.key(ks.AsString()), hcl.RangeBetween(item.KeyExpr.Range(), item.ValueExpr.Range()))
			}
		}
	}
}

func (d *decoder) str(attrs hcl.Attributes, name string, p path, dst *string) bool {
	v, ok := d.value(attrs, name, p.attr(name), cty.String, "a string")
	if ok {
		*dst = v.AsString()
	}
	return ok
}

func (d *decoder) boolean(attrs hcl.Attributes, name string, p path, dst *bool) bool {
	v, ok := d.value(attrs, name, p.attr(name), cty.Bool, "true or false")
	if ok {
		*dst = v.True()
	}
	return ok
}

func (d *decoder) integer(attrs hcl.Attributes, name string, p path, dst *int) bool {
	v, ok := d.value(attrs, name, p.attr(name), cty.Number, "a whole number")
	if !ok {
		return false
	}
	n, ok := toInt(v.AsBigFloat())
	if !ok {
		d.errorf(attrs[name].Expr.Range(), "%s must be a whole number; got %s", name, v.AsBigFloat().Text('g', -1))
		return false
	}
	*dst = n
	return true
}

// toInt returns f as an int when it is whole and fits in 32 bits (no spec
// number needs more, and it keeps the model portable).
func toInt(f *big.Float) (int, bool) {
	if !f.IsInt() {
		return 0, false
	}
	i, acc := f.Int64()
	if acc != big.Exact || i > 1<<31-1 || i < -(1<<31) {
		return 0, false
	}
	return int(i), true
}

func (d *decoder) float(attrs hcl.Attributes, name string, p path, dst *float64) bool {
	v, ok := d.value(attrs, name, p.attr(name), cty.Number, "a number")
	if !ok {
		return false
	}
	f, _ := v.AsBigFloat().Float64()
	*dst = f
	return true
}

func (d *decoder) strList(attrs hcl.Attributes, name string, p path, dst *[]string) bool {
	v, ok := d.value(attrs, name, p.attr(name), cty.List(cty.String), "a list of strings")
	if !ok {
		return false
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			d.errorf(attrs[name].Expr.Range(), "%s must not contain null", name)
			return false
		}
		out = append(out, e.AsString())
	}
	*dst = out
	return true
}

func (d *decoder) strMap(attrs hcl.Attributes, name string, p path, dst *map[string]string) bool {
	v, ok := d.value(attrs, name, p.attr(name), cty.Map(cty.String), "a map of strings")
	if !ok {
		return false
	}
	out := make(map[string]string, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.IsNull() {
			d.errorf(attrs[name].Expr.Range(), "%s[%q] must not be null", name, k.AsString())
			return false
		}
		out[k.AsString()] = e.AsString()
	}
	*dst = out
	return true
}

// duration reads a Go duration string ("90s", "1h30m") or a number of
// seconds and stores it normalised by time.Duration.String.
func (d *decoder) duration(attrs hcl.Attributes, name string, p path, dst *string) bool {
	attr, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := d.value(attrs, name, p.attr(name), cty.DynamicPseudoType, "")
	if !ok {
		return false
	}
	switch v.Type() {
	case cty.Number:
		f, _ := v.AsBigFloat().Float64()
		if f > float64(1<<40) || f < -float64(1<<40) {
			d.errorf(attr.Expr.Range(), "%s is out of range", name)
			return false
		}
		*dst = time.Duration(f * float64(time.Second)).String()
		return true
	case cty.String:
		dur, err := time.ParseDuration(v.AsString())
		if err != nil {
			d.errorf(attr.Expr.Range(), "%s must be a duration such as \"30s\" or \"5m\", or a number of seconds; %q is not", name, v.AsString())
			return false
		}
		*dst = dur.String()
		return true
	}
	d.errorf(attr.Expr.Range(), "%s must be a duration such as \"30s\" or \"5m\", or a number of seconds; got %s", name, v.Type().FriendlyName())
	return false
}

// jsonText reads a JSON document written either as a string holding JSON
// or as an HCL value (which is encoded like jsonencode would).
func (d *decoder) jsonText(expr hcl.Expression, name string) (string, bool) {
	v, diags := expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return "", false
	}
	if !v.IsWhollyKnown() {
		return "", false // a failed variable or local, already reported
	}
	v, _ = v.UnmarkDeep()
	if v.Type() == cty.String {
		return v.AsString(), true
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		d.errorf(expr.Range(), "%s cannot be encoded as JSON; %s", name, err)
		return "", false
	}
	return string(b), true
}

// jsonList reads a list whose elements are JSON documents (see jsonText).
func (d *decoder) jsonList(attrs hcl.Attributes, name string, p path, dst *[]string) bool {
	attr, ok := attrs[name]
	if !ok {
		return false
	}
	d.record(p.attr(name), attr.Expr)
	v, diags := attr.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return false
	}
	if !v.IsWhollyKnown() {
		return false // a failed variable or local, already reported
	}
	v, _ = v.UnmarkDeep()
	if !v.Type().IsListType() && !v.Type().IsTupleType() && !v.Type().IsSetType() {
		d.errorf(attr.Expr.Range(), "%s must be a list of filter patterns (JSON strings or objects); got %s", name, v.Type().FriendlyName())
		return false
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			d.errorf(attr.Expr.Range(), "%s must not contain null", name)
			return false
		}
		if e.Type() == cty.String {
			out = append(out, e.AsString())
			continue
		}
		b, err := ctyjson.Marshal(e, e.Type())
		if err != nil {
			d.errorf(attr.Expr.Range(), "%s cannot be encoded as JSON; %s", name, err)
			return false
		}
		out = append(out, string(b))
	}
	*dst = out
	return true
}

// posString renders a range start as "file:line:col".
func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// ---- schemas ----------------------------------------------------------------

var (
	fileSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "function", LabelNames: []string{"name"}},
		{Type: "layer", LabelNames: []string{"name"}},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
	}}

	functionSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "description"},
			{Name: "runtime"},
			{Name: "handler"},
			{Name: "layers"},
			{Name: "memory_mb"},
			{Name: "timeout"},
			{Name: "ephemeral_storage_mb"},
			{Name: "environment"},
			{Name: "environments_per_instance"},
			{Name: "network"},
			{Name: "reserved_concurrency"},
			{Name: "tags"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "code"},
			{Type: "image_config"},
			{Type: "build"},
			{Type: "secret", LabelNames: []string{"env"}},
			{Type: "provisioned_concurrency"},
			{Type: "url"},
			{Type: "async"},
			{Type: "event_source", LabelNames: []string{"name"}},
			{Type: "alias", LabelNames: []string{"name"}},
			{Type: "placement"},
		},
	}

	codeSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "dir"}, {Name: "zip"}, {Name: "url"}, {Name: "checksum"}, {Name: "image"},
	}}

	imageConfigSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "entrypoint"}, {Name: "command"}, {Name: "working_directory"},
	}}

	buildSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "command"}, {Name: "output"}, {Name: "skip"},
	}}

	secretSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "path", Required: true}, {Name: "key", Required: true},
	}}

	provisionedSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "min"}, {Name: "max"}, {Name: "target_utilization"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "schedule", LabelNames: []string{"name"}}},
	}

	scheduleSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "cron", Required: true}, {Name: "duration"}, {Name: "timezone"}, {Name: "min", Required: true},
	}}

	urlSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "auth"}, {Name: "invoke_mode"}, {Name: "qualifier"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "cors"}},
	}

	corsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "allow_origins"}, {Name: "allow_methods"}, {Name: "allow_headers"},
		{Name: "expose_headers"}, {Name: "allow_credentials"}, {Name: "max_age"},
	}}

	asyncSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "max_retries"}, {Name: "max_event_age"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "on_success"}, {Type: "on_failure"}, {Type: "dead_letter"}},
	}

	destinationSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "function"}, {Name: "nats"}, {Name: "kafka"}, {Name: "webhook"},
	}}

	eventSourceSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "type", Required: true},
			{Name: "enabled"},
			{Name: "url"},
			{Name: "stream"},
			{Name: "subject"},
			{Name: "topics"},
			{Name: "queue"},
			{Name: "group"},
			{Name: "schedule"},
			{Name: "input"},
			{Name: "starting_position"},
			{Name: "starting_position_timestamp"},
			{Name: "batch_size"},
			{Name: "maximum_batching_window"},
			{Name: "maximum_retry_attempts"},
			{Name: "maximum_record_age"},
			{Name: "bisect_batch_on_function_error"},
			{Name: "report_batch_item_failures"},
			{Name: "maximum_concurrency"},
			{Name: "parallelization_factor"},
			{Name: "filters"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "on_failure"}},
	}

	aliasSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "description"}, {Name: "version", Required: true}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "routing"}},
	}

	routingSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "version", Required: true}, {Name: "weight", Required: true},
	}}

	placementSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "region"}, {Name: "datacenters"}, {Name: "namespace"}, {Name: "node_pool"}, {Name: "priority"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "constraint"}},
	}

	constraintSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "attribute"}, {Name: "operator"}, {Name: "value"},
	}}

	layerSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "description"}, {Name: "compatible_runtimes"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "code"}},
	}
)

// ---- blocks -----------------------------------------------------------------

func (d *decoder) function(b *hcl.Block, dir string) *Function {
	fn := &Function{Name: b.Labels[0], Pos: posString(b.DefRange), Dir: dir}
	p := path{}.block("function", fn.Name)
	c := d.open(p, b, functionSchema, "code", "image_config", "build", "provisioned_concurrency", "url", "async", "placement")
	a := c.Attributes

	d.str(a, "description", p, &fn.Description)
	d.str(a, "runtime", p, &fn.Runtime)
	d.str(a, "handler", p, &fn.Handler)
	d.strList(a, "layers", p, &fn.Layers)
	d.integer(a, "memory_mb", p, &fn.MemoryMB)
	d.duration(a, "timeout", p, &fn.Timeout)
	d.integer(a, "ephemeral_storage_mb", p, &fn.EphemeralStorageMB)
	d.strMap(a, "environment", p, &fn.Environment)
	d.integer(a, "environments_per_instance", p, &fn.EnvironmentsPerInstance)
	d.str(a, "network", p, &fn.Network)
	var reserved int
	if d.integer(a, "reserved_concurrency", p, &reserved) {
		fn.ReservedConcurrency = &reserved
	}
	d.strMap(a, "tags", p, &fn.Tags)

	codeBlocks := c.Blocks.OfType("code")
	if len(codeBlocks) == 0 {
		d.errorf(b.DefRange, "function %q has no code block; add code { dir = \".\" } (or zip, or url with checksum)", fn.Name)
	} else {
		fn.Code = d.code(codeBlocks[0], p)
	}
	if bs := c.Blocks.OfType("image_config"); len(bs) > 0 {
		fn.ImageConfig = d.imageConfig(bs[0], p)
	}
	if bs := c.Blocks.OfType("build"); len(bs) > 0 {
		fn.Build = d.build(bs[0], p)
	}
	for _, sb := range d.unique(c.Blocks.OfType("secret")) {
		fn.Secrets = append(fn.Secrets, d.secret(sb, p))
	}
	if bs := c.Blocks.OfType("provisioned_concurrency"); len(bs) > 0 {
		fn.Provisioned = d.provisioned(bs[0], p)
	}
	if bs := c.Blocks.OfType("url"); len(bs) > 0 {
		fn.URL = d.url(bs[0], p)
	}
	if bs := c.Blocks.OfType("async"); len(bs) > 0 {
		fn.Async = d.async(bs[0], p)
	}
	for _, eb := range d.unique(c.Blocks.OfType("event_source")) {
		fn.EventSources = append(fn.EventSources, d.eventSource(eb, p, fn.Name))
	}
	for _, ab := range d.unique(c.Blocks.OfType("alias")) {
		fn.Aliases = append(fn.Aliases, d.alias(ab, p))
	}
	if bs := c.Blocks.OfType("placement"); len(bs) > 0 {
		fn.Placement = d.placement(bs[0], p)
	}
	return fn
}

func (d *decoder) code(b *hcl.Block, parent path) *Code {
	p := parent.attr("code")
	c := d.open(p, b, codeSchema)
	code := &Code{}
	d.str(c.Attributes, "dir", p, &code.Dir)
	d.str(c.Attributes, "zip", p, &code.Zip)
	d.str(c.Attributes, "url", p, &code.URL)
	d.str(c.Attributes, "checksum", p, &code.Checksum)
	d.str(c.Attributes, "image", p, &code.Image)
	return code
}

func (d *decoder) imageConfig(b *hcl.Block, parent path) *ImageConfig {
	p := parent.attr("image_config")
	c := d.open(p, b, imageConfigSchema)
	ic := &ImageConfig{}
	d.strList(c.Attributes, "entrypoint", p, &ic.Entrypoint)
	d.strList(c.Attributes, "command", p, &ic.Command)
	d.str(c.Attributes, "working_directory", p, &ic.WorkingDirectory)
	return ic
}

func (d *decoder) build(b *hcl.Block, parent path) *Build {
	p := parent.attr("build")
	c := d.open(p, b, buildSchema)
	bd := &Build{Pos: posString(b.DefRange)}
	d.str(c.Attributes, "command", p, &bd.Command)
	d.str(c.Attributes, "output", p, &bd.Output)
	d.boolean(c.Attributes, "skip", p, &bd.Skip)
	return bd
}

func (d *decoder) secret(b *hcl.Block, parent path) *Secret {
	s := &Secret{Env: b.Labels[0]}
	p := parent.block("secret", s.Env)
	c := d.open(p, b, secretSchema)
	d.str(c.Attributes, "path", p, &s.Path)
	d.str(c.Attributes, "key", p, &s.Key)
	return s
}

func (d *decoder) provisioned(b *hcl.Block, parent path) *ProvisionedConcurrency {
	p := parent.attr("provisioned_concurrency")
	c := d.open(p, b, provisionedSchema)
	pc := &ProvisionedConcurrency{}
	d.integer(c.Attributes, "min", p, &pc.Min)
	d.integer(c.Attributes, "max", p, &pc.Max)
	d.float(c.Attributes, "target_utilization", p, &pc.TargetUtilization)
	for _, sb := range d.unique(c.Blocks.OfType("schedule")) {
		s := &Schedule{Name: sb.Labels[0]}
		sp := p.block("schedule", s.Name)
		sc := d.open(sp, sb, scheduleSchema)
		d.str(sc.Attributes, "cron", sp, &s.Cron)
		d.duration(sc.Attributes, "duration", sp, &s.Duration)
		d.str(sc.Attributes, "timezone", sp, &s.Timezone)
		d.integer(sc.Attributes, "min", sp, &s.Min)
		pc.Schedules = append(pc.Schedules, s)
	}
	return pc
}

func (d *decoder) url(b *hcl.Block, parent path) *URLConfig {
	p := parent.attr("url")
	c := d.open(p, b, urlSchema, "cors")
	u := &URLConfig{}
	d.str(c.Attributes, "auth", p, &u.Auth)
	d.str(c.Attributes, "invoke_mode", p, &u.InvokeMode)
	d.str(c.Attributes, "qualifier", p, &u.Qualifier)
	if bs := c.Blocks.OfType("cors"); len(bs) > 0 {
		cp := p.attr("cors")
		cc := d.open(cp, bs[0], corsSchema)
		cors := &CORS{}
		d.strList(cc.Attributes, "allow_origins", cp, &cors.AllowOrigins)
		d.strList(cc.Attributes, "allow_methods", cp, &cors.AllowMethods)
		d.strList(cc.Attributes, "allow_headers", cp, &cors.AllowHeaders)
		d.strList(cc.Attributes, "expose_headers", cp, &cors.ExposeHeaders)
		d.boolean(cc.Attributes, "allow_credentials", cp, &cors.AllowCredentials)
		d.integer(cc.Attributes, "max_age", cp, &cors.MaxAge)
		u.CORS = cors
	}
	return u
}

func (d *decoder) async(b *hcl.Block, parent path) *AsyncConfig {
	p := parent.attr("async")
	c := d.open(p, b, asyncSchema, "on_success", "on_failure", "dead_letter")
	ac := &AsyncConfig{}
	if !d.integer(c.Attributes, "max_retries", p, &ac.MaxRetries) {
		ac.MaxRetries = defaultAsyncMaxRetries
	}
	d.duration(c.Attributes, "max_event_age", p, &ac.MaxEventAge)
	if bs := c.Blocks.OfType("on_success"); len(bs) > 0 {
		ac.OnSuccess = d.destination(bs[0], p.attr("on_success"))
	}
	if bs := c.Blocks.OfType("on_failure"); len(bs) > 0 {
		ac.OnFailure = d.destination(bs[0], p.attr("on_failure"))
	}
	if bs := c.Blocks.OfType("dead_letter"); len(bs) > 0 {
		ac.DeadLetter = d.destination(bs[0], p.attr("dead_letter"))
	}
	return ac
}

func (d *decoder) destination(b *hcl.Block, p path) *Destination {
	c := d.open(p, b, destinationSchema)
	dst := &Destination{}
	d.str(c.Attributes, "function", p, &dst.Function)
	d.str(c.Attributes, "nats", p, &dst.NATS)
	d.str(c.Attributes, "kafka", p, &dst.Kafka)
	d.str(c.Attributes, "webhook", p, &dst.Webhook)
	return dst
}

func (d *decoder) eventSource(b *hcl.Block, parent path, fnName string) *EventSource {
	es := &EventSource{Name: b.Labels[0], Enabled: true}
	p := parent.block("event_source", es.Name)
	c := d.open(p, b, eventSourceSchema, "on_failure")
	a := c.Attributes
	d.str(a, "type", p, &es.Type)
	d.boolean(a, "enabled", p, &es.Enabled)
	d.str(a, "url", p, &es.URL)
	d.str(a, "stream", p, &es.Stream)
	d.str(a, "subject", p, &es.Subject)
	d.strList(a, "topics", p, &es.Topics)
	d.str(a, "queue", p, &es.Queue)
	d.str(a, "group", p, &es.Group)
	d.str(a, "schedule", p, &es.Schedule)
	if attr, ok := a["input"]; ok {
		d.record(p.attr("input"), attr.Expr)
		es.Input, _ = d.jsonText(attr.Expr, "input")
	}
	d.str(a, "starting_position", p, &es.StartingFrom)
	d.str(a, "starting_position_timestamp", p, &es.StartingTimestamp)
	d.integer(a, "batch_size", p, &es.BatchSize)
	d.duration(a, "maximum_batching_window", p, &es.MaximumBatchingWindow)
	var retries int
	if d.integer(a, "maximum_retry_attempts", p, &retries) {
		es.MaximumRetryAttempts = &retries
	}
	d.duration(a, "maximum_record_age", p, &es.MaximumRecordAge)
	d.boolean(a, "bisect_batch_on_function_error", p, &es.BisectBatchOnFunctionError)
	d.boolean(a, "report_batch_item_failures", p, &es.ReportBatchItemFailures)
	d.integer(a, "maximum_concurrency", p, &es.MaximumConcurrency)
	d.integer(a, "parallelization_factor", p, &es.ParallelizationFactor)
	d.jsonList(a, "filters", p, &es.Filters)
	if bs := c.Blocks.OfType("on_failure"); len(bs) > 0 {
		es.OnFailure = d.destination(bs[0], p.attr("on_failure"))
	}
	return es
}

func (d *decoder) alias(b *hcl.Block, parent path) *Alias {
	al := &Alias{Name: b.Labels[0]}
	p := parent.block("alias", al.Name)
	c := d.open(p, b, aliasSchema)
	d.str(c.Attributes, "description", p, &al.Description)
	d.str(c.Attributes, "version", p, &al.Version)
	for i, rb := range c.Blocks.OfType("routing") {
		ip := p.attr("routing").index(i)
		rc := d.open(ip, rb, routingSchema)
		var version string
		var weight float64
		if !d.str(rc.Attributes, "version", ip, &version) || !d.float(rc.Attributes, "weight", ip, &weight) {
			continue
		}
		d.ranges.set(p.attr("routing").key(version), rc.Attributes["weight"].Expr.Range())
		if al.Routing == nil {
			al.Routing = map[string]float64{}
			d.ranges.set(p.attr("routing"), rb.DefRange)
		}
		if _, dup := al.Routing[version]; dup {
			d.errorf(rb.DefRange, "alias %q routes to version %s twice", al.Name, version)
		}
		al.Routing[version] = weight
	}
	return al
}

func (d *decoder) placement(b *hcl.Block, parent path) *Placement {
	p := parent.attr("placement")
	c := d.open(p, b, placementSchema)
	pl := &Placement{}
	d.str(c.Attributes, "region", p, &pl.Region)
	d.strList(c.Attributes, "datacenters", p, &pl.Datacenters)
	d.str(c.Attributes, "namespace", p, &pl.Namespace)
	d.str(c.Attributes, "node_pool", p, &pl.NodePool)
	d.integer(c.Attributes, "priority", p, &pl.Priority)
	for i, cb := range c.Blocks.OfType("constraint") {
		cp := p.attr("constraint").index(i)
		cc := d.open(cp, cb, constraintSchema)
		con := &Constraint{}
		d.str(cc.Attributes, "attribute", cp, &con.Attribute)
		d.str(cc.Attributes, "operator", cp, &con.Operator)
		d.str(cc.Attributes, "value", cp, &con.Value)
		pl.Constraints = append(pl.Constraints, con)
	}
	return pl
}

func (d *decoder) layer(b *hcl.Block, dir string) *Layer {
	l := &Layer{Name: b.Labels[0], Pos: posString(b.DefRange), Dir: dir}
	p := path{}.block("layer", l.Name)
	c := d.open(p, b, layerSchema, "code")
	d.str(c.Attributes, "description", p, &l.Description)
	d.strList(c.Attributes, "compatible_runtimes", p, &l.CompatibleRuntimes)
	if bs := c.Blocks.OfType("code"); len(bs) == 0 {
		d.errorf(b.DefRange, "layer %q has no code block; add code { dir = \"...\" } (or zip, or url with checksum)", l.Name)
	} else {
		l.Code = d.code(bs[0], p)
	}
	return l
}

// sortModel puts everything whose order carries no meaning into name order,
// so the canonical form does not change when blocks are moved around.
func sortModel(f *File) {
	sort.SliceStable(f.Functions, func(i, j int) bool { return f.Functions[i].Name < f.Functions[j].Name })
	sort.SliceStable(f.Layers, func(i, j int) bool { return f.Layers[i].Name < f.Layers[j].Name })
	for _, fn := range f.Functions {
		sort.SliceStable(fn.Secrets, func(i, j int) bool { return fn.Secrets[i].Env < fn.Secrets[j].Env })
		sort.SliceStable(fn.EventSources, func(i, j int) bool { return fn.EventSources[i].Name < fn.EventSources[j].Name })
		sort.SliceStable(fn.Aliases, func(i, j int) bool { return fn.Aliases[i].Name < fn.Aliases[j].Name })
		if fn.Provisioned != nil {
			s := fn.Provisioned.Schedules
			sort.SliceStable(s, func(i, j int) bool { return s[i].Name < s[j].Name })
		}
	}
}
