package specs

import (
	"fmt"
	"reflect"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// heapWatchdog crashes the test binary when the heap passes limit bytes
// while it runs: an unbounded evaluation would otherwise take the machine
// down with it instead of failing.
func heapWatchdog(t *testing.T, limit uint64) {
	t.Helper()
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			if used := sample[0].Value.Uint64(); used > limit {
				panic(fmt.Sprintf("%s: the heap holds %d bytes, over the test's limit of %d", t.Name(), used, limit))
			}
		}
	}()
}

// liftDeadline lets a test see which count stops evaluation even on a
// machine slow enough to reach the deadline first.
func liftDeadline(t *testing.T) {
	old := evalTimeout
	evalTimeout = time.Hour
	t.Cleanup(func() { evalTimeout = old })
}

// hugeListSpec is a ~100 KB spec whose local s is a string of 99,999
// commas, l is a 100,000-element list split from it, and m is built by body
// (on line 4).
func hugeListSpec(body string) string {
	return "locals {\n" +
		"  s = \"" + strings.Repeat(",", 99_999) + "\"\n" +
		"  l = split(\",\", local.s)\n" +
		"  m = " + body + "\n" +
		"}\n" +
		"function \"f\" {\n" +
		"  runtime = \"provided\"\n" +
		"  code { dir = \".\" }\n" +
		"  environment = { N = tostring(length(local.m)) }\n" +
		"}\n"
}

// TestEvaluationBudget: specs of ~100 KB whose expressions describe billions
// of steps or gigabytes fail fast with one diagnostic at the place that
// spent the budget, instead of running the process out of memory.
func TestEvaluationBudget(t *testing.T) {
	heapWatchdog(t, 1<<30)
	liftDeadline(t)
	for name, tc := range map[string]struct {
		body   string // of local m, on line 4
		at     string // the expression the diagnostic points at (its first match on line 4)
		detail string
	}{
		"nested for": {
			body:   `[for a in local.l : [for b in local.l : "${a}${b}"]]`,
			at:     `local.l : "`,
			detail: "for expressions iterate over more than 100000 elements in all",
		},
		"nested for with a condition": {
			body:   `[for a in local.l : [for b in local.l : b if a == b]]`,
			at:     `local.l : b`,
			detail: "for expressions iterate over more than 100000 elements in all",
		},
		"big values in a loop": {
			body:   `[for a in local.l : "${a}${local.s}"]`,
			at:     `"${a}`,
			detail: "expressions build more than 67108864 bytes of values in all",
		},
		"big arguments in a loop": {
			body:   `[for a in local.l : length(local.l)]`,
			at:     `length(`,
			detail: "function calls are given more than 1000000 values in all",
		},
		"object for": {
			body:   `{for i, a in local.l : "${i}" => [for b in local.l : b]}`,
			at:     `local.l : b`,
			detail: "for expressions iterate over more than 100000 elements in all",
		},
	} {
		t.Run(name, func(t *testing.T) {
			src := hugeListSpec(tc.body)
			if len(src) < 100_000 {
				t.Fatalf("spec of %d bytes, want ~100 KB", len(src))
			}
			f, diags := ParseFile("big.hcl", []byte(src), nil)
			if f != nil {
				t.Fatal("spec accepted")
			}
			line := strings.Split(src, "\n")[3]
			col := strings.Index(line, tc.at) + 1
			if col == 0 {
				t.Fatalf("%q not on line 4", tc.at)
			}
			got := FormatDiagnostics(diags, nil)
			want := fmt.Sprintf("big.hcl:4:%d: error: Spec too costly to evaluate\n    %s; a spec describes functions, so keep its lists and loops small\n", col, tc.detail)
			if got != want {
				t.Fatalf("diagnostics:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// A for expression in a -var value is metered like one in a spec.
func TestEvaluationBudgetInVarValues(t *testing.T) {
	heapWatchdog(t, 1<<30)
	liftDeadline(t)
	list := "[" + strings.Repeat("1,", 2000) + "1]"
	_, diags := ParseFile("v.hcl", []byte(`variable "m" { type = list(list(number)) }`), &Options{
		Vars: map[string]string{"m": "[for a in " + list + " : [for b in " + list + " : [for c in " + list + " : c]]]"},
	})
	if got := FormatDiagnostics(diags, nil); !strings.Contains(got, "error: Spec too costly to evaluate\n    for expressions iterate over more than 100000 elements") {
		t.Fatalf("diagnostics:\n%s", got)
	}
}

// The deadline stops work the counts do not see.
func TestEvaluationBudgetDeadline(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	calls := 0
	bud := newBudget(func() time.Time {
		calls++
		if calls > 3 { // the budget's own start, then two checks in time
			return start.Add(evalTimeout + time.Millisecond)
		}
		return start
	})
	expr, diags := hclsyntax.ParseExpression([]byte(`[for x in [1, 2, 3, 4, 5] : x * 2]`), "d.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	guardExpressions(bud, expr, true)
	evaluated := 0
	finished, err := bud.run(func() {
		_, _ = expr.Value(&hcl.EvalContext{Functions: functions(".", nil, bud)})
		evaluated++
	})
	if finished || err != nil || evaluated != 0 {
		t.Fatalf("finished %v, err %v, evaluated %d: want evaluation ended by the deadline", finished, err, evaluated)
	}
	got := FormatDiagnostics(hcl.Diagnostics{bud.diagnostic()}, nil)
	want := "d.hcl:1:29: error: Spec too costly to evaluate\n    evaluating the specs took longer than 5s; a spec describes functions, so keep its lists and loops small\n"
	if got != want {
		t.Fatalf("diagnostics:\n%s\nwant:\n%s", got, want)
	}
}

// A panic while evaluating becomes an error instead of ending the process
// (nimbus dev evaluates specs in its own process).
func TestEvaluationPanicIsAnError(t *testing.T) {
	finished, err := newBudget(nil).run(func() { panic("boom") })
	if finished || err == nil || !strings.Contains(err.Error(), "internal error evaluating the specs: boom") {
		t.Fatalf("finished %v, err %v", finished, err)
	}
}

// For expressions of ordinary size keep their results and their
// diagnostics' places under the guards.
func TestForExpressionsUnderTheBudget(t *testing.T) {
	f := mustParse(t, `locals {
  names = ["a", "b", "c"]
  sizes = { a = 1, b = 2, c = 3 }
  upper = join(",", [for n in local.names : upper(n)])
  odd   = join(",", [for k, v in local.sizes : k if v % 2 == 1])
  obj   = { for k, v in local.sizes : "K_${upper(k)}" => tostring(v * 10) }
}
function "f" {
  runtime     = "provided"
  code { dir = "." }
  environment = merge(local.obj, { UPPER = local.upper, ODD = local.odd })
}`, nil)
	want := map[string]string{"K_A": "10", "K_B": "20", "K_C": "30", "UPPER": "A,B,C", "ODD": "a,c"}
	if got := f.Function("f").Environment; !reflect.DeepEqual(got, want) {
		t.Errorf("environment %q, want %q", got, want)
	}
	_, diags := ParseFile("n.hcl", []byte("locals {\n  x = [for a in null : a]\n}\n"), nil)
	if got := FormatDiagnostics(diags, nil); got != "n.hcl:2:17: error: Iteration over null value\n    A null value cannot be used as the collection in a 'for' expression.\n" {
		t.Errorf("null collection: %q", got)
	}
}
