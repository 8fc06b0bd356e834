package jobs

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// node is a parsed HCL block: evaluated attributes and child blocks.
type node struct {
	labels []string
	attrs  map[string]cty.Value
	blocks map[string][]*node
}

func readBody(t *testing.T, body *hclsyntax.Body, labels []string) *node {
	t.Helper()
	n := &node{labels: labels, attrs: map[string]cty.Value{}, blocks: map[string][]*node{}}
	for name, attr := range body.Attributes {
		v, diags := attr.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("attribute %s: %s", name, diags.Error())
		}
		n.attrs[name] = v
	}
	for _, b := range body.Blocks {
		n.blocks[b.Type] = append(n.blocks[b.Type], readBody(t, b.Body, b.Labels))
	}
	return n
}

func (n *node) one(t *testing.T, typ string) *node {
	t.Helper()
	if len(n.blocks[typ]) != 1 {
		t.Fatalf("want one %s block, have %d", typ, len(n.blocks[typ]))
	}
	return n.blocks[typ][0]
}

func (n *node) str(t *testing.T, name string) string {
	t.Helper()
	v, ok := n.attrs[name]
	if !ok || v.Type() != cty.String {
		t.Fatalf("attribute %s missing or not a string: %#v", name, v)
	}
	return v.AsString()
}

func (n *node) num(t *testing.T, name string) *big.Float {
	t.Helper()
	v, ok := n.attrs[name]
	if !ok || v.Type() != cty.Number {
		t.Fatalf("attribute %s missing or not a number: %#v", name, v)
	}
	return v.AsBigFloat()
}

func stringMap(t *testing.T, v cty.Value) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, e := range v.AsValueMap() {
		out[k] = e.AsString()
	}
	return out
}

// The rendered HCL parses, and reading it back yields the job's values —
// including strings that need escaping (${…} interpolations, quotes,
// newlines, template braces) and meta keys with dots.
func TestRenderHCLReadsBack(t *testing.T) {
	fn, opts := loadCase(t, "full")
	job, err := Compile(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	src, err := RenderHCL(job)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, "full.job.hcl")
	if diags.HasErrors() {
		t.Fatalf("rendered HCL does not parse: %s", diags.Error())
	}
	root := readBody(t, f.Body.(*hclsyntax.Body), nil)
	jb := root.one(t, "job")
	if len(jb.labels) != 1 || jb.labels[0] != *job.ID {
		t.Fatalf("job labels %v", jb.labels)
	}
	if got := stringMap(t, jb.attrs["meta"]); fmt.Sprint(got) != fmt.Sprint(job.Meta) {
		t.Errorf("job meta read back as %v", got)
	}
	cons := jb.blocks["constraint"]
	// The spec's two, then network = "none"'s isolation constraint.
	if len(cons) != 3 || cons[0].str(t, "attribute") != "${attr.kernel.name}" || cons[0].str(t, "operator") != "=" ||
		cons[2].str(t, "attribute") != IsolationAttribute || cons[2].str(t, "value") != "full" {
		t.Errorf("constraints read back wrong")
	}
	groups := jb.blocks["group"]
	if len(groups) != 2 {
		t.Fatalf("%d groups", len(groups))
	}
	for i, g := range groups {
		want := job.TaskGroups[i]
		if g.labels[0] != *want.Name {
			t.Errorf("group %d label %v", i, g.labels)
		}
		if c, _ := g.num(t, "count").Int64(); c != int64(*want.Count) {
			t.Errorf("group %s count %d", *want.Name, c)
		}
		task := g.one(t, "task")
		wantTask := want.Tasks[0]
		cfg := task.one(t, "config")
		for k, v := range wantTask.Config {
			got := cfg.attrs[k]
			switch v := v.(type) {
			case string:
				if got.AsString() != v {
					t.Errorf("config %s = %v, want %q", k, got, v)
				}
			case int:
				if n, _ := got.AsBigFloat().Int64(); n != int64(v) {
					t.Errorf("config %s = %v, want %d", k, got, v)
				}
			}
		}
		if len(cfg.attrs) != len(wantTask.Config) {
			t.Errorf("config has %d attributes, want %d", len(cfg.attrs), len(wantTask.Config))
		}
		if got := stringMap(t, task.attrs["env"]); fmt.Sprint(got) != fmt.Sprint(wantTask.Env) {
			t.Errorf("env read back as %v", got)
		}
		tmpls := task.blocks["template"]
		if len(tmpls) != len(wantTask.Templates) {
			t.Fatalf("%d template blocks, want %d", len(tmpls), len(wantTask.Templates))
		}
		for i, tm := range tmpls {
			if tm.str(t, "data") != *wantTask.Templates[i].EmbeddedTmpl || tm.str(t, "destination") != *wantTask.Templates[i].DestPath {
				t.Errorf("template %d changed", i)
			}
		}
		if task.str(t, "kill_timeout") != wantTask.KillTimeout.String() {
			t.Errorf("kill_timeout %q", task.str(t, "kill_timeout"))
		}
		arts := task.blocks["artifact"]
		if len(arts) != len(wantTask.Artifacts) {
			t.Errorf("%d artifact blocks read back, want %d", len(arts), len(wantTask.Artifacts))
		}
		for i, a := range arts {
			if i < len(wantTask.Artifacts) && a.one(t, "options").str(t, "checksum") != wantTask.Artifacts[i].GetterOptions["checksum"] {
				t.Errorf("artifact %d read back wrong", i)
			}
		}
		if urls := cfg.attrs["layer_urls"]; wantTask.Config["layer_urls"] != nil && (urls.IsNull() || urls.LengthInt() != len(wantTask.Config["layer_urls"].([]any))) {
			t.Errorf("layer_urls read back as %v", urls)
		}
		port := g.one(t, "network").one(t, "port")
		if port.labels[0] != "invoke" {
			t.Errorf("port label %v", port.labels)
		}
		svc := g.one(t, "service")
		if svc.str(t, "name") != want.Services[0].Name || svc.one(t, "check").str(t, "path") != want.Services[0].Checks[0].Path {
			t.Errorf("service read back wrong")
		}
		sc := g.one(t, "scaling")
		if enabled := sc.attrs["enabled"]; enabled.True() != *want.Scaling.Enabled {
			t.Errorf("scaling enabled %v", enabled)
		}
		if *want.Name == GroupProvisioned {
			check := sc.one(t, "policy").one(t, "check")
			strat := check.one(t, "strategy")
			if check.labels[0] != CheckName || strat.labels[0] != StrategyName || check.str(t, "query") != "orders/3" {
				t.Errorf("policy check %v / strategy %v", check.labels, strat.labels)
			}
			wantStrat := want.Scaling.Policy["check"].([]any)[0].(map[string]any)[CheckName].([]any)[0].(map[string]any)["strategy"].([]any)[0].(map[string]any)[StrategyName].([]any)[0].(map[string]any)
			if strat.str(t, StrategySchedules) != wantStrat[StrategySchedules] {
				t.Errorf("schedules changed")
			}
			if f, _ := strat.num(t, StrategyTarget).Float64(); f != 0.6 {
				t.Errorf("target %v", f)
			}
		}
	}
}

func TestRenderHCLRejectsJobWithoutID(t *testing.T) {
	if _, err := RenderHCL(nil); err == nil {
		t.Fatal("nil job rendered")
	}
	if _, err := RenderJSON(nil); err == nil {
		t.Fatal("nil job rendered as JSON")
	}
}
