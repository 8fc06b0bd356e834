package specs

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// EncodeHCL writes f as a spec file in the language Parse reads: every
// layer, then every function, in the model's order, with each attribute and
// block named as decode.go reads it. Loading the result gives back the same
// model (the same canonical JSON, and the same build blocks); values that
// equal what Parse would fill in are left out, so a function with defaults
// reads like one a person wrote. Code paths are written as they are, so the
// file belongs in the directory they are relative to (Function.Dir).
//
// The output is formatted by Format and depends only on the model: map
// entries are written in key order. Strings are quoted with HCL's escapes
// ("${" becomes "$${"), so no value is evaluated as a template when read.
func EncodeHCL(f *File) ([]byte, error) {
	if f == nil {
		return nil, errors.New("encoding spec file as HCL: nil file")
	}
	out := hclwrite.NewEmptyFile()
	body := out.Body()
	first := true
	next := func() {
		if !first {
			body.AppendNewline()
		}
		first = false
	}
	for _, l := range f.Layers {
		if l == nil {
			return nil, errors.New("encoding spec file as HCL: null layer")
		}
		next()
		if err := writeLayer(body, l); err != nil {
			return nil, fmt.Errorf("encoding layer %q as HCL: %w", l.Name, err)
		}
	}
	for _, fn := range f.Functions {
		if fn == nil {
			return nil, errors.New("encoding spec file as HCL: null function")
		}
		next()
		if err := writeFunction(body, fn); err != nil {
			return nil, fmt.Errorf("encoding function %q as HCL: %w", fn.Name, err)
		}
	}
	return Format(out.Bytes()), nil
}

// hclBody wraps an hclwrite body with setters that leave zero values out.
type hclBody struct{ *hclwrite.Body }

func (b hclBody) str(name, v string) {
	if v != "" {
		b.SetAttributeValue(name, cty.StringVal(v))
	}
}

func (b hclBody) integer(name string, v int) {
	b.SetAttributeValue(name, cty.NumberIntVal(int64(v)))
}

func (b hclBody) nonZero(name string, v int) {
	if v != 0 {
		b.integer(name, v)
	}
}

func (b hclBody) float(name string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s is %v, which HCL cannot write", name, v)
	}
	b.SetAttributeValue(name, cty.NumberFloatVal(v))
	return nil
}

func (b hclBody) boolean(name string, v bool) {
	b.SetAttributeValue(name, cty.BoolVal(v))
}

func (b hclBody) strList(name string, vs []string) {
	if len(vs) == 0 {
		return
	}
	elems := make([]hclwrite.Tokens, len(vs))
	for i, v := range vs {
		elems[i] = hclwrite.TokensForValue(cty.StringVal(v))
	}
	b.SetAttributeRaw(name, hclwrite.TokensForTuple(elems))
}

// strMap writes a map in key order. Keys that are not plain identifiers,
// or that HCL reads as a keyword (true, false, null), are quoted.
func (b hclBody) strMap(name string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]hclwrite.ObjectAttrTokens, len(keys))
	for i, k := range keys {
		attrs[i] = hclwrite.ObjectAttrTokens{Name: objectKey(k), Value: hclwrite.TokensForValue(cty.StringVal(m[k]))}
	}
	b.SetAttributeRaw(name, hclwrite.TokensForObject(attrs))
}

func objectKey(k string) hclwrite.Tokens {
	switch {
	case k == "true" || k == "false" || k == "null" || !hclsyntax.ValidIdentifier(k):
		return hclwrite.TokensForValue(cty.StringVal(k))
	default:
		return hclwrite.TokensForIdentifier(k)
	}
}

func (b hclBody) block(typ string, labels ...string) hclBody {
	return hclBody{b.AppendNewBlock(typ, labels).Body()}
}

func writeLayer(parent *hclwrite.Body, l *Layer) error {
	b := hclBody{parent}.block("layer", l.Name)
	b.str("description", l.Description)
	b.strList("compatible_runtimes", l.CompatibleRuntimes)
	if l.Code == nil {
		return errors.New("no code")
	}
	writeCode(b, l.Code)
	return nil
}

func writeCode(b hclBody, c *Code) {
	cb := b.block("code")
	cb.str("dir", c.Dir)
	cb.str("zip", c.Zip)
	cb.str("url", c.URL)
	cb.str("checksum", c.Checksum)
	// ResolvedImage is deploy's pin of Image, not a spec attribute: the
	// spec keeps the reference as written.
	cb.str("image", c.Image)
}

func writeImageConfig(b hclBody, ic *ImageConfig) {
	if ic == nil {
		return
	}
	ib := b.block("image_config")
	ib.strList("entrypoint", ic.Entrypoint)
	ib.strList("command", ic.Command)
	ib.str("working_directory", ic.WorkingDirectory)
}

func writeFunction(parent *hclwrite.Body, fn *Function) error {
	if err := noNulls(fn); err != nil {
		return err
	}
	if fn.Code == nil {
		return errors.New("no code")
	}
	// def is what Parse fills in for a function that sets nothing.
	def := &Function{Name: fn.Name}
	applyDefaults(def)

	b := hclBody{parent}.block("function", fn.Name)
	b.str("description", fn.Description)
	if fn.IsImage() {
		b.str("runtime", fn.Runtime)
	} else {
		b.SetAttributeValue("runtime", cty.StringVal(fn.Runtime)) // required, even when empty
	}
	b.str("handler", fn.Handler)
	b.strList("layers", fn.Layers)
	if fn.MemoryMB != def.MemoryMB {
		b.nonZero("memory_mb", fn.MemoryMB)
	}
	if fn.Timeout != def.Timeout {
		b.str("timeout", fn.Timeout)
	}
	if fn.EphemeralStorageMB != def.EphemeralStorageMB {
		b.nonZero("ephemeral_storage_mb", fn.EphemeralStorageMB)
	}
	if fn.EnvironmentsPerInstance != def.EnvironmentsPerInstance {
		b.nonZero("environments_per_instance", fn.EnvironmentsPerInstance)
	}
	b.str("network", fn.Network)
	if fn.ReservedConcurrency != nil {
		b.integer("reserved_concurrency", *fn.ReservedConcurrency)
	}
	b.strMap("environment", fn.Environment)
	b.strMap("tags", fn.Tags)

	b.AppendNewline()
	writeCode(b, fn.Code)
	writeImageConfig(b, fn.ImageConfig)
	if bd := fn.Build; bd != nil {
		bb := b.block("build")
		bb.str("command", bd.Command)
		bb.str("output", bd.Output)
		if bd.Skip {
			bb.boolean("skip", true)
		}
	}
	for _, s := range fn.Secrets {
		sb := b.block("secret", s.Env)
		sb.SetAttributeValue("path", cty.StringVal(s.Path))
		sb.SetAttributeValue("key", cty.StringVal(s.Key))
	}
	if pc := fn.Provisioned; pc != nil {
		if err := writeProvisioned(b, pc); err != nil {
			return err
		}
	}
	if u := fn.URL; u != nil {
		writeURL(b, u)
	}
	if a := fn.Async; a != nil {
		ab := b.block("async")
		if a.MaxRetries != defaultAsyncMaxRetries {
			ab.integer("max_retries", a.MaxRetries)
		}
		if a.MaxEventAge != defaultMaxEventAge {
			ab.str("max_event_age", a.MaxEventAge)
		}
		writeDestination(ab, "on_success", a.OnSuccess)
		writeDestination(ab, "on_failure", a.OnFailure)
		writeDestination(ab, "dead_letter", a.DeadLetter)
	}
	for _, es := range fn.EventSources {
		writeEventSource(b, fn.Name, es)
	}
	for _, al := range fn.Aliases {
		if err := writeAlias(b, al); err != nil {
			return err
		}
	}
	if p := fn.Placement; p != nil {
		pb := b.block("placement")
		pb.str("region", p.Region)
		pb.strList("datacenters", p.Datacenters)
		pb.str("namespace", p.Namespace)
		pb.str("node_pool", p.NodePool)
		pb.nonZero("priority", p.Priority)
		for _, c := range p.Constraints {
			cb := pb.block("constraint")
			cb.str("attribute", c.Attribute)
			if c.Operator != defaultConstraintOperator {
				cb.str("operator", c.Operator)
			}
			cb.str("value", c.Value)
		}
	}
	return nil
}

func writeProvisioned(b hclBody, pc *ProvisionedConcurrency) error {
	pb := b.block("provisioned_concurrency")
	pb.nonZero("min", pc.Min)
	if pc.Max != pc.Min {
		pb.integer("max", pc.Max) // Parse sets max to min when it is absent (or 0)
	}
	if pc.TargetUtilization != defaultTargetUtilization && pc.TargetUtilization != 0 {
		if err := pb.float("target_utilization", pc.TargetUtilization); err != nil {
			return err
		}
	}
	for _, s := range pc.Schedules {
		sb := pb.block("schedule", s.Name)
		sb.SetAttributeValue("cron", cty.StringVal(s.Cron))
		if s.Duration != defaultScheduleDuration {
			sb.str("duration", s.Duration)
		}
		if s.Timezone != defaultScheduleTimezone {
			sb.str("timezone", s.Timezone)
		}
		sb.integer("min", s.Min)
	}
	return nil
}

func writeURL(b hclBody, u *URLConfig) {
	ub := b.block("url")
	if u.Auth != defaultURLAuth {
		ub.str("auth", u.Auth)
	}
	if u.InvokeMode != defaultInvokeMode {
		ub.str("invoke_mode", u.InvokeMode)
	}
	if u.Qualifier != QualifierLatest {
		ub.str("qualifier", u.Qualifier)
	}
	if c := u.CORS; c != nil {
		cb := ub.block("cors")
		cb.strList("allow_origins", c.AllowOrigins)
		cb.strList("allow_methods", c.AllowMethods)
		cb.strList("allow_headers", c.AllowHeaders)
		cb.strList("expose_headers", c.ExposeHeaders)
		if c.AllowCredentials {
			cb.boolean("allow_credentials", true)
		}
		cb.nonZero("max_age", c.MaxAge)
	}
}

func writeDestination(b hclBody, typ string, d *Destination) {
	if d == nil {
		return
	}
	db := b.block(typ)
	db.str("function", d.Function)
	db.str("nats", d.NATS)
	db.str("kafka", d.Kafka)
	db.str("webhook", d.Webhook)
}

func writeEventSource(b hclBody, fnName string, es *EventSource) {
	// def is what Parse fills in for a source of this type that sets nothing.
	def := &EventSource{Name: es.Name, Type: es.Type}
	applyEventSourceDefaults(&Function{Name: fnName, EventSources: []*EventSource{def}})

	eb := b.block("event_source", es.Name)
	eb.SetAttributeValue("type", cty.StringVal(es.Type))
	if !es.Enabled {
		eb.boolean("enabled", false) // Parse's default is true
	}
	eb.str("url", es.URL)
	eb.str("stream", es.Stream)
	eb.str("subject", es.Subject)
	eb.strList("topics", es.Topics)
	eb.str("queue", es.Queue)
	if es.Group != def.Group {
		eb.str("group", es.Group)
	}
	eb.str("schedule", es.Schedule)
	eb.str("input", es.Input)
	if es.StartingFrom != def.StartingFrom {
		eb.str("starting_position", es.StartingFrom)
	}
	eb.str("starting_position_timestamp", es.StartingTimestamp)
	if es.BatchSize != def.BatchSize {
		eb.nonZero("batch_size", es.BatchSize)
	}
	if es.MaximumBatchingWindow != def.MaximumBatchingWindow {
		eb.str("maximum_batching_window", es.MaximumBatchingWindow)
	}
	if r := es.MaximumRetryAttempts; r != nil && (def.MaximumRetryAttempts == nil || *r != *def.MaximumRetryAttempts) {
		eb.integer("maximum_retry_attempts", *r)
	}
	eb.str("maximum_record_age", es.MaximumRecordAge)
	if es.BisectBatchOnFunctionError {
		eb.boolean("bisect_batch_on_function_error", true)
	}
	if es.ReportBatchItemFailures {
		eb.boolean("report_batch_item_failures", true)
	}
	eb.nonZero("maximum_concurrency", es.MaximumConcurrency)
	eb.nonZero("parallelization_factor", es.ParallelizationFactor)
	// Filters stay JSON strings: rewriting them as HCL objects would
	// reorder their keys when read back.
	eb.strList("filters", es.Filters)
	writeDestination(eb, "on_failure", es.OnFailure)
}

func writeAlias(b hclBody, al *Alias) error {
	ab := b.block("alias", al.Name)
	ab.str("description", al.Description)
	ab.SetAttributeValue("version", cty.StringVal(al.Version))
	versions := make([]string, 0, len(al.Routing))
	for v := range al.Routing {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	for _, v := range versions {
		rb := ab.block("routing")
		rb.SetAttributeValue("version", cty.StringVal(v))
		if err := rb.float("weight", al.Routing[v]); err != nil {
			return err
		}
	}
	return nil
}
