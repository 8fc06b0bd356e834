package gatewaybench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/bench/benchtest"
	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/specs"
)

const payload = `{"message":"hello from the benchmark","n":42}`

// perClient is how many requests each client sends per measurement.
var perClient = map[int]int{1: 1000, 16: 100, 64: 40}

type rig struct {
	gateway  string // base URL
	inst     *instance.Instance
	client   *invokeapi.Client
	floor    string
	httpc    *http.Client
	shutdown func()
}

func newRig(tb testing.TB) *rig {
	tb.Helper()
	const envs = 64
	echo := benchtest.StartEcho(tb, "echo", envs)
	limited := benchtest.StartEcho(tb, "limited", envs)
	four := 4
	fns := catalog.FromFile(&specs.File{Functions: []*specs.Function{
		{Name: "echo", Runtime: "provided.al2023", Timeout: "10s", MemoryMB: 128, EnvironmentsPerInstance: envs},
		{Name: "limited", Runtime: "provided.al2023", Timeout: "10s", MemoryMB: 128, EnvironmentsPerInstance: envs, ReservedConcurrency: &four},
	}})
	src := benchtest.Source{
		"echo":    {{ID: "echo-1", Address: echo.Addr(), Function: "echo", Version: catalog.Latest, Group: discovery.GroupProvisioned}},
		"limited": {{ID: "limited-1", Address: limited.Addr(), Function: "limited", Version: catalog.Latest, Group: discovery.GroupProvisioned}},
	}
	s, err := server.New(&config.Config{Dev: true, Listen: "127.0.0.1:0", ShutdownGrace: "5s"},
		server.Deps{Catalog: benchtest.Catalog{Snapshot: catalog.NewSnapshot(fns)}, Source: src})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()

	echoSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	target, _ := url.Parse(echoSrv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = invokeapi.NewTransport()
	floor := httptest.NewServer(proxy)

	return &rig{
		gateway: "http://" + s.Addr(), inst: echo, client: &invokeapi.Client{}, floor: floor.URL,
		httpc: newRigClient(),
		shutdown: func() {
			floor.Close()
			echoSrv.Close()
			cancel()
			<-done
		},
	}
}

// newRigClient is the benchmark's client of the gateway.
func newRigClient() *http.Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	return &http.Client{Transport: tr}
}

// drain reads and closes an invocation's body.
func drain(resp *invokeapi.Response) error {
	_, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}

// post sends payload and returns the status.
func (r *rig) post(u string) (int, error) {
	resp, err := r.httpc.Post(u, "application/json", strings.NewReader(payload))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (r *rig) direct() (int, error) {
	resp, err := r.client.Invoke(context.Background(), r.inst.Addr(), &invokeapi.Request{Payload: []byte(payload)})
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return http.StatusOK, nil
}

type result struct {
	name     string
	clients  int
	p50, p99 time.Duration
	rps      float64
	statuses map[int]int
	errors   int
}

// load runs clients concurrent loops of n calls each and measures them.
func load(name string, clients, n int, call func() (int, error)) result {
	for i := 0; i < 50; i++ { // warm connections and environments
		_, _ = call()
	}
	lat := make([][]time.Duration, clients)
	statuses := make([]map[int]int, clients)
	errs := make([]int, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[c] = map[int]int{}
			for i := 0; i < n; i++ {
				t0 := time.Now()
				code, err := call()
				lat[c] = append(lat[c], time.Since(t0))
				if err != nil {
					errs[c]++
					continue
				}
				statuses[c][code]++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	res := result{name: name, clients: clients, statuses: map[int]int{}}
	for c := range lat {
		all = append(all, lat[c]...)
		for k, v := range statuses[c] {
			res.statuses[k] += v
		}
		res.errors += errs[c]
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.p50 = all[len(all)/2]
	res.p99 = all[len(all)*99/100]
	res.rps = float64(len(all)) / elapsed.Seconds()
	return res
}

// BenchmarkWarmInvoke prints the warm-path table. It measures fixed request
// counts (not b.N), so `-benchtime=1x` is the intended setting.
func BenchmarkWarmInvoke(b *testing.B) {
	r := newRig(b)
	defer r.shutdown()
	gw := r.gateway + "/2015-03-31/functions/echo/invocations"
	var rows []result
	for _, clients := range []int{1, 16, 64} {
		n := perClient[clients]
		rows = append(rows,
			load("floor: ReverseProxy → loopback echo", clients, n, func() (int, error) { return r.post(r.floor) }),
			load("instance direct (invokeapi)", clients, n, r.direct),
			load("gateway Invoke API → instance", clients, n, func() (int, error) { return r.post(gw) }),
		)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "\nwarm sync invoke, aws-lambda-go echo, %d-byte payload\n", len(payload))
	fmt.Fprintf(&out, "%-38s %7s %10s %10s %10s %8s\n", "path", "clients", "p50", "p99", "req/s", "vs floor")
	floor := map[int]float64{}
	for _, row := range rows {
		if strings.HasPrefix(row.name, "floor") {
			floor[row.clients] = float64(row.p50)
		}
		ratio := float64(row.p50) / floor[row.clients]
		fmt.Fprintf(&out, "%-38s %7d %10s %10s %10.0f %7.2fx\n", row.name, row.clients,
			row.p50.Round(time.Microsecond), row.p99.Round(time.Microsecond), row.rps, ratio)
		if row.errors > 0 || row.statuses[http.StatusOK] == 0 || len(row.statuses) != 1 {
			b.Errorf("%s c=%d: statuses %v, %d transport errors", row.name, row.clients, row.statuses, row.errors)
		}
	}
	fmt.Fprint(os.Stdout, out.String())
}

// BenchmarkThrottle drives a function with reserved concurrency 4 with 64
// clients: every answer must be 200 or 429, never a 5xx.
func BenchmarkThrottle(b *testing.B) {
	r := newRig(b)
	defer r.shutdown()
	u := r.gateway + "/2015-03-31/functions/limited/invocations"
	res := load("gateway, reserved concurrency 4", 64, 100, func() (int, error) { return r.post(u) })
	fmt.Fprintf(os.Stdout, "\nthrottling run: %d clients, reserved concurrency 4\n%-10s %8d\n%-10s %8d\n%-10s %8d\nother statuses: %v, transport errors: %d\n",
		64, "200", res.statuses[200], "429", res.statuses[429], "total", res.statuses[200]+res.statuses[429], others(res.statuses), res.errors)
	if res.errors > 0 || len(others(res.statuses)) > 0 || res.statuses[200] == 0 || res.statuses[429] == 0 {
		b.Errorf("throttling run must answer only 200 and 429 (both seen): %v, %d errors", res.statuses, res.errors)
	}
}

func others(m map[int]int) map[int]int {
	out := map[int]int{}
	for k, v := range m {
		if k != 200 && k != 429 {
			out[k] = v
		}
	}
	return out
}
