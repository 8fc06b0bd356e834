package redis

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/specs"
)

const within = 15 * time.Second

// setup describes one Source under test.
type setup struct {
	url, stream, group, member string
	from, timestamp            string
	opts                       Options
	log                        io.Writer // nil: the test's log
	// noFilters opens a mapping without filters (by default it has one).
	noFilters bool
}

func open(t *testing.T, c setup) *Source {
	t.Helper()
	if c.group == "" {
		c.group = "g"
	}
	if c.member == "" {
		c.member = "m1"
	}
	log := gatewaytest.Logger(t)
	if c.log != nil {
		log = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: c.log})
	}
	var filters []string
	if !c.noFilters {
		filters = []string{`{"data":[{"exists":true}]}`}
	}
	cfg := sources.Config{
		UUID:     "uuid-1",
		Function: "fn",
		Spec: &specs.EventSource{
			Name: "orders", Type: "redis", URL: c.url, Stream: c.stream, Group: c.group,
			StartingFrom: c.from, StartingTimestamp: c.timestamp,
			// Records carry the Filter view only for mappings with
			// filters; the tests read it (the engine applies filters).
			Filters: filters,
		},
		Member:          c.member,
		FunctionTimeout: 3 * time.Second,
		Logger:          log,
	}
	s, err := OpenWith(context.Background(), cfg, c.opts)
	if err != nil {
		t.Fatalf("OpenWith: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// admin is a plain client for setting up and inspecting Redis.
func admin(t *testing.T, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// add appends an entry (id "*" lets Redis choose) and returns its id.
func add(t *testing.T, c *goredis.Client, stream, id string, values ...any) string {
	t.Helper()
	got, err := c.XAdd(context.Background(), &goredis.XAddArgs{Stream: stream, ID: id, Values: values}).Result()
	if err != nil {
		t.Fatalf("XADD %s: %v", stream, err)
	}
	return got
}

// poll calls Poll (waiting briefly) until it has collected n records.
func poll(t *testing.T, s *Source, n int) []*sources.Record {
	t.Helper()
	var (
		got     []*sources.Record
		lastErr error
	)
	gatewaytest.Eventually(t, within, func() bool {
		recs, err := s.Poll(context.Background(), n-len(got), 20*time.Millisecond)
		if err != nil {
			lastErr = err
		}
		got = append(got, recs...)
		return len(got) >= n
	}, "%d records (%v)", n, lazy(func() string {
		return fmt.Sprintf("have %v, last error %v", ids(got), lastErr)
	}))
	return got
}

// lazy formats when the failure message is printed, not when it is built.
type lazy func() string

func (l lazy) String() string { return l() }

// pollOnce calls Poll once, failing on error or when Poll hangs.
func pollOnce(t *testing.T, s *Source, limit int, wait time.Duration) []*sources.Record {
	t.Helper()
	recs, err := pollGuarded(t, s, limit, wait)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return recs
}

// pollGuarded calls Poll and fails the test when it does not return within
// a generous bound (a hang, not a slow answer).
func pollGuarded(t *testing.T, s *Source, limit int, wait time.Duration) ([]*sources.Record, error) {
	t.Helper()
	type result struct {
		recs []*sources.Record
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		recs, err := s.Poll(context.Background(), limit, wait)
		ch <- result{recs, err}
	}()
	select {
	case r := <-ch:
		return r.recs, r.err
	case <-time.After(wait + 30*time.Second):
		t.Fatalf("Poll(wait=%s) hung", wait)
		return nil, nil
	}
}

func ids(recs []*sources.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func done(t *testing.T, s *Source, recs []*sources.Record) {
	t.Helper()
	if err := s.Done(context.Background(), recs); err != nil {
		t.Fatalf("Done: %v", err)
	}
}

// pendingIDs lists the group's pending entries (all consumers, or one).
func pendingIDs(t *testing.T, c *goredis.Client, stream, group, consumer string) []string {
	t.Helper()
	p, err := c.XPendingExt(context.Background(), &goredis.XPendingExtArgs{
		Stream: stream, Group: group, Start: "-", End: "+", Count: 1000, Consumer: consumer,
	}).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	out := make([]string, len(p))
	for i, e := range p {
		out[i] = e.ID
	}
	return out
}

type specEdit = specs.EventSource

// specTo is a redis event source spec for url (stream "orders", group "g").
func specTo(url string, edits ...func(*specEdit)) *specs.EventSource {
	e := &specs.EventSource{Name: "orders", Type: "redis", URL: url, Stream: "orders", Group: "g"}
	for _, f := range edits {
		f(e)
	}
	return e
}
