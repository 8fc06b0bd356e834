package consul

import (
	"slices"
	"testing"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/specs"
)

func TestURLFunctions(t *testing.T) {
	fns := catalog.FromFile(&specs.File{Functions: []*specs.Function{
		{Name: "a", URL: &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"}},
		{Name: "b"},
		{Name: "c", URL: &specs.URLConfig{Auth: "AWS_IAM", InvokeMode: "RESPONSE_STREAM", Qualifier: "live"}},
	}})
	got := URLFunctions(catalog.NewSnapshot(fns).Functions())
	want := []URLFunction{
		{Function: "a", Qualifier: "$LATEST", Auth: "NONE", InvokeMode: "BUFFERED"},
		{Function: "c", Qualifier: "live", Auth: "AWS_IAM", InvokeMode: "RESPONSE_STREAM"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("URLFunctions = %+v, want %+v", got, want)
	}
}
