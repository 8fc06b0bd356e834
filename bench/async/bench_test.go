package asyncbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/bench/benchtest"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/specs"
)

const payload = `{"message":"hello from the async benchmark","n":42}`

// perClient is how many events each client sends per round.
var perClient = map[int]int{1: 700, 16: 85, 64: 27}

// rounds interleaves the publish paths of one client count, so background
// load on a shared machine falls on each of them alike.
const rounds = 3

const envs = 32

type row struct {
	name     string
	clients  int
	events   int
	p50, p99 time.Duration
	rate     float64
	errors   int
}

// path is one measured way to publish an event.
type path struct {
	name string
	call func() error
}

// loadInterleaved runs every path rounds times, round-robin, and pools
// each path's rounds into one row.
func loadInterleaved(clients, n int, paths ...path) []row {
	out := make([]row, len(paths))
	var lats [][]time.Duration
	var took []time.Duration
	for range paths {
		lats = append(lats, nil)
		took = append(took, 0)
	}
	for range rounds {
		for i, p := range paths {
			r, lat := loadOnce(p.name, clients, n, p.call)
			lats[i] = append(lats[i], lat...)
			took[i] += time.Duration(float64(len(lat)) / r.rate * float64(time.Second))
			out[i].errors += r.errors
		}
	}
	for i, p := range paths {
		all := lats[i]
		sort.Slice(all, func(x, y int) bool { return all[x] < all[y] })
		out[i].name, out[i].clients, out[i].events = p.name, clients, len(all)
		out[i].p50, out[i].p99 = all[len(all)/2], all[len(all)*99/100]
		out[i].rate = float64(len(all)) / took[i].Seconds()
	}
	return out
}

// load runs clients loops of n calls and measures them.
func load(name string, clients, n int, call func() error) row {
	r, _ := loadOnce(name, clients, n, call)
	return r
}

// loadOnce runs clients loops of n calls and measures them; it also
// returns every call's latency.
func loadOnce(name string, clients, n int, call func() error) (row, []time.Duration) {
	lat := make([][]time.Duration, clients)
	errs := make([]int, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				t0 := time.Now()
				if err := call(); err != nil {
					errs[c]++
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := row{name: name, clients: clients}
	for c := range lat {
		all = append(all, lat[c]...)
		r.errors += errs[c]
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r.events = len(all)
	r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	r.rate = float64(len(all)) / elapsed.Seconds()
	return r, all
}

// BenchmarkAsync prints the enqueue/drain table. It measures fixed event
// counts (not b.N), so `-benchtime=1x` is the intended setting.
func BenchmarkAsync(b *testing.B) {
	echo := benchtest.StartEcho(b, "echo", envs)
	fns := catalog.FromFile(&specs.File{Functions: []*specs.Function{
		{Name: "echo", Runtime: "provided.al2023", Timeout: "10s", MemoryMB: 128, EnvironmentsPerInstance: envs,
			Async: &specs.AsyncConfig{MaxRetries: 0, MaxEventAge: "6h"}},
	}})
	src := benchtest.Source{"echo": {{ID: "echo-1", Address: echo.Addr(), Function: "echo", Version: catalog.Latest, Group: discovery.GroupProvisioned}}}
	cfg := &config.Config{Dev: true, Listen: "127.0.0.1:0", ShutdownGrace: "10s",
		Queue: &queue.Config{DataDir: filepath.Join(b.TempDir(), "queue"), Workers: envs, FunctionShare: 1}}
	s, err := server.New(cfg, server.Deps{Catalog: benchtest.Catalog{Snapshot: catalog.NewSnapshot(fns)}, Source: src})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil { // listener and queue, no workers yet
		b.Fatal(err)
	}

	// Raw publish baseline: a stream shaped like the queue's, same server.
	nc, err := s.NATS().Embedded.Connect("bench-raw")
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"bench.raw.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	publisher := func(js jetstream.JetStream) func() error {
		return func() error {
			id := uuid.NewString()
			m := nats.NewMsg("bench.raw.echo." + id)
			m.Data = []byte(payload)
			m.Header.Set("Nimbus-Function", "echo")
			_, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
			return err
		}
	}
	raw := publisher(js)
	// The same publish from a TCP client on loopback, as a producer outside
	// the gateway process would do it.
	tcp, err := nats.Connect(s.Queue().ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer tcp.Close()
	tcpJS, err := jetstream.New(tcp)
	if err != nil {
		b.Fatal(err)
	}
	rawTCP := publisher(tcpJS)

	httpc := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
	invokeURL := "http://" + s.Addr() + "/2015-03-31/functions/echo/invocations"
	// invoker calls the Invoke API with invocation type typ and expects want.
	invoker := func(typ string, want int) func() error {
		return func() error {
			req, _ := http.NewRequest(http.MethodPost, invokeURL, strings.NewReader(payload))
			req.Header.Set("X-Amz-Invocation-Type", typ)
			resp, err := httpc.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	enqueue := invoker("Event", http.StatusAccepted)
	for i := 0; i < 50; i++ { // warm connections
		_ = raw()
		_ = rawTCP()
		_ = enqueue()
	}

	var rows []row
	total := 50
	for _, clients := range []int{1, 16, 64} {
		n := perClient[clients]
		rows = append(rows, loadInterleaved(clients, n,
			path{"raw JetStream publish (acked)", raw},
			path{"raw publish, TCP client", rawTCP},
			path{"enqueue: Invoke API Event → 202", enqueue})...)
		total += rounds * clients * n
	}

	// Drain: start the workers and time until every event finished.
	stats := func() float64 {
		mfs, _ := s.Metrics().Registry.Gather()
		sum := 0.0
		for _, mf := range mfs {
			if mf.GetName() == "nimbus_async_finished_total" {
				for _, m := range mf.GetMetric() {
					sum += m.GetCounter().GetValue()
				}
			}
		}
		return sum
	}
	start := time.Now()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	deadline := start.Add(5 * time.Minute)
	for stats() < float64(total) {
		if time.Now().After(deadline) {
			b.Fatalf("drained %v of %d events in 5 minutes", stats(), total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	drain := time.Since(start)
	info, err := js.Stream(ctx, queue.StreamName)
	if err != nil {
		b.Fatal(err)
	}
	if st, err := info.Info(ctx); err != nil || st.State.Msgs != 0 {
		b.Errorf("queue not empty after the drain: %+v %v", st, err)
	}
	// The drain's ceiling: the same function invoked synchronously through
	// the same gateway by as many clients as there are workers. A worker
	// does that call plus its queue bookkeeping, so the drain can at best
	// match this rate.
	syncInvoke := invoker("RequestResponse", http.StatusOK)
	for range 50 {
		_ = syncInvoke()
	}
	syncRow := load("sync invoke, same function", envs, total/envs, syncInvoke)
	if syncRow.errors > 0 {
		b.Errorf("sync invoke: %d errors", syncRow.errors)
	}

	var out bytes.Buffer
	fmt.Fprintf(&out, "\nasync invoke, %d-byte events, embedded JetStream (file store), aws-lambda-go echo\n", len(payload))
	fmt.Fprintf(&out, "%-34s %7s %7s %10s %10s %10s %8s %8s\n", "path", "clients", "events", "p50", "p99", "events/s", "vs raw", "vs tcp")
	base, baseTCP := map[int]float64{}, map[int]float64{}
	for _, r := range rows {
		switch {
		case strings.HasPrefix(r.name, "raw JetStream"):
			base[r.clients] = r.rate
		case strings.HasPrefix(r.name, "raw publish, TCP"):
			baseTCP[r.clients] = r.rate
		}
		vsTCP := "-"
		if t := baseTCP[r.clients]; t > 0 {
			vsTCP = fmt.Sprintf("%.2fx", t/r.rate)
		}
		fmt.Fprintf(&out, "%-34s %7d %7d %10s %10s %10.0f %7.2fx %8s\n", r.name, r.clients, r.events,
			r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.rate, base[r.clients]/r.rate, vsTCP)
		if r.errors > 0 {
			b.Errorf("%s c=%d: %d errors", r.name, r.clients, r.errors)
		}
	}
	drainRate := float64(total) / drain.Seconds()
	fmt.Fprintf(&out, "%-34s %7d %7d %10s %10s %10.0f\n", "drain: workers → router → echo", envs, total, "-", "-", drainRate)
	fmt.Fprintf(&out, "%-34s %7d %7d %10s %10s %10.0f   drain = %.2fx of it\n", syncRow.name, syncRow.clients, syncRow.events,
		syncRow.p50.Round(time.Microsecond), syncRow.p99.Round(time.Microsecond), syncRow.rate, drainRate/syncRow.rate)
	fmt.Fprintf(&out, "(vs raw / vs tcp = that publish rate / this rate, %d interleaved rounds; the enqueue goal is within 2x;\n", rounds)
	fmt.Fprintln(&out, " the sync row is the drain's ceiling: the same calls without the queue, as many at once as there are workers)")
	fmt.Fprint(os.Stdout, out.String())
	cancel()
	if err := <-served; err != nil {
		b.Errorf("gateway shutdown: %v", err)
	}
}
