package kafka

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/specs"
)

// within is how long a test waits for a condition on the loopback cluster.
const within = 20 * time.Second

// config is a mapping on addrs reading topics as group from start.
func config(t *testing.T, addrs []string, group, start string, topics ...string) sources.Config {
	return sources.Config{
		UUID:     "mapping-" + group,
		Function: "fn",
		Member:   t.Name(),
		Spec: &specs.EventSource{
			Name:         "kafka",
			Type:         "kafka",
			URL:          strings.Join(addrs, ","),
			Topics:       topics,
			Group:        group,
			StartingFrom: start,
			// Records carry the Filter view only for mappings with
			// filters; the tests read it (the engine applies filters).
			Filters: []string{`{"value":[{"exists":true}]}`},
		},
		Logger: hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: testWriter{t}}),
	}
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// openSource opens a Source with a short heartbeat, so rebalances settle
// in well under a second, and closes it at the end of the test.
func openSource(t *testing.T, cfg sources.Config) *Source {
	t.Helper()
	s, err := open(cfg, kgo.HeartbeatInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// producer is a plain kgo client that writes records to chosen partitions.
func producer(t *testing.T, addrs []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// produceValues writes values to topic/partition, one record each.
func produceValues(t *testing.T, cl *kgo.Client, topic string, partition int32, values ...string) {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}
	}
	produce(t, cl, recs...)
}

// seq is prefix-0 … prefix-(n-1).
func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + "-" + strconv.Itoa(i)
	}
	return out
}

// pollUntil polls s (max records per Poll) until done says the collected
// records are enough, and returns them.
func pollUntil(t *testing.T, s *Source, max int, done func([]*sources.Record) bool) []*sources.Record {
	t.Helper()
	var got []*sources.Record
	gatewaytest.Eventually(t, within, func() bool {
		recs, err := s.Poll(context.Background(), max, 200*time.Millisecond)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if max > 0 && len(recs) > max {
			t.Fatalf("poll returned %d records, max %d", len(recs), max)
		}
		got = append(got, recs...)
		return done(got)
	}, "records still missing; have %d: %v", len(got), values(got))
	return got
}

// pollN polls until n records came.
func pollN(t *testing.T, s *Source, n int) []*sources.Record {
	t.Helper()
	got := pollUntil(t, s, 0, func(got []*sources.Record) bool { return len(got) >= n })
	if len(got) != n {
		t.Fatalf("got %d records, want %d: %v", len(got), n, values(got))
	}
	return got
}

// pollThrough polls until a record with value marker came and returns
// everything received, marker included. Producing a marker after the records
// a test expects not to see makes "nothing else came" a checkable fact
// rather than a timed wait.
func pollThrough(t *testing.T, s *Source, marker string) []*sources.Record {
	t.Helper()
	return pollUntil(t, s, 0, func(got []*sources.Record) bool {
		return slices.ContainsFunc(got, func(r *sources.Record) bool { return value(r) == marker })
	})
}

func value(r *sources.Record) string { return string(r.Handle.(*kgo.Record).Value) }

func values(recs []*sources.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = value(r)
	}
	return out
}

func ids(recs []*sources.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// byPartition groups records by Partition, keeping their order.
func byPartition(recs []*sources.Record) map[string][]*sources.Record {
	m := map[string][]*sources.Record{}
	for _, r := range recs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	return m
}

// committed reads the group's committed offsets through the admin API.
func committed(t *testing.T, addrs []string, group string) map[string]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetching offsets: %v", err)
	}
	out := map[string]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Fatalf("offset of %s-%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[topicPartition{o.Topic, o.Partition}.String()] = o.At
	})
	return out
}

// owned lists the partitions s holds now, sorted.
func owned(s *Source) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for tp := range s.owned {
		out = append(out, tp.String())
	}
	slices.Sort(out)
	return out
}

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
