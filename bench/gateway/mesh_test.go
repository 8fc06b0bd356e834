package gatewaybench

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/bench/benchtest"
	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/internal/consultest"
	"github.com/nimbus-fn/nimbus/mesh"
	"github.com/nimbus-fn/nimbus/specs"
)

const benchKey = "bench-cluster-key"

// BenchmarkWarmInvokeMesh compares the gateway → instance hop over Consul
// Connect (mutual TLS with the gateway's leaf, intentions asked of the
// local agent per call) with plain HTTP and the invoke secret, in the same
// run against a real Consul dev agent: two instances of the echo function,
// one per kind, behind one gateway, measured interleaved at 1, 16 and 64
// clients, each also called directly through driver/invokeapi. It counts
// the gateway's TLS handshakes to show connections are pooled. Use
// -benchtime=1x.
func BenchmarkWarmInvokeMesh(b *testing.B) {
	agent := consultest.Start(b)
	cc := agent.Client(b)
	const envs = 64
	gwSrc, err := mesh.NewSource(cc.Agent(), mesh.SourceConfig{Service: "nimbus-gateway"})
	if err != nil {
		b.Fatal(err)
	}
	defer gwSrc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gwSrc.Ready(ctx); err != nil {
		b.Fatal(err)
	}
	var handshakes atomic.Int64
	clientTLS := func(fn string) *tls.Config {
		c := gwSrc.ClientTLSConfig("nimbus-" + fn)
		c.VerifyConnection = func(tls.ConnectionState) error { handshakes.Add(1); return nil }
		return c
	}
	secret := invokeapi.DeriveSecret([]byte(benchKey), "plain", catalog.Latest)
	plain := benchtest.Start(b, benchtest.Function{Name: "plain", Code: "echo", Envs: envs, Secret: secret})
	meshClient := &invokeapi.Client{TLS: gwSrc.ClientTLSConfig("nimbus-meshed")}
	meshed := benchtest.Start(b, benchtest.Function{Name: "meshed", Code: "echo", Envs: envs,
		Mesh:   &instance.MeshConfig{Service: "nimbus-meshed", Address: agent.HTTPAddr},
		Client: meshClient})

	fns := catalog.FromFile(&specs.File{Functions: []*specs.Function{
		{Name: "plain", Runtime: "provided.al2023", Timeout: "10s", MemoryMB: 128, EnvironmentsPerInstance: envs},
		{Name: "meshed", Runtime: "provided.al2023", Timeout: "10s", MemoryMB: 128, EnvironmentsPerInstance: envs},
	}})
	src := benchtest.Source{
		"plain":  {{ID: "plain-1", Address: plain.Addr(), Function: "plain", Version: catalog.Latest, Group: discovery.GroupProvisioned}},
		"meshed": {{ID: "meshed-1", Address: meshed.Addr(), Function: "meshed", Version: catalog.Latest, Group: discovery.GroupProvisioned, Mesh: true}},
	}
	s, err := server.New(&config.Config{Dev: true, Listen: "127.0.0.1:0", ShutdownGrace: "5s", InvokeKey: benchKey},
		server.Deps{Catalog: benchtest.Catalog{Snapshot: catalog.NewSnapshot(fns)}, Source: src, InstanceTLS: clientTLS})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	if err := s.Start(runCtx); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Serve(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	r := &rig{httpc: newRigClient()}
	gw := "http://" + s.Addr() + "/2015-03-31/functions/"
	directPlain := &invokeapi.Client{Secret: secret}
	direct := func(c *invokeapi.Client, addr string) func() (int, error) {
		return func() (int, error) {
			resp, err := c.Invoke(context.Background(), addr, &invokeapi.Request{Payload: []byte(payload)})
			if err != nil {
				return 0, err
			}
			_ = drain(resp)
			return http.StatusOK, nil
		}
	}
	var rows []result
	var meshCalls int
	for _, clients := range []int{1, 16, 64} {
		n := perClient[clients]
		rows = append(rows, loadInterleaved(clients, n, rounds,
			call{"direct, plain HTTP + secret", direct(directPlain, plain.Addr())},
			call{"direct, mTLS + intentions", direct(meshClient, meshed.Addr())},
			call{"gateway → instance, plain HTTP + secret", func() (int, error) { return r.post(gw + "plain/invocations") }},
			call{"gateway → instance, mTLS + intentions", func() (int, error) { return r.post(gw + "meshed/invocations") }},
		)...)
		meshCalls += rounds*clients*n + 50
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "\nwarm sync invoke, gateway → instance over Consul Connect vs plain HTTP, aws-lambda-go echo, %d-byte payload\n", len(payload))
	fmt.Fprintf(&out, "%-42s %7s %10s %10s %10s %9s\n", "path", "clients", "p50", "p99", "req/s", "vs plain")
	base := map[string]result{}
	for _, row := range rows {
		kind := "direct"
		if row.name[0] == 'g' {
			kind = "gateway"
		}
		key := fmt.Sprintf("%s/%d", kind, row.clients)
		if _, ok := base[key]; !ok {
			base[key] = row // the plain row of each pair comes first
		}
		bp := base[key]
		fmt.Fprintf(&out, "%-42s %7d %10s %10s %10.0f %5.2f/%.2fx\n", row.name, row.clients,
			row.p50.Round(time.Microsecond), row.p99.Round(time.Microsecond), row.rps,
			float64(row.p50)/float64(bp.p50), float64(row.p99)/float64(bp.p99))
		if row.errors > 0 || row.statuses[http.StatusOK] == 0 || len(row.statuses) != 1 {
			b.Errorf("%s c=%d: statuses %v, %d transport errors", row.name, row.clients, row.statuses, row.errors)
		}
	}
	fmt.Fprintf(&out, "(vs plain: p50/p99 ratio to the plain row of the same path and clients)\n")
	fmt.Fprintf(&out, "gateway TLS handshakes to the mTLS instance: %d over %d calls\n", handshakes.Load(), meshCalls)
	fmt.Fprint(os.Stdout, out.String())
	if h := handshakes.Load(); h > 64+8 {
		b.Errorf("%d handshakes for %d calls at most 64 at once: connections are not pooled", h, meshCalls)
	}
}
