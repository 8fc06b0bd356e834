package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/specs"
)

const mappingUUID = "0f8e3c52-9d1a-4c6b-8e2f-5a7b9c1d3e4f"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// cluster is an embedded JetStream server; each member gets its own
// connection, so closing it is that gateway dying.
type cluster struct {
	t   *testing.T
	srv *natsembed.Server
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return &cluster{t: t, srv: srv}
}

func (c *cluster) conn(name string) *nats.Conn {
	c.t.Helper()
	nc, err := c.srv.Connect(name)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

func (c *cluster) member(name string, es *specs.EventSource, now func() time.Time, opts Options) (*Source, *nats.Conn) {
	c.t.Helper()
	nc := c.conn(name)
	src, err := OpenWith(context.Background(), sources.Config{UUID: mappingUUID, Function: "fn", Spec: es, Member: name,
		FunctionTimeout: 3 * time.Second, NATS: nc, Region: "eu-west-1", AccountID: "123456789012", Now: now}, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = src.Close() })
	return src, nc
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stored reads the mapping's KV state.
func stored(t *testing.T, nc *nats.Conn) state {
	t.Helper()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctxT(t), DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctxT(t), mappingUUID)
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func pollOne(t *testing.T, s *Source) *sources.Record {
	t.Helper()
	recs, err := s.Poll(ctxT(t), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	switch len(recs) {
	case 0:
		return nil
	case 1:
		return recs[0]
	}
	t.Fatalf("Poll returned %d records", len(recs))
	return nil
}

// firing runs members' poll loops and counts what each fires.
type firing struct {
	mu     sync.Mutex
	count  map[string]int
	by     map[string][]string
	polls  map[string]int
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func fire(t *testing.T, members map[string]*Source) *firing {
	ctx, cancel := context.WithCancel(context.Background())
	f := &firing{count: map[string]int{}, by: map[string][]string{}, polls: map[string]int{}, cancel: cancel}
	for name, src := range members {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for ctx.Err() == nil {
				recs, err := src.Poll(ctx, 1, 20*time.Millisecond)
				if err != nil && ctx.Err() == nil {
					t.Errorf("%s: Poll: %v", name, err)
					return
				}
				for _, r := range recs {
					f.mu.Lock()
					f.count[r.ID]++
					f.by[r.ID] = append(f.by[r.ID], name)
					f.mu.Unlock()
					if err := src.Done(context.Background(), []*sources.Record{r}); err != nil {
						t.Errorf("%s: Done: %v", name, err)
					}
				}
				f.mu.Lock()
				f.polls[name]++
				f.mu.Unlock()
			}
		}()
	}
	t.Cleanup(f.stop)
	return f
}

func (f *firing) stop() { f.cancel(); f.wg.Wait() }

func (f *firing) snapshot() (map[string]int, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps(f.count), maps(f.polls)
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Three members poll a per-second schedule while the clock steps through
// five ticks: each tick fires exactly once in total, none is skipped, and
// after a tick fired every member polls again without firing it twice.
func TestThreeMembersFireEveryTickOnce(t *testing.T) {
	c := newCluster(t)
	t0 := time.Date(2024, 3, 15, 10, 0, 0, 500e6, time.UTC)
	clk := newClock(t0)
	es := &specs.EventSource{Name: "tick", Type: "schedule", Schedule: "* * * * * * *"}
	members := map[string]*Source{}
	for _, m := range []string{"m1", "m2", "m3"} {
		members[m], _ = c.member(m, es, clk.Now, Options{})
	}
	f := fire(t, members)
	var want []string
	for k := 1; k <= 5; k++ {
		tick := t0.Truncate(time.Second).Add(time.Duration(k) * time.Second)
		want = append(want, tick.Format(time.RFC3339))
		clk.Set(tick.Add(300 * time.Millisecond))
		gatewaytest.Eventually(t, 10*time.Second, func() bool {
			n, _ := f.snapshot()
			return n[tick.Format(time.RFC3339)] > 0
		}, "tick %s fired", tick.Format(time.RFC3339))
		// Every member polls twice more at this time: none may fire again.
		_, base := f.snapshot()
		gatewaytest.Eventually(t, 10*time.Second, func() bool {
			_, p := f.snapshot()
			for m := range members {
				if p[m] < base[m]+2 {
					return false
				}
			}
			return true
		}, "members polled after tick %d", k)
	}
	f.stop()
	n, _ := f.snapshot()
	var got []string
	for id, count := range n {
		got = append(got, id)
		if count != 1 {
			t.Errorf("tick %s fired %d times by %v", id, count, f.by[id])
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("fired %v; want %v", got, want)
	}
}

// With the real clock and a per-second bare cron, three members never
// fire a tick twice.
func TestThreeMembersRealClockNoDoubles(t *testing.T) {
	c := newCluster(t)
	es := &specs.EventSource{Name: "tick", Type: "schedule", Schedule: "* * * * * * *"}
	members := map[string]*Source{}
	for _, m := range []string{"m1", "m2", "m3"} {
		members[m], _ = c.member(m, es, nil, Options{})
	}
	f := fire(t, members)
	gatewaytest.Eventually(t, 20*time.Second, func() bool {
		n, _ := f.snapshot()
		return len(n) >= 4
	}, "four ticks fired")
	f.stop()
	n, _ := f.snapshot()
	for id, count := range n {
		if count != 1 {
			t.Errorf("tick %s fired %d times by %v", id, count, f.by[id])
		}
		tick, err := time.Parse(time.RFC3339, id)
		if err != nil || tick.Nanosecond() != 0 {
			t.Errorf("record id %q is not a whole-second tick", id)
		}
	}
}

// The member holding a tick dies without Done; after the lease another
// member fires the SAME tick (same event id), and the next tick fires
// once: nothing skipped, nothing doubled.
func TestFailoverReclaimsTheSameTick(t *testing.T) {
	c := newCluster(t)
	clk := newClock(time.Date(2024, 3, 15, 10, 0, 30, 0, time.UTC))
	es := &specs.EventSource{Name: "every-minute", Type: "schedule", Schedule: "rate(1 minute)"}
	opts := Options{Lease: 30 * time.Second}
	a, ncA := c.member("a", es, clk.Now, opts)
	b, ncB := c.member("b", es, clk.Now, opts)
	cc, _ := c.member("c", es, clk.Now, opts)
	for _, s := range []*Source{a, b, cc} {
		if r := pollOne(t, s); r != nil {
			t.Fatalf("fired %s before the first tick", r.ID)
		}
	}

	clk.Set(time.Date(2024, 3, 15, 10, 1, 0, 200e6, time.UTC))
	ra := pollOne(t, a)
	if ra == nil || ra.ID != "2024-03-15T10:01:00Z" || ra.Deliveries != 1 || ra.Partition != Partition {
		t.Fatalf("a claimed %+v", ra)
	}
	evA, _ := a.Event([]*sources.Record{ra})
	if st := stored(t, ncB); st.State != stateClaimed || st.Owner != "a" {
		t.Fatalf("state after a's claim %+v", st)
	}
	ncA.Close() // a dies: no Done, no renewals

	clk.Set(time.Date(2024, 3, 15, 10, 1, 20, 0, time.UTC))
	if r := pollOne(t, b); r != nil {
		t.Fatalf("b fired %s while a's lease still ran", r.ID)
	}
	clk.Set(time.Date(2024, 3, 15, 10, 1, 31, 0, time.UTC))
	rb := pollOne(t, b)
	if rb == nil || rb.ID != ra.ID || rb.Deliveries != 2 {
		t.Fatalf("after the lease b got %+v; want tick %s again, delivery 2", rb, ra.ID)
	}
	evB, _ := b.Event([]*sources.Record{rb})
	if string(evA) != string(evB) {
		t.Fatalf("the re-claimed tick's event differs:\n%s\n%s", evA, evB)
	}
	if r := pollOne(t, cc); r != nil {
		t.Fatalf("c fired %s while b holds the tick", r.ID)
	}
	if err := b.Done(ctxT(t), []*sources.Record{rb}); err != nil {
		t.Fatal(err)
	}
	if st := stored(t, ncB); st.State != stateFired || st.Owner != "b" || st.Tick.Format(time.RFC3339) != ra.ID {
		t.Fatalf("state after b's Done %+v", st)
	}
	if r := pollOne(t, cc); r != nil {
		t.Fatalf("c fired %s after it was fired", r.ID)
	}

	clk.Set(time.Date(2024, 3, 15, 10, 2, 0, 500e6, time.UTC))
	rc := pollOne(t, cc)
	if rc == nil || rc.ID != "2024-03-15T10:02:00Z" || rc.Deliveries != 1 {
		t.Fatalf("c got %+v; want the 10:02 tick", rc)
	}
	if r := pollOne(t, b); r != nil {
		t.Fatalf("b fired %s while c holds it", r.ID)
	}
	if err := cc.Done(ctxT(t), []*sources.Record{rc}); err != nil {
		t.Fatal(err)
	}
	if r := pollOne(t, b); r != nil {
		t.Fatalf("b fired %s again", r.ID)
	}
}

// Close gives an unfinished tick back at once; after an outage only the
// latest missed tick fires, once.
func TestCloseReleasesAndOutageFiresLatestOnce(t *testing.T) {
	c := newCluster(t)
	clk := newClock(time.Date(2024, 3, 15, 10, 0, 30, 0, time.UTC))
	es := &specs.EventSource{Name: "every-minute", Type: "schedule", Schedule: "rate(1 minute)"}
	a, _ := c.member("a", es, clk.Now, Options{})
	b, ncB := c.member("b", es, clk.Now, Options{})

	clk.Set(time.Date(2024, 3, 15, 10, 1, 0, 0, time.UTC))
	ra := pollOne(t, a)
	if ra == nil {
		t.Fatal("a claimed nothing")
	}
	if r := pollOne(t, a); r != nil {
		t.Fatalf("a fired %s while it holds a tick", r.ID)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	rb := pollOne(t, b)
	if rb == nil || rb.ID != ra.ID || rb.Deliveries != 2 {
		t.Fatalf("after a's Close b got %+v; want %s at once", rb, ra.ID)
	}
	if err := b.Done(ctxT(t), []*sources.Record{rb}); err != nil {
		t.Fatal(err)
	}

	clk.Set(time.Date(2024, 3, 15, 10, 7, 30, 0, time.UTC)) // six ticks missed
	r := pollOne(t, b)
	if r == nil || r.ID != "2024-03-15T10:07:00Z" {
		t.Fatalf("after the outage got %+v; want only 10:07", r)
	}
	if err := b.Done(ctxT(t), []*sources.Record{r}); err != nil {
		t.Fatal(err)
	}
	if r := pollOne(t, b); r != nil {
		t.Fatalf("fired %s after catching up", r.ID)
	}
	if st := stored(t, ncB); st.Tick.Format(time.RFC3339) != "2024-03-15T10:07:00Z" || st.State != stateFired {
		t.Fatalf("state %+v", st)
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The event is EventBridge's scheduled event as aws-lambda-go decodes it.
func TestEventDecodesAsCloudWatchEvent(t *testing.T) {
	c := newCluster(t)
	clk := newClock(time.Date(2024, 3, 15, 10, 0, 59, 0, time.UTC))
	es := &specs.EventSource{Name: "nightly", Type: "schedule", Schedule: "cron(0/1 * * * ? *)"}
	s, _ := c.member("a", es, clk.Now, Options{})
	if pollOne(t, s) != nil {
		t.Fatal("fired before the tick")
	}
	clk.Set(time.Date(2024, 3, 15, 10, 1, 0, 0, time.UTC))
	rec := pollOne(t, s)
	if rec == nil {
		t.Fatal("no tick")
	}
	raw, err := s.Event([]*sources.Record{rec})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2024, 3, 15, 10, 1, 0, 0, time.UTC)
	if ev.Version != "0" || ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" ||
		ev.AccountID != "123456789012" || ev.Region != "eu-west-1" || !ev.Time.Equal(tick) ||
		!slices.Equal(ev.Resources, []string{"arn:aws:events:eu-west-1:123456789012:rule/nightly"}) ||
		string(ev.Detail) != "{}" {
		t.Fatalf("event %s", raw)
	}
	if !uuidV4.MatchString(ev.ID) || ev.ID != EventID(mappingUUID, tick) || ev.ID == EventID(mappingUUID, tick.Add(time.Minute)) {
		t.Fatalf("event id %q", ev.ID)
	}
	if !strings.Contains(string(raw), `"time":"2024-03-15T10:01:00Z"`) {
		t.Fatalf("time is not RFC 3339 Z: %s", raw)
	}
	if rec.Filter["detail-type"] != "Scheduled Event" || rec.Size != len(raw) || !rec.Time.Equal(tick) {
		t.Fatalf("record %+v", rec)
	}
	key, info := s.BatchInfo([]*sources.Record{rec})
	if key != "ScheduleInfo" || *info.(*Info) != (Info{Schedule: "cron(0/1 * * * ? *)", Tick: "2024-03-15T10:01:00Z"}) {
		t.Fatalf("batch info %s %+v", key, info)
	}
	if _, err := s.Event(nil); err == nil {
		t.Fatal("an empty batch must be an error")
	}
}

// Input replaces the event verbatim.
func TestInputReplacesTheEvent(t *testing.T) {
	c := newCluster(t)
	clk := newClock(time.Date(2024, 3, 15, 10, 0, 59, 0, time.UTC))
	input := `{"job": "nightly", "n": [1, 2]}`
	es := &specs.EventSource{Name: "nightly", Type: "schedule", Schedule: "rate(1 minute)", Input: input}
	s, _ := c.member("a", es, clk.Now, Options{})
	clk.Set(time.Date(2024, 3, 15, 10, 1, 0, 0, time.UTC))
	rec := pollOne(t, s)
	if rec == nil {
		t.Fatal("no tick")
	}
	raw, err := s.Event([]*sources.Record{rec})
	if err != nil || string(raw) != input {
		t.Fatalf("event %s, %v; want the input verbatim", raw, err)
	}
	if rec.Filter["job"] != "nightly" {
		t.Fatalf("filter %v", rec.Filter)
	}
	if err := s.Done(ctxT(t), []*sources.Record{rec}); err != nil {
		t.Fatal(err)
	}
	// Forget drops the mapping's state (mapping deleted).
	nc := c.conn("admin")
	if err := Forget(ctxT(t), nc, mappingUUID); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	kv, _ := js.KeyValue(ctxT(t), DefaultBucket)
	if _, err := kv.Get(ctxT(t), mappingUUID); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("after Forget: %v", err)
	}
}

func TestOpenRejects(t *testing.T) {
	c := newCluster(t)
	nc := c.conn("x")
	for name, cfg := range map[string]sources.Config{
		"no NATS":      {UUID: mappingUUID, Member: "a", Spec: &specs.EventSource{Schedule: "rate(1 minute)"}},
		"bad schedule": {UUID: mappingUUID, Member: "a", NATS: nc, Spec: &specs.EventSource{Schedule: "rate(1 week)"}},
		"bad input":    {UUID: mappingUUID, Member: "a", NATS: nc, Spec: &specs.EventSource{Schedule: "rate(1 minute)", Input: "{"}},
		"no member":    {UUID: mappingUUID, NATS: nc, Spec: &specs.EventSource{Schedule: "rate(1 minute)"}},
	} {
		if s, err := Open(context.Background(), cfg); err == nil || s != nil {
			t.Errorf("%s: Open = %v, %v; want an error", name, s, err)
		}
	}
	if got := kvKey("not a valid key!"); !regexp.MustCompile(`^h[0-9a-f]{32}$`).MatchString(got) {
		t.Errorf("kvKey = %s", got)
	}
	if err := Forget(ctxT(t), nc, mappingUUID); err != nil {
		t.Errorf("Forget without a bucket: %v", err)
	}
}
