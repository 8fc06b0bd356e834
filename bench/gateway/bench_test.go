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

// perClient is how many requests each client sends per round.
var perClient = map[int]int{1: 400, 16: 60, 64: 25}

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

// call is one request of a measured path.
type call struct {
	name string
	do   func() (int, error)
}

// rounds interleaves the paths of one client count: each path runs in
// every round, so background load on a shared machine falls on all of them
// alike, and a row's figures pool its rounds.
const rounds = 5

// load runs clients concurrent loops of n calls each and measures them.
func load(name string, clients, n int, do func() (int, error)) result {
	return loadInterleaved(clients, n, 1, call{name, do})[0]
}

// loadInterleaved measures each path rounds times, round-robin, with clients
// concurrent loops of n calls per round.
func loadInterleaved(clients, n, rounds int, paths ...call) []result {
	type acc struct {
		lat      []time.Duration
		statuses map[int]int
		errors   int
		elapsed  time.Duration
	}
	accs := make([]acc, len(paths))
	for i, p := range paths {
		accs[i].statuses = map[int]int{}
		for range 50 { // warm connections and environments
			_, _ = p.do()
		}
	}
	for range rounds {
		for i, p := range paths {
			lat, statuses, errs, elapsed := loadOnce(clients, n, p.do)
			accs[i].lat = append(accs[i].lat, lat...)
			for k, v := range statuses {
				accs[i].statuses[k] += v
			}
			accs[i].errors += errs
			accs[i].elapsed += elapsed
		}
	}
	out := make([]result, len(paths))
	for i, a := range accs {
		sort.Slice(a.lat, func(x, y int) bool { return a.lat[x] < a.lat[y] })
		out[i] = result{name: paths[i].name, clients: clients, statuses: a.statuses, errors: a.errors,
			p50: a.lat[len(a.lat)/2], p99: a.lat[len(a.lat)*99/100], rps: float64(len(a.lat)) / a.elapsed.Seconds()}
	}
	return out
}

// loadOnce runs clients concurrent loops of n calls.
func loadOnce(clients, n int, do func() (int, error)) ([]time.Duration, map[int]int, int, time.Duration) {
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
				code, err := do()
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
	total := map[int]int{}
	nerr := 0
	for c := range lat {
		all = append(all, lat[c]...)
		for k, v := range statuses[c] {
			total[k] += v
		}
		nerr += errs[c]
	}
	return all, total, nerr, elapsed
}

// BenchmarkWarmInvoke prints the warm-path table. It measures fixed request
// counts (not b.N), so `-benchtime=1x` is the intended setting.
func BenchmarkWarmInvoke(b *testing.B) {
	r := newRig(b)
	defer r.shutdown()
	gw := r.gateway + "/2015-03-31/functions/echo/invocations"
	var rows []result
	for _, clients := range []int{1, 16, 64} {
		rows = append(rows, loadInterleaved(clients, perClient[clients], rounds,
			call{"floor: ReverseProxy → loopback echo", func() (int, error) { return r.post(r.floor) }},
			call{"instance direct (invokeapi)", r.direct},
			call{"gateway Invoke API → instance", func() (int, error) { return r.post(gw) }},
		)...)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "\nwarm sync invoke, aws-lambda-go echo, %d-byte payload; %d interleaved rounds per client count\n", len(payload), rounds)
	fmt.Fprintf(&out, "%-38s %7s %10s %10s %10s %8s %14s\n", "path", "clients", "p50", "p99", "req/s", "vs floor", "p50 − direct")
	floor, direct := map[int]time.Duration{}, map[int]time.Duration{}
	for _, row := range rows {
		if strings.HasPrefix(row.name, "floor") {
			floor[row.clients] = row.p50
		}
		added := "-"
		if strings.HasPrefix(row.name, "instance direct") {
			direct[row.clients] = row.p50
		} else if d, ok := direct[row.clients]; ok {
			added = (row.p50 - d).Round(time.Microsecond).String()
		}
		ratio := float64(row.p50) / float64(floor[row.clients])
		fmt.Fprintf(&out, "%-38s %7d %10s %10s %10.0f %7.2fx %14s\n", row.name, row.clients,
			row.p50.Round(time.Microsecond), row.p99.Round(time.Microsecond), row.rps, ratio, added)
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
