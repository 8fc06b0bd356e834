package scalebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/cluster"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/nomad"
	"github.com/nimbus-fn/nimbus/gateway/router"
)

// simInstance is one instance: a loopback server with one environment.
type simInstance struct {
	id, fn, addr string
	srv          *http.Server
	busy         atomic.Bool
	work         time.Duration
}

func startInstance(tb testing.TB, id, fn string, work time.Duration) *simInstance {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	in := &simInstance{id: id, fn: fn, addr: ln.Addr().String(), work: work}
	mux := http.NewServeMux()
	mux.HandleFunc(invokeapi.PathInvoke, func(w http.ResponseWriter, r *http.Request) {
		if !in.busy.CompareAndSwap(false, true) {
			invokeapi.WriteError(w, invokeapi.CodeNoIdleEnvironment, "busy")
			return
		}
		defer in.busy.Store(false)
		body, _ := io.ReadAll(r.Body)
		if in.work > 0 {
			t := time.NewTimer(in.work)
			<-t.C
		}
		w.Header().Set(invokeapi.HeaderBilledMs, "1")
		_, _ = w.Write(body)
	})
	mux.HandleFunc(invokeapi.PathStatus, func(w http.ResponseWriter, r *http.Request) {
		idle, busy := 1, 0
		if in.busy.Load() {
			idle, busy = 0, 1
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"function":%q,"version":"$LATEST","max":1,"started":1,"idle":%d,"busy":%d,"initialization_type":"on-demand"}`, fn, idle, busy)
	})
	mux.HandleFunc(invokeapi.PathHealth, func(w http.ResponseWriter, r *http.Request) {})
	in.srv = &http.Server{Handler: mux}
	go func() { _ = in.srv.Serve(ln) }()
	return in
}

// simNomad is the shared simulated Nomad: per function, the on-demand
// count with its modify index and scaling events, and the instances
// started for it after a scheduling delay.
type simNomad struct {
	tb       testing.TB
	delayMin time.Duration
	delayMax time.Duration
	work     time.Duration

	reads, writes atomic.Int64

	mu        sync.Mutex
	jobs      map[string]*simJob
	index     uint64
	instances int
	peak      int
}

type simJob struct {
	count     int
	index     uint64
	events    []nomadapi.ScalingEvent
	running   []*simInstance
	scheduled int // instances placed and still starting
}

func (n *simNomad) job(fn string) *simJob {
	j := n.jobs[fn]
	if j == nil {
		n.index++
		j = &simJob{index: n.index}
		n.jobs[fn] = j
	}
	return j
}

// capacity is one gateway's view of the simulated Nomad (its scale
// events carry its id), the cluster.Capacity the real Scaler drives.
type capacity struct {
	n  *simNomad
	gw string
}

func (c capacity) Count(_ context.Context, fn, _ string) (nomad.Count, error) {
	c.n.reads.Add(1)
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	j := c.n.job(fn)
	return nomad.Count{Count: j.count, JobModifyIndex: j.index}, nil
}

func (c capacity) SetIf(_ context.Context, fn, _ string, want int, at nomad.Count) error {
	c.n.writes.Add(1)
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	j := c.n.job(fn)
	if j.index != at.JobModifyIndex {
		return nomad.ErrConflict
	}
	c.n.index++
	j.index, j.count = c.n.index, want
	w := int64(want)
	j.events = append(j.events, nomadapi.ScalingEvent{Count: &w, Time: uint64(time.Now().UnixNano()),
		Meta: map[string]any{nomad.ScaleMetaGateway: c.gw}})
	if len(j.events) > 20 {
		j.events = j.events[len(j.events)-20:]
	}
	c.n.reconcileLocked(fn, j)
	return nil
}

func (c capacity) Status(_ context.Context, fn, _ string) (*nomadapi.TaskGroupScaleStatus, error) {
	c.n.reads.Add(1)
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	j := c.n.job(fn)
	return &nomadapi.TaskGroupScaleStatus{Desired: j.count, Events: slices.Clone(j.events)}, nil
}

// reconcileLocked places instances up to the count (each starts after a
// random scheduling delay) and stops the ones above it.
func (n *simNomad) reconcileLocked(fn string, j *simJob) {
	for len(j.running)+j.scheduled < j.count {
		j.scheduled++
		n.instances++
		id := fmt.Sprintf("%s-%d", fn, n.instances)
		delay := n.delayMin + time.Duration(rand.Int64N(int64(n.delayMax-n.delayMin)+1))
		time.AfterFunc(delay, func() {
			in := startInstance(n.tb, id, fn, n.work)
			n.mu.Lock()
			j.scheduled--
			j.running = append(j.running, in)
			n.peak = max(n.peak, n.runningLocked())
			extra := n.trimLocked(j)
			n.mu.Unlock()
			stopAll(extra)
		})
	}
	extra := n.trimLocked(j)
	go stopAll(extra)
}

func (n *simNomad) trimLocked(j *simJob) []*simInstance {
	var extra []*simInstance
	for len(j.running) > j.count {
		extra = append(extra, j.running[len(j.running)-1])
		j.running = j.running[:len(j.running)-1]
	}
	return extra
}

func (n *simNomad) runningLocked() int {
	total := 0
	for _, j := range n.jobs {
		total += len(j.running)
	}
	return total
}

func stopAll(ins []*simInstance) {
	for _, in := range ins {
		_ = in.srv.Close()
	}
}

// Instances is the discovery view every gateway shares (as Consul's).
func (n *simNomad) Instances(_ context.Context, fn, version string) ([]discovery.Instance, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	j := n.jobs[fn]
	if j == nil {
		return nil, nil
	}
	out := make([]discovery.Instance, 0, len(j.running))
	for _, in := range j.running {
		out = append(out, discovery.Instance{ID: in.id, Address: in.addr, Function: fn, Version: version, Group: discovery.GroupOnDemand})
	}
	return out, nil
}

func (n *simNomad) closeAll() {
	n.mu.Lock()
	var all []*simInstance
	for _, j := range n.jobs {
		all = append(all, j.running...)
		j.running = nil
	}
	n.mu.Unlock()
	stopAll(all)
}

func envInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		tb.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkScaleSimulation: SCALESIM_FUNCTIONS (default 1000) functions,
// SCALESIM_GATEWAYS (10) gateways, SCALESIM_SECONDS (15) of bursty
// traffic from SCALESIM_CLIENTS (64) clients.
func BenchmarkScaleSimulation(b *testing.B) {
	functions := envInt(b, "SCALESIM_FUNCTIONS", 1000)
	gateways := envInt(b, "SCALESIM_GATEWAYS", 10)
	seconds := envInt(b, "SCALESIM_SECONDS", 15)
	clients := envInt(b, "SCALESIM_CLIENTS", 64)
	work := 2 * time.Millisecond
	sim := &simNomad{tb: b, delayMin: 300 * time.Millisecond, delayMax: 900 * time.Millisecond, work: work, jobs: map[string]*simJob{}}
	defer sim.closeAll()

	names := make([]string, functions)
	targets := make([]router.Target, functions)
	for i := range names {
		names[i] = fmt.Sprintf("fn-%04d", i)
		targets[i] = router.Target{Function: names[i], Version: "$LATEST", EnvironmentsPerInstance: 1}
	}
	before := heap()
	routers := make([]*router.Router, gateways)
	for g := range routers {
		sc, err := cluster.NewScaler(capacity{n: sim, gw: fmt.Sprintf("gw-%d", g)}, cluster.ScalerConfig{GatewayID: fmt.Sprintf("gw-%d", g)}, nil)
		if err != nil {
			b.Fatal(err)
		}
		r := router.New(router.Config{AccountConcurrency: 100000, ColdStartWait: time.Minute, IdleScaleIn: 3 * time.Second,
			WaitQueueSize: 10000}, sim, sc, metrics.New(), nil)
		r.Track(targets)
		routers[g] = r
	}
	tracked := heap() - before
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, r := range routers {
		go r.Run(ctx)
		defer r.Close()
	}

	// Traffic: 80% of calls go to the hottest 5% of functions; the rest
	// pick any function, and every 200 ms a burst of 16 concurrent calls
	// hits one random function (scale from zero, spill across gateways).
	hot := max(1, functions/20)
	pick := func() string {
		if rand.IntN(10) < 8 {
			return names[rand.IntN(hot)]
		}
		return names[rand.IntN(functions)]
	}
	var (
		calls, failures atomic.Int64
		latMu           sync.Mutex
		lat             []time.Duration
	)
	call := func(fn string, g int) {
		t0 := time.Now()
		resp, err := routers[g].Invoke(ctx, router.Target{Function: fn, Version: "$LATEST", EnvironmentsPerInstance: 1},
			&invokeapi.Request{Payload: []byte(`{}`)})
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				failures.Add(1)
			}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		calls.Add(1)
		latMu.Lock()
		lat = append(lat, d)
		latMu.Unlock()
	}
	writes0, reads0 := sim.writes.Load(), sim.reads.Load()
	cpu0, start := cpuTime(), time.Now()
	deadline := start.Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				call(pick(), c%gateways)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for now := range tick.C {
			if now.After(deadline) {
				return
			}
			fn := names[hot+rand.IntN(functions-hot)]
			for i := range 16 {
				wg.Add(1)
				go func() { defer wg.Done(); call(fn, i%gateways) }()
			}
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	cpuRouted := cpuTime() - cpu0
	underLoad := heap()
	writes, reads := sim.writes.Load()-writes0, sim.reads.Load()-reads0

	// Baseline: the same clients calling instances straight (no router,
	// no scaling), for a third of the time, in the same process.
	direct := make([]*simInstance, clients)
	for i := range direct {
		direct[i] = startInstance(b, fmt.Sprintf("direct-%d", i), "direct", work)
	}
	defer stopAll(direct)
	client := &invokeapi.Client{}
	var dcalls atomic.Int64
	cpu1 := cpuTime()
	dEnd := time.Now().Add(time.Duration(seconds) * time.Second / 3)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(dEnd) {
				resp, err := client.Invoke(ctx, direct[c].addr, &invokeapi.Request{Payload: []byte(`{}`)})
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				dcalls.Add(1)
			}
		}()
	}
	wg.Wait()
	cpuDirect := cpuTime() - cpu1

	slices.Sort(lat)
	q := func(p int) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, p*len(lat)/100)]
	}
	sim.mu.Lock()
	placed, peak := sim.instances, sim.peak
	sim.mu.Unlock()
	perRouted := cpuRouted / time.Duration(max(1, calls.Load()))
	perDirect := cpuDirect / time.Duration(max(1, dcalls.Load()))
	fmt.Fprintf(os.Stdout, "\nscale simulation: %d functions × %d gateways, %d clients + a 16-call burst every 200 ms, %s, scheduling delay %s–%s, function %s\n",
		functions, gateways, clients, elapsed.Round(time.Second), sim.delayMin, sim.delayMax, work)
	fmt.Fprintf(os.Stdout, "calls %d (%.0f/s), failures %d, p50 %s, p99 %s; instances placed %d, peak running %d\n",
		calls.Load(), float64(calls.Load())/elapsed.Seconds(), failures.Load(), q(50).Round(time.Microsecond), q(99).Round(time.Millisecond), placed, peak)
	fmt.Fprintf(os.Stdout, "Nomad scale API: %.1f writes/s, %.1f reads/s (all gateways together)\n",
		float64(writes)/elapsed.Seconds(), float64(reads)/elapsed.Seconds())
	fmt.Fprintf(os.Stdout, "heap: %.1f MB for %d routers tracking %d functions (%.0f B per function per gateway); %.1f MB under traffic (instances included)\n",
		float64(tracked)/(1<<20), gateways, functions, float64(tracked)/float64(gateways*functions), float64(underLoad)/(1<<20))
	fmt.Fprintf(os.Stdout, "CPU per call: %s through the routers (instances, clients and scaling included) vs %s calling an instance directly (baseline, same run): %.2fx\n",
		perRouted.Round(time.Microsecond), perDirect.Round(time.Microsecond), float64(perRouted)/float64(max(1, perDirect)))
	if calls.Load() == 0 {
		b.Fatal("no call succeeded")
	}
}
