package sourcesbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/bench/benchtest"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/specs"
)

// The settings every case uses (see doc.go).
const (
	batchSize = 100
	// latRecords records are produced one at a time, latEvery apart.
	latRecords = 200
	latEvery   = 5 * time.Millisecond
	// envs is the stamp instance's environments: more than the one batch
	// in flight an ordered source with one partition runs.
	envs = 4
	// caseTimeout bounds one run, so the table stays within minutes even
	// when a mapping is far slower than its baseline: a run that runs out
	// reports what got through by then, marked with '*'.
	caseTimeout = 45 * time.Second
	// rounds is how many times each throughput case runs, baseline and
	// mapping alternating; the table prints medians.
	rounds = 3
	// recordKeys is how many distinct record keys the throughput records
	// cycle through (Kafka record key, Redis field "key", NATS subject).
	recordKeys = 64
	// reconcileEvery is how soon the engine notices a mapping the
	// benchmark starts (it only moves the start, not the steady state).
	reconcileEvery = 20 * time.Millisecond
)

// broker is one event-source type under test: how to produce to it, how
// its own Go client consumes (the baseline) and the mapping that reads it.
type broker interface {
	// name is the source type as the table prints it.
	name() string
	// records is the throughput cases' N: enough that the baseline's run
	// lasts at least two seconds on this kind of machine.
	records() int
	// cases are the throughput cases (each with its own key).
	cases() []thrCase
	// produce appends records to key (topic, stream or subject), in order,
	// and returns once the broker has them.
	produce(ctx context.Context, key string, recs ...rec) error
	// consume runs the broker's own client in group on key until ctx ends,
	// fetching up to batchSize records at a time and acknowledging them;
	// got is called with each acknowledged batch and when it was received.
	// streaming asks for the client's lowest-latency way of consuming
	// (it only differs for NATS). It returns once the client is set up.
	consume(ctx context.Context, key, group string, streaming bool, got func(payloads [][]byte, received time.Time)) (wait func(), err error)
	// source is the mapping's event_source block for key (the engine's
	// defaults are filled later), with parallelization_factor factor.
	source(name, key string, factor int) *specs.EventSource
	// event is the function's event for a batch of key's records, first
	// being the first one's position, in the shape the mapping sends.
	event(key string, first int, batch []rec) ([]byte, error)
}

// rec is one record to produce: its key (see recordKeys; "" for none) and
// payload.
type rec struct {
	k string
	v []byte
}

// thrCase is one throughput case: key names the topic/stream/subject
// prefix, units how many ordered units (partitions, subjects) it has, and
// factor the mapping's parallelization_factor (0 unset).
type thrCase struct {
	key    string
	units  int
	factor int
	label  string
}

// keyOf is the i-th throughput record's key.
func keyOf(i int) string { return fmt.Sprintf("k%02d", i%recordKeys) }

// result is one measurement.
type result struct {
	n        int // records measured
	elapsed  time.Duration
	partial  bool // timed out before all n arrived
	p50, p99 time.Duration
	// Nimbus throughput only, from the function's stamps: when the first
	// batch arrived after the mapping started, and the pauses of at least
	// stallAt between consecutive invocations (count and sum).
	first       time.Duration
	stalls      int
	stalled     time.Duration
	invocations int
}

// stallAt is the pause between invocations the table counts as a stall:
// far above one invocation on this machine, far below PollWait.
const stallAt = 50 * time.Millisecond

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r result) rateCell() string {
	if r.n == 0 {
		return "-"
	}
	mark := ""
	if r.partial {
		mark = "*"
	}
	return fmt.Sprintf("%.0f%s", r.rate(), mark)
}

func (r result) latCell() string {
	if r.n == 0 {
		return "-"
	}
	mark := ""
	if r.partial {
		mark = "*"
	}
	return fmt.Sprintf("%.1f / %.1f ms%s", ms(r.p50), ms(r.p99), mark)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type row struct {
	source            string
	thr               []thrRow
	nimbusLat, rawLat result
	skipped           string
}

// thrRow is one throughput case's rounds.
type thrRow struct {
	c                  thrCase
	n                  int
	nimbus, raw, floor []result
}

// BenchmarkSources prints the event-source table. It measures fixed record
// counts (not b.N), so `-benchtime=1x` is the intended setting.
//
// NIMBUS_BENCH_SOURCES=kafka,nats,redis picks the sources to measure (all
// by default), e.g. to profile one.
func BenchmarkSources(b *testing.B) {
	r := newRig(b)
	var rows, skipped []row
	for _, name := range []string{"kafka", "nats", "redis"} {
		if !wanted(name) {
			continue
		}
		var br broker
		switch name {
		case "kafka":
			br = newKafka(b)
		case "nats":
			br = newNATS(b, r.srv)
		case "redis":
			rb, why := newRedis(b)
			if rb == nil {
				skipped = append(skipped, row{source: name, skipped: why})
				continue
			}
			br = rb
		}
		rows = append(rows, r.measure(b, br))
	}
	fmt.Fprint(os.Stdout, table(append(rows, skipped...)))
}

// wantedCase says whether NIMBUS_BENCH_CASES (case keys such as
// kafka-thr-p4) selects a throughput case.
func wantedCase(key string) bool { return selected("NIMBUS_BENCH_CASES", key) }

// wanted says whether NIMBUS_BENCH_SOURCES selects the source.
func wanted(name string) bool { return selected("NIMBUS_BENCH_SOURCES", name) }

// selected says whether the comma-separated list in the environment
// variable env names name; an empty or unset list selects everything.
func selected(env, name string) bool {
	list := os.Getenv(env)
	if list == "" {
		return true
	}
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

// measure runs a broker's cases: each throughput case rounds times, the
// baseline and the mapping alternating, then latency.
func (r *rig) measure(b *testing.B, br broker) row {
	ctx := context.Background()
	n := br.records()
	if v, err := strconv.Atoi(os.Getenv("NIMBUS_BENCH_RECORDS")); err == nil && v > 0 {
		n = v
	}
	out := row{source: br.name()}

	// Throughput: both read the same pre-produced records, each run in
	// its own group.
	for _, c := range br.cases() {
		if !wantedCase(c.key) {
			continue
		}
		batch := make([]rec, 0, 1000)
		for i := 0; i < n; i++ {
			batch = append(batch, rec{k: keyOf(i), v: payload(c.key, i, 0)})
			if len(batch) == cap(batch) || i == n-1 {
				if err := br.produce(ctx, c.key, batch...); err != nil {
					b.Fatalf("%s: producing: %v", br.name(), err)
				}
				batch = batch[:0]
			}
		}
		tr := thrRow{c: c, n: n}
		for round := 0; round < rounds; round++ {
			tr.raw = append(tr.raw, rawThroughput(b, br, c.key, fmt.Sprintf("raw-%s-%d", c.key, round), n))
			tr.nimbus = append(tr.nimbus, r.nimbusThroughput(b, br, c, fmt.Sprintf("%s-nimbus-%d", c.key, round), n))
			tr.floor = append(tr.floor, r.floorThroughput(b, br, c, n))
		}
		out.thr = append(out.thr, tr)
	}

	out.rawLat = rawLatency(b, br, br.name()+"-lat-raw")
	out.nimbusLat = r.nimbusLatency(b, br, br.name()+"-lat-nimbus")
	return out
}

// payload is a record: its case and index, and when it was produced
// (unix nanos; 0 for pre-produced records).
func payload(prefix string, i int, produced int64) []byte {
	return fmt.Appendf(nil, `{"id":"%s/%05d","ns":%d}`, prefix, i, produced)
}

// parsed is a payload's fields: its case (the prefix of the id), its
// index within the case and its produce time.
type parsed struct {
	Case []byte
	I    int
	NS   int64
}

// parse reads a payload as payload writes it. It cuts the fields out
// instead of decoding JSON: every record of both the baseline and the
// mapping is parsed on the shared two cores, and json.Unmarshal was the
// benchmark's own largest cost while the mapping ran. Anything else (the
// stamp function's other lines) is not a payload.
func parse(p []byte) (parsed, bool) {
	var v parsed
	rest, ok := bytes.CutPrefix(p, []byte(`{"id":"`))
	if !ok {
		return v, false
	}
	id, rest, ok := bytes.Cut(rest, []byte(`","ns":`))
	if !ok {
		return v, false
	}
	slash := bytes.LastIndexByte(id, '/')
	if slash <= 0 {
		return v, false
	}
	i, err := strconv.Atoi(string(id[slash+1:]))
	if err != nil || i < 0 {
		return v, false
	}
	ns, ok := bytes.CutSuffix(rest, []byte("}"))
	if !ok {
		return v, false
	}
	n, err := strconv.ParseInt(string(ns), 10, 64)
	if err != nil {
		return v, false
	}
	v.Case, v.I, v.NS = id[:slash], i, n
	return v, true
}

// tally counts distinct records per case as a consumer sees them.
//
// It is on the hot path of both the baseline and the mapping (every
// record passes through add), so it keeps each case's records in slices
// indexed by the record's number rather than in maps keyed by id: string
// maps of half a million ids made hashing and the GC's scan of them the
// benchmark's own largest cost, taken from the same two cores the
// measured consumers run on.
type tally struct {
	mu      sync.Mutex
	cases   map[string]*caseTally
	changed chan struct{}
}

// caseTally is one case's records: seen[i] is when record i was first
// received (unix nanos, 0 not yet) and produced[i] its produce time.
type caseTally struct {
	seen, produced []int64
	count          int
}

func newTally() *tally {
	return &tally{cases: map[string]*caseTally{}, changed: make(chan struct{}, 1)}
}

func (t *tally) add(p []byte, at int64) {
	v, ok := parse(p)
	if !ok {
		return
	}
	t.mu.Lock()
	c := t.cases[string(v.Case)]
	if c == nil {
		c = &caseTally{}
		t.cases[string(v.Case)] = c
	}
	if v.I >= len(c.seen) {
		grow := max(v.I+1, 2*len(c.seen))
		c.seen = append(c.seen, make([]int64, grow-len(c.seen))...)
		c.produced = append(c.produced, make([]int64, grow-len(c.produced))...)
	}
	if c.seen[v.I] == 0 {
		c.seen[v.I] = at
		c.produced[v.I] = v.NS
		c.count++
	}
	t.mu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// each calls f with the receive and produce times of every record of
// prefix seen so far, under the lock.
func (t *tally) each(prefix string, f func(at, produced int64)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cases[prefix]
	if c == nil {
		return
	}
	for i, at := range c.seen {
		if at != 0 {
			f(at, c.produced[i])
		}
	}
}

func (t *tally) counted(prefix string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.cases[prefix]; c != nil {
		return c.count
	}
	return 0
}

// waitFor waits until prefix has n records or the deadline passes; poll
// (may be nil) is called before each check. It returns the count.
func (t *tally) waitFor(prefix string, n int, deadline time.Time, poll func()) int {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if poll != nil {
			poll()
		}
		got := t.counted(prefix)
		if got >= n || time.Now().After(deadline) {
			return got
		}
		select {
		case <-t.changed:
		case <-tick.C:
		}
	}
}

// latencies of prefix's records: received − produced, sorted.
func (t *tally) latencies(prefix string) []time.Duration {
	var out []time.Duration
	t.each(prefix, func(at, produced int64) { out = append(out, time.Duration(at-produced)) })
	slices.Sort(out)
	return out
}

// pauses reads the invocations of prefix off the receive times (records
// of one invocation share its time): how long after start the first came,
// how many there were, and the gaps of at least stallAt between them.
func (t *tally) pauses(prefix string, start time.Time) (first time.Duration, invocations, stalls int, stalled time.Duration) {
	var sorted []int64
	t.each(prefix, func(at, _ int64) { sorted = append(sorted, at) })
	if len(sorted) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for i := 1; i < len(sorted); i++ {
		if gap := time.Duration(sorted[i] - sorted[i-1]); gap >= stallAt {
			stalls++
			stalled += gap
		}
	}
	return time.Unix(0, sorted[0]).Sub(start), len(sorted), stalls, stalled
}

// lastSeen is the latest receive time among prefix's records.
func (t *tally) lastSeen(prefix string) int64 {
	var last int64
	t.each(prefix, func(at, _ int64) { last = max(last, at) })
	return last
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	return lat[len(lat)/2], lat[min(len(lat)*99/100, len(lat)-1)]
}

// rawThroughput times the broker's own client consuming n records of key
// in a new group.
func rawThroughput(b *testing.B, br broker, key, group string, n int) result {
	t := newTally()
	ctx, cancel := context.WithCancel(context.Background())
	var done time.Time
	var once sync.Once
	start := time.Now()
	wait, err := br.consume(ctx, key, group, false, func(ps [][]byte, at time.Time) {
		for _, p := range ps {
			t.add(p, at.UnixNano())
		}
		if t.counted(key) >= n {
			once.Do(func() { done = time.Now() })
		}
	})
	if err != nil {
		cancel()
		b.Fatalf("%s baseline consumer: %v", br.name(), err)
	}
	got := t.waitFor(key, n, start.Add(caseTimeout), nil)
	cancel()
	wait()
	if got < n {
		return result{n: got, elapsed: time.Unix(0, t.lastSeen(key)).Sub(start), partial: true}
	}
	return result{n: n, elapsed: done.Sub(start)}
}

// rawLatency measures the broker's own client's produce → receive time.
func rawLatency(b *testing.B, br broker, key string) result {
	t := newTally()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait, err := br.consume(ctx, key, "raw-"+key, true, func(ps [][]byte, at time.Time) {
		for _, p := range ps {
			t.add(p, at.UnixNano())
		}
	})
	if err != nil {
		b.Fatalf("%s baseline consumer: %v", br.name(), err)
	}
	defer func() { cancel(); wait() }()
	return paced(b, br, key, t, nil)
}

// paced warms the consumer up (produces until one record arrives), then
// produces latRecords records latEvery apart, each carrying its produce
// time, and reads the latencies off t once all arrived.
func paced(b *testing.B, br broker, key string, t *tally, poll func()) result {
	ctx := context.Background()
	warm := key + "-warm"
	deadline := time.Now().Add(caseTimeout)
	for i := 0; t.counted(warm) == 0; i++ {
		if time.Now().After(deadline) {
			b.Fatalf("%s: the consumer of %s never received a record", br.name(), key)
		}
		if err := br.produce(ctx, key, rec{v: payload(warm, i, time.Now().UnixNano())}); err != nil {
			b.Fatalf("%s: producing: %v", br.name(), err)
		}
		t.waitFor(warm, 1, time.Now().Add(500*time.Millisecond), poll)
	}
	tick := time.NewTicker(latEvery)
	for i := 0; i < latRecords; i++ {
		<-tick.C
		if err := br.produce(ctx, key, rec{v: payload(key, i, time.Now().UnixNano())}); err != nil {
			b.Fatalf("%s: producing: %v", br.name(), err)
		}
	}
	tick.Stop()
	got := t.waitFor(key, latRecords, time.Now().Add(caseTimeout), poll)
	p50, p99 := percentiles(t.latencies(key))
	return result{n: got, partial: got < latRecords, p50: p50, p99: p99}
}

// rig is a dev gateway whose event-source engine runs the mappings the
// benchmark starts, invoking the stamp function in a real instance.
type rig struct {
	srv   *server.Server
	list  *lister
	stamp *stampLog
}

func newRig(b *testing.B) *rig {
	logPath := filepath.Join(b.TempDir(), "stamp.log")
	in := benchtest.Start(b, benchtest.Function{Name: "stamp", Code: "stamp", Envs: envs,
		Env: map[string]string{"STAMP_LOG": testfn.LogURL(b, logPath)}})
	fns := catalog.FromFile(&specs.File{Functions: []*specs.Function{
		{Name: "stamp", Runtime: "provided.al2023", Timeout: "10s", MemoryMB: 128, EnvironmentsPerInstance: envs},
	}})
	src := benchtest.Source{"stamp": {{ID: "stamp-1", Address: in.Addr(), Function: "stamp", Version: catalog.Latest,
		Group: discovery.GroupProvisioned}}}
	l := &lister{}
	s, err := server.New(&config.Config{Dev: true, Listen: "127.0.0.1:0", ShutdownGrace: "10s"}, server.Deps{
		Catalog: benchtest.Catalog{Snapshot: catalog.NewSnapshot(fns)}, Source: src, Mappings: l,
		SourceOptions: sources.Options{ReconcileInterval: reconcileEvery},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			b.Errorf("gateway shutdown: %v", err)
		}
	})
	return &rig{srv: s, list: l, stamp: &stampLog{path: logPath, t: newTally()}}
}

// run starts the mapping of es (the only one running) and returns when it
// started and a function that stops it and waits until it is gone.
func (r *rig) run(b *testing.B, es *specs.EventSource) (time.Time, func()) {
	if err := specs.CheckEventSource("stamp", es); err != nil {
		b.Fatalf("mapping %s: %v", es.Name, err)
	}
	mp := sources.Mapping{UUID: sources.SpecUUID("stamp", es.Name), Name: es.Name, Function: "stamp",
		Spec: es, Origin: sources.OriginSpec}
	start := time.Now()
	r.list.set(mp)
	return start, func() {
		r.list.set()
		gatewaytest.Eventually(b, time.Minute, func() bool { return r.status(mp.UUID) == nil },
			"mapping %s to stop after it was removed", es.Name)
	}
}

func (r *rig) status(uuid string) *sources.Status {
	for _, st := range r.srv.Sources().Statuses() {
		if st.UUID == uuid {
			return &st
		}
	}
	return nil
}

// describe is a mapping's state for a timeout message.
func (r *rig) describe(es *specs.EventSource) string {
	st := r.status(sources.SpecUUID("stamp", es.Name))
	if st == nil {
		return "not running"
	}
	return fmt.Sprintf("state %s, last result %q, in %d, done %d, batches %d, buffered %d, in flight %d",
		st.State, st.LastProcessingResult, st.RecordsIn, st.RecordsDone, st.Batches, st.Buffered, st.InFlight)
}

// nimbusThroughput times a mapping (named name, so in a group of its own)
// from its start until the function has seen all n records of c.
func (r *rig) nimbusThroughput(b *testing.B, br broker, c thrCase, name string, n int) result {
	key := c.key
	es := br.source(name, key, c.factor)
	// A fresh tally: every round reads the same records.
	r.stamp.read(b)()
	r.stamp.t = newTally()
	start, stop := r.run(b, es)
	defer stop()
	got := r.stamp.t.waitFor(key, n, start.Add(caseTimeout), r.stamp.read(b))
	res := result{n: got, elapsed: time.Unix(0, r.stamp.t.lastSeen(key)).Sub(start), partial: got < n}
	res.first, res.invocations, res.stalls, res.stalled = r.stamp.t.pauses(key, start)
	if res.partial {
		b.Logf("%s: the function saw %d of %d records in %s (%s)", br.name(), got, n, caseTimeout, r.describe(es))
	}
	return res
}

// inFlight is how many batches a mapping of c runs at once: one per
// ordered unit (partition or subject), times the lanes of
// parallelization_factor, at most one per environment of the function.
func inFlight(c thrCase) int { return min(c.units*max(c.factor, 1), envs) }

// floorThroughput is the invoke floor of a throughput case: the same n
// records, in batches of batchSize built in the shape the mapping sends,
// invoked with the router the mapping uses, inFlight(c) at once, with no
// broker and no mapping. Events are built before the clock starts. The
// records carry the case "<key>-floor", so the stamp tally tells them apart.
func (r *rig) floorThroughput(b *testing.B, br broker, c thrCase, n int) result {
	key := c.key + "-floor"
	var evs [][]byte
	for first := 0; first < n; first += batchSize {
		batch := make([]rec, 0, batchSize)
		for i := first; i < min(first+batchSize, n); i++ {
			batch = append(batch, rec{k: keyOf(i), v: payload(key, i, 0)})
		}
		ev, err := br.event(c.key, first, batch)
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, ev)
	}
	r.stamp.read(b)()
	r.stamp.t = newTally()
	work := make(chan []byte, len(evs))
	for _, ev := range evs {
		work <- ev
	}
	close(work)
	t := router.Target{Function: "stamp", Version: catalog.Latest, EnvironmentsPerInstance: envs}
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	for range inFlight(c) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range work {
				resp, err := r.srv.Router().Invoke(ctx, t, &invokeapi.Request{Payload: ev, ContentType: "application/json",
					RequestID: uuid.NewString()})
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.FunctionError != "" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %s", resp.FunctionError, body))
				}
			}
		}()
	}
	got := r.stamp.t.waitFor(key, n, start.Add(caseTimeout), r.stamp.read(b))
	// The function logs a batch before its answer is back: let the last
	// answers arrive (ctx still bounds a run that timed out).
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Logf("%s floor: %d invocations failed, the first with %v", br.name(), f, firstErr.Load())
	}
	return result{n: got, elapsed: time.Unix(0, r.stamp.t.lastSeen(key)).Sub(start), partial: got < n}
}

// nimbusLatency measures produce → function time through a mapping.
func (r *rig) nimbusLatency(b *testing.B, br broker, key string) result {
	es := br.source(key, key, 0)
	_, stop := r.run(b, es)
	defer stop()
	res := paced(b, br, key, r.stamp.t, r.stamp.read(b))
	if res.partial {
		b.Logf("%s: the function saw %d of %d paced records (%s)", br.name(), res.n, latRecords, r.describe(es))
	}
	return res
}

// lister holds the mappings the engine should run.
type lister struct {
	mu   sync.Mutex
	list []sources.Mapping
}

func (l *lister) Mappings(context.Context) ([]sources.Mapping, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sources.Mapping(nil), l.list...), nil
}

func (l *lister) set(ms ...sources.Mapping) {
	l.mu.Lock()
	l.list = ms
	l.mu.Unlock()
}

// stampLog reads what the stamp function logged ("<payload>\t<unix
// nanos>\n" per record) into a tally, incrementally.
type stampLog struct {
	path string
	off  int64
	t    *tally
}

// read returns a poll function for tally.waitFor that takes in the lines
// written since the last call.
func (l *stampLog) read(b *testing.B) func() {
	return func() {
		f, err := os.Open(l.path)
		if os.IsNotExist(err) {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Seek(l.off, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(f)
		if err != nil {
			b.Fatal(err)
		}
		end := bytes.LastIndexByte(data, '\n')
		if end < 0 {
			return
		}
		l.off += int64(end + 1)
		for _, line := range bytes.Split(data[:end], []byte{'\n'}) {
			p, ns, ok := bytes.Cut(line, []byte{'\t'})
			at, err := strconv.ParseInt(string(ns), 10, 64)
			if !ok || err != nil {
				b.Fatalf("stamp log line %q", line)
			}
			l.t.add(p, at)
		}
	}
}

// redisMissing says why Redis is skipped ("" when redis-server is there).
func redisMissing() string {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return fmt.Sprintf("skipped: redis-server not on PATH (%v); install the Debian package redis-server", err)
	}
	return ""
}

// median of the rounds by rate (a partial run counts with its rate).
func median(rs []result) result {
	sorted := append([]result(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].rate() < sorted[j].rate() })
	return sorted[len(sorted)/2]
}

func table(rows []row) string {
	var out bytes.Buffer
	fmt.Fprintf(&out, "\nevent-source mappings → aws-lambda-go stamp function; batch_size %d, maximum_batching_window 0s, TRIM_HORIZON\n", batchSize)
	fmt.Fprintf(&out, "throughput: N records (keys cycling over %d) pre-produced, mapping start → function saw all N; baseline: the broker's Go client in its own group, batches of %d, acked\n", recordKeys, batchSize)
	fmt.Fprintf(&out, "%d rounds per case, baseline and mapping alternating, each in a new group; medians, and each round's ratio\n", rounds)
	fmt.Fprintf(&out, "floor: the same records in batches of %d, in the mapping's event shape, invoked through the gateway's router as many at once as the mapping runs; no broker, no mapping\n", batchSize)
	fmt.Fprintf(&out, "%-7s %-34s %9s %10s %10s %10s %6s %8s  %s\n", "source", "case", "N", "nimbus/s", "floor/s", "base/s", "ratio", "of floor", "round ratios (nimbus/base)")
	for _, r := range rows {
		if r.skipped != "" {
			fmt.Fprintf(&out, "%-7s %s\n", r.source, r.skipped)
			continue
		}
		for _, t := range r.thr {
			nm, rm, fm := median(t.nimbus), median(t.raw), median(t.floor)
			ratio, ofFloor := "-", "-"
			if rm.n > 0 && nm.n > 0 {
				ratio = fmt.Sprintf("%.2fx", nm.rate()/rm.rate())
			}
			if fm.n > 0 && nm.n > 0 {
				ofFloor = fmt.Sprintf("%.2fx", nm.rate()/fm.rate())
			}
			var per []string
			for i := range t.nimbus {
				if t.raw[i].n > 0 && t.nimbus[i].n > 0 {
					per = append(per, fmt.Sprintf("%.2f", t.nimbus[i].rate()/t.raw[i].rate()))
				}
			}
			fmt.Fprintf(&out, "%-7s %-34s %9d %10s %10s %10s %6s %8s  %s\n", r.source, t.c.label, t.n, nm.rateCell(), fm.rateCell(), rm.rateCell(), ratio,
				ofFloor, strings.Join(per, " "))
			outside := "-"
			if active := nm.elapsed - nm.stalled; active > 0 && nm.n > 0 {
				outside = fmt.Sprintf("%.0f", float64(nm.n)/active.Seconds())
			}
			fmt.Fprintf(&out, "%-7s %-34s median run: baseline %s; first batch %s after the start; %d distinct invocation times, %d pauses >= %s, %s in all; %s records/s outside them\n",
				r.source, "", rm.elapsed.Round(10*time.Millisecond), nm.first.Round(time.Millisecond), nm.invocations, nm.stalls, stallAt, nm.stalled.Round(time.Millisecond), outside)
		}
		fmt.Fprintf(&out, "%-7s %-34s %s (nimbus) %s (baseline)\n", r.source, fmt.Sprintf("latency p50 / p99 (%d paced)", latRecords), r.nimbusLat.latCell(), r.rawLat.latCell())
	}
	fmt.Fprintln(&out, "(ratio = nimbus / baseline records/s, goal >= 0.5x; of floor = nimbus / floor, what the mapping keeps of the invocations alone; latency goal p50 < 5 ms; * = timed out, partial)")
	return out.String()
}

// parse reads back what payload writes, and nothing else.
func TestParseReadsPayloads(t *testing.T) {
	v, ok := parse(payload("kafka-thr", 42, 1700000000123456789))
	if !ok || string(v.Case) != "kafka-thr" || v.I != 42 || v.NS != 1700000000123456789 {
		t.Fatalf("parse(payload) = %+v, %v", v, ok)
	}
	for _, p := range []string{``, `{"id":"","ns":1}`, `{"id":"a/1","ns":x}`, `{"ns":1,"id":"a/1"}`, `{"id":"a/1","ns":1`, `{"id":"/1","ns":1}`, `{"id":"a/x","ns":1}`, `{"id":"a/-1","ns":1}`} {
		if v, ok := parse([]byte(p)); ok {
			t.Errorf("parse(%q) = %+v, want not a payload", p, v)
		}
	}
}
