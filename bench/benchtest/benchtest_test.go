package benchtest

import (
	"context"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/internal/testfn"
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

// The stamp function, started with its environment, logs each record of
// both event shapes with one time per invocation.
func TestStartStampLogsEachRecord(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "stamp.log")
	in := Start(t, Function{Name: "stamp", Code: "stamp", Envs: 1, Env: map[string]string{"STAMP_LOG": testfn.LogURL(t, logPath)}})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	kafka := `{"eventSource":"SelfManagedKafka","records":{"t-1":[{"offset":7,"value":"` + b64("k3") + `"}],` +
		`"t-0":[{"offset":1,"value":"` + b64("k1") + `"},{"offset":2,"value":"` + b64(`{"id":"k2"}`) + `"}]}}`
	list := `{"eventSource":"nimbus:redis","records":[{"id":"1-0","data":"` + b64("r1") + `"},{"id":"1-1","data":"` + b64("r2") + `"}]}`
	before := time.Now().UnixNano()
	c := &invokeapi.Client{}
	for _, ev := range []string{kafka, list} {
		resp, err := c.Invoke(context.Background(), in.Addr(), &invokeapi.Request{Payload: []byte(ev)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != `{"batchItemFailures":[]}` || resp.FunctionError != "" {
			t.Fatalf("stamp answered %q (function error %q)", b, resp.FunctionError)
		}
	}
	after := time.Now().UnixNano()
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	want := []string{"k1", `{"id":"k2"}`, "k3", "r1", "r2"} // Kafka partitions in key order
	if len(lines) != len(want) {
		t.Fatalf("log has %d lines, want %d:\n%s", len(lines), len(want), raw)
	}
	stamps := map[string]bool{}
	for i, line := range lines {
		payload, ns, ok := strings.Cut(line, "\t")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil || payload != want[i] || n < before || n > after {
			t.Fatalf("line %d = %q; want %q and a time in [%d, %d]", i, line, want[i], before, after)
		}
		stamps[ns] = true
	}
	if len(stamps) != 2 {
		t.Fatalf("%d distinct times for 2 invocations:\n%s", len(stamps), raw)
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
