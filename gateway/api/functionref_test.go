package api

import "testing"

// TestParseFunctionRefForms covers the name forms Lambda accepts, and
// checks that the bare-name fast path answers what the full pattern does.
func TestParseFunctionRefForms(t *testing.T) {
	for _, c := range []struct {
		label, qualifier string
		name, qual       string
		region, account  string
		bad              bool
	}{
		{label: "echo", name: "echo"},
		{label: "my.fn_2-x", name: "my.fn_2-x"},
		{label: "123456789012", name: "123456789012"},
		{label: "echo:live", name: "echo", qual: "live"},
		{label: "echo:$LATEST", name: "echo", qual: "$LATEST"},
		{label: "echo", qualifier: "3", name: "echo", qual: "3"},
		{label: "123456789012:function:echo", name: "echo", account: "123456789012"},
		{label: "arn:aws:lambda:us-east-1:123456789012:function:echo:7", name: "echo", qual: "7", region: "us-east-1", account: "123456789012"},
		{label: "echo:live", qualifier: "other", bad: true},
		{label: "ec ho", bad: true},
		{label: "echo/x", bad: true},
		{label: "", bad: true},
	} {
		ref, aerr := parseFunctionRef(c.label, c.qualifier)
		if c.bad {
			if aerr == nil || aerr.Code != CodeInvalidParameterValue {
				t.Errorf("%q: got %+v, %v; want InvalidParameterValue", c.label, ref, aerr)
			}
			continue
		}
		if aerr != nil {
			t.Errorf("%q: %v", c.label, aerr.Message)
			continue
		}
		if ref.Name != c.name || ref.Qualifier != c.qual || ref.Region != c.region || ref.Account != c.account {
			t.Errorf("%q: got %+v", c.label, *ref)
		}
		if plainFunctionName(c.label) {
			if m := functionNamePattern.FindStringSubmatch(c.label); m == nil || m[7] != c.label || m[9] != "" {
				t.Errorf("%q: fast path disagrees with the pattern %q", c.label, m)
			}
		}
	}
}
