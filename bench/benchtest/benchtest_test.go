package benchtest

import (
	"context"
	"io"
	"testing"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/specs"
)

func TestStartEchoIsWarmAndEchoes(t *testing.T) {
	in := StartEcho(t, "fn", 2)
	c := &invokeapi.Client{}
	st, err := c.Status(context.Background(), in.Addr())
	if err != nil || st.Idle != 2 {
		t.Fatalf("status %+v, %v; want 2 idle environments", st, err)
	}
	resp, err := c.Invoke(context.Background(), in.Addr(), &invokeapi.Request{Payload: []byte(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != `{"n":1}` || resp.FunctionError != "" {
		t.Fatalf("echo answered %q (function error %q)", b, resp.FunctionError)
	}
}

func TestCatalogAndSource(t *testing.T) {
	cat := Catalog{Snapshot: catalog.NewSnapshot(catalog.FromFile(&specs.File{Functions: []*specs.Function{
		{Name: "a", Runtime: "provided.al2023", Timeout: "3s", MemoryMB: 128},
	}}))}
	if f, err := cat.Function(context.Background(), "a"); err != nil || f.Name != "a" {
		t.Fatalf("Function(a) = %v, %v", f, err)
	}
	if _, err := cat.Function(context.Background(), "b"); err == nil {
		t.Fatal("Function(b) found a function that is not in the snapshot")
	}
	if fs, _ := cat.Functions(context.Background()); len(fs) != 1 {
		t.Fatalf("Functions = %d", len(fs))
	}
	src := Source{"a": {{ID: "a-1"}}}
	if got, _ := src.Instances(context.Background(), "a", "7"); len(got) != 1 || got[0].ID != "a-1" {
		t.Fatalf("Instances(a) = %v", got)
	}
	if got, _ := src.Instances(context.Background(), "b", catalog.Latest); len(got) != 0 {
		t.Fatalf("Instances(b) = %v", got)
	}
}
