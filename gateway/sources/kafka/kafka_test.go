package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/internal/kafkatest"
)

func TestRecordsDoneAndResumeInTheGroup(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"orders": 1})
	p := producer(t, addrs)
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i := range 10 {
		produce(t, p, &kgo.Record{Topic: "orders", Value: []byte("o-" + strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}

	a := openSource(t, config(t, addrs, "g1", "TRIM_HORIZON", "orders"))
	got := pollN(t, a, 10)
	if want := seq("o", 10); !slices.Equal(values(got), want) {
		t.Fatalf("values = %v, want %v", values(got), want)
	}
	for i, r := range got {
		if r.ID != strconv.Itoa(i) || r.Partition != "orders-0" {
			t.Errorf("record %d: id %q partition %q, want %q orders-0", i, r.ID, r.Partition, strconv.Itoa(i))
		}
		if want := base.Add(time.Duration(i) * time.Second); !r.Time.Equal(want) {
			t.Errorf("record %d: time %v, want %v", i, r.Time, want)
		}
	}

	// Done through offset 3: the group's commit is 4.
	if err := a.Done(context.Background(), got[:4]); err != nil {
		t.Fatal(err)
	}
	if c := committed(t, addrs, "g1"); c["orders-0"] != 4 {
		t.Fatalf("committed = %v, want orders-0 at 4", c)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Poll(context.Background(), 1, 0); !errors.Is(err, errClosed) {
		t.Fatalf("poll after close: %v, want %v", err, errClosed)
	}

	// A new member of the group resumes right after the last Done record.
	b := openSource(t, config(t, addrs, "g1", "TRIM_HORIZON", "orders"))
	got = pollN(t, b, 6)
	if want := []string{"4", "5", "6", "7", "8", "9"}; !slices.Equal(ids(got), want) {
		t.Fatalf("ids after resume = %v, want %v", ids(got), want)
	}
	produceValues(t, p, "orders", 0, "marker")
	if rest := pollThrough(t, b, "marker"); !slices.Equal(values(rest), []string{"marker"}) {
		t.Fatalf("after the backlog got %v, want only the marker", values(rest))
	}
}

func TestNothingDoneComesAgain(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"orders": 1})
	produceValues(t, producer(t, addrs), "orders", 0, seq("o", 5)...)

	// Production settings: Open, not the test's short heartbeat.
	opened, err := Open(context.Background(), config(t, addrs, "g2", "TRIM_HORIZON", "orders"))
	if err != nil {
		t.Fatal(err)
	}
	a := opened.(*Source)
	if got := pollN(t, a, 5); !slices.Equal(values(got), seq("o", 5)) {
		t.Fatalf("first member got %v", values(got))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if c := committed(t, addrs, "g2"); len(c) != 0 {
		t.Fatalf("nothing was Done but the group committed %v", c)
	}
	b := openSource(t, config(t, addrs, "g2", "TRIM_HORIZON", "orders"))
	if got := pollN(t, b, 5); !slices.Equal(values(got), seq("o", 5)) {
		t.Fatalf("second member got %v, want everything again", values(got))
	}
}

func TestOrderPerPartitionAcrossPollsAndTopics(t *testing.T) {
	topics := map[string]int32{"alpha": 3, "beta": 2}
	addrs := kafkatest.Start(t, topics)
	p := producer(t, addrs)
	const per = 20
	for topic, n := range topics {
		for part := range n {
			produceValues(t, p, topic, part, seq(fmt.Sprintf("%s-%d", topic, part), per)...)
		}
	}

	s := openSource(t, config(t, addrs, "order", "TRIM_HORIZON", "alpha", "beta"))
	const total = 5 * per
	got := pollUntil(t, s, 7, func(got []*sources.Record) bool { return len(got) >= total })
	if len(got) != total {
		t.Fatalf("got %d records, want %d", len(got), total)
	}
	parts := byPartition(got)
	if len(parts) != 5 {
		t.Fatalf("records came from %d partitions, want 5: %v", len(parts), parts)
	}
	for topic, n := range topics {
		for part := range n {
			key := fmt.Sprintf("%s-%d", topic, part)
			recs := parts[key]
			if want := seq(key, per); !slices.Equal(values(recs), want) {
				t.Errorf("%s values = %v, want %v", key, values(recs), want)
			}
			if want := seq("", per); !slices.Equal(ids(recs), trimDash(want)) {
				t.Errorf("%s ids = %v, want 0…%d in order", key, ids(recs), per-1)
			}
		}
	}
}

// trimDash turns seq("", n)'s "-0", "-1", … into "0", "1", ….
func trimDash(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.TrimPrefix(s, "-")
	}
	return out
}

func TestStartingPositions(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"start": 1})
	p := producer(t, addrs)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 5 {
		produce(t, p, &kgo.Record{Topic: "start", Value: []byte("old-" + strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}

	t.Run("TRIM_HORIZON", func(t *testing.T) {
		s := openSource(t, config(t, addrs, "trim", "TRIM_HORIZON", "start"))
		if got := pollN(t, s, 5); !slices.Equal(values(got), seq("old", 5)) {
			t.Fatalf("got %v, want every old record", values(got))
		}
	})

	t.Run("AT_TIMESTAMP", func(t *testing.T) {
		cfg := config(t, addrs, "stamp", "AT_TIMESTAMP", "start")
		cfg.Spec.StartingTimestamp = base.Add(2 * time.Minute).Format(time.RFC3339)
		s := openSource(t, cfg)
		if got := pollN(t, s, 3); !slices.Equal(values(got), []string{"old-2", "old-3", "old-4"}) {
			t.Fatalf("got %v, want the records from the timestamp on", values(got))
		}
	})

	t.Run("LATEST", func(t *testing.T) {
		s := openSource(t, config(t, addrs, "latest", "LATEST", "start"))
		// When the member has looked up the end of the log is not visible,
		// so keep producing new records until one arrives; none of the old
		// ones may ever come.
		var got []*sources.Record
		k := 0
		gatewaytest.Eventually(t, within, func() bool {
			produceValues(t, p, "start", 0, "new-"+strconv.Itoa(k))
			k++
			recs, err := s.Poll(context.Background(), 0, 200*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, recs...)
			return len(got) > 0
		}, "no new record arrived")
		produceValues(t, p, "start", 0, "last")
		got = append(got, pollThrough(t, s, "last")...)
		for _, r := range got {
			if v := value(r); !strings.HasPrefix(v, "new-") && v != "last" {
				t.Fatalf("LATEST delivered %q; got %v", v, values(got))
			}
		}
	})

	t.Run("bad timestamp", func(t *testing.T) {
		cfg := config(t, addrs, "bad", "AT_TIMESTAMP", "start")
		cfg.Spec.StartingTimestamp = "yesterday"
		if _, err := Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "starting_position_timestamp") {
			t.Fatalf("open with a bad timestamp: %v", err)
		}
	})
}

// TestGroupMembersSplitAndHandOver runs two members of one group: a
// partition moving to the newcomer is read again from its committed offset,
// a Done for a record of a moved partition is ignored, and closing a member
// hands its partitions over at their commits. Duplicates never exceed the
// records that were polled but not Done at the handover.
func TestGroupMembersSplitAndHandOver(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"events": 4})
	p := producer(t, addrs)
	ctx := context.Background()
	for part := range int32(4) {
		produceValues(t, p, "events", part, seq(fmt.Sprintf("e%d", part), 5)...)
	}

	cfgA := config(t, addrs, "shared", "TRIM_HORIZON", "events")
	cfgA.Member = "a"
	a := openSource(t, cfgA)
	gotA := pollN(t, a, 20)
	if got := owned(a); len(got) != 4 {
		t.Fatalf("a alone owns %v, want all 4 partitions", got)
	}
	// Done offsets 0 and 1 of every partition.
	for _, recs := range byPartition(gotA) {
		if err := a.Done(ctx, recs[:2]); err != nil {
			t.Fatal(err)
		}
	}

	cfgB := cfgA
	cfgB.Member = "b"
	b := openSource(t, cfgB)
	gatewaytest.Eventually(t, within, func() bool {
		oa, ob := owned(a), owned(b)
		return len(oa) == 2 && len(ob) == 2 && !slices.ContainsFunc(oa, func(s string) bool { return slices.Contains(ob, s) })
	}, "partitions not split: a %v, b %v", owned(a), owned(b))
	movedToB, keptByA := owned(b), owned(a)

	// a finishes everything it polled; only its own partitions commit.
	for _, recs := range byPartition(gotA) {
		if err := a.Done(ctx, recs[2:]); err != nil {
			t.Fatalf("done after rebalance: %v", err)
		}
	}
	c := committed(t, addrs, "shared")
	for _, part := range movedToB {
		if c[part] != 2 {
			t.Errorf("%s moved to b but its commit is %d, want 2 (a's late Done must be ignored)", part, c[part])
		}
	}
	for _, part := range keptByA {
		if c[part] != 5 {
			t.Errorf("%s stayed with a, commit %d, want 5", part, c[part])
		}
	}

	// b reads its partitions from the commit: offsets 2…4, the records a
	// had polled but not Done when they moved.
	gotB := pollN(t, b, 6)
	for part, recs := range byPartition(gotB) {
		if !slices.Contains(movedToB, part) {
			t.Fatalf("b got records of %s, which it does not own", part)
		}
		if want := []string{"2", "3", "4"}; !slices.Equal(ids(recs), want) {
			t.Errorf("b read %s ids %v, want %v", part, ids(recs), want)
		}
	}

	// New records go to their owners; a Dones part of them and closes.
	for part := range int32(4) {
		produceValues(t, p, "events", part, seq(fmt.Sprintf("late%d", part), 5)...)
	}
	gotA = pollN(t, a, 10)
	for part, recs := range byPartition(gotA) {
		if !slices.Contains(keptByA, part) {
			t.Fatalf("a got records of %s, which moved to b", part)
		}
		if err := a.Done(ctx, recs[:2]); err != nil { // offsets 5, 6
			t.Fatal(err)
		}
	}
	gotB = pollN(t, b, 10)
	for part := range byPartition(gotB) {
		if !slices.Contains(movedToB, part) {
			t.Fatalf("b got records of %s before a left", part)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, within, func() bool { return len(owned(b)) == 4 }, "b owns %v after a left", owned(b))

	// a's late Done after leaving changes nothing.
	for _, recs := range byPartition(gotA) {
		if err := a.Done(ctx, recs[2:]); err != nil {
			t.Fatalf("done after close: %v", err)
		}
	}

	// b takes over a's partitions at offset 7: the 3 records per partition
	// a polled and did not Done come again, nothing before them.
	handed := pollN(t, b, 6)
	for part, recs := range byPartition(handed) {
		if !slices.Contains(keptByA, part) {
			t.Fatalf("b re-read %s, which it owned all along", part)
		}
		if want := []string{"7", "8", "9"}; !slices.Equal(ids(recs), want) {
			t.Errorf("b took over %s at ids %v, want %v", part, ids(recs), want)
		}
	}
	if dup, undone := len(handed), 2*3; dup > undone {
		t.Errorf("%d duplicates after the handover, more than the %d records not Done", dup, undone)
	}
	c = committed(t, addrs, "shared")
	for _, part := range keptByA {
		if c[part] != 7 {
			t.Errorf("%s commit %d after a left, want 7", part, c[part])
		}
	}
}

func TestPauseAndResume(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"p": 2})
	p := producer(t, addrs)
	produceValues(t, p, "p", 0, seq("zero", 10)...)

	s := openSource(t, config(t, addrs, "pause", "TRIM_HORIZON", "p"))
	first := pollUntil(t, s, 2, func(got []*sources.Record) bool { return len(got) >= 2 })
	if !slices.Equal(values(first), []string{"zero-0", "zero-1"}) {
		t.Fatalf("first poll = %v", values(first))
	}
	// kgo has more of p-0 buffered by now; pausing drops that buffer.
	s.Pause([]string{"p-0", "not-a-partition"})
	produceValues(t, p, "p", 0, "zero-paused")
	produceValues(t, p, "p", 1, "one-0", "one-marker")
	got := pollThrough(t, s, "one-marker")
	if !slices.Equal(values(got), []string{"one-0", "one-marker"}) {
		t.Fatalf("while p-0 was paused got %v, want only p-1's records", values(got))
	}

	s.Resume([]string{"p-0"})
	got = pollN(t, s, 9)
	if want := append(seq("zero", 10)[2:], "zero-paused"); !slices.Equal(values(got), want) {
		t.Fatalf("after resume got %v, want %v", values(got), want)
	}
}

func TestLagCountsWhatIsNotDone(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"lag": 2})
	p := producer(t, addrs)
	produceValues(t, p, "lag", 0, seq("a", 5)...)
	produceValues(t, p, "lag", 1, seq("b", 3)...)
	ctx := context.Background()

	s := openSource(t, config(t, addrs, "lagging", "TRIM_HORIZON", "lag"))
	wantLag := func(want ...int64) {
		t.Helper()
		lag, err := s.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]string, len(lag))
		for i, l := range lag {
			got[i] = fmt.Sprintf("%s=%d", l.Partition, l.Records)
		}
		w := []string{fmt.Sprintf("lag-0=%d", want[0]), fmt.Sprintf("lag-1=%d", want[1])}
		if !slices.Equal(got, w) {
			t.Fatalf("lag = %v, want %v", got, w)
		}
	}
	wantLag(5, 3)

	parts := byPartition(pollN(t, s, 8))
	if err := s.Done(ctx, parts["lag-0"][:2]); err != nil {
		t.Fatal(err)
	}
	wantLag(3, 3)
	if err := s.Done(ctx, parts["lag-0"][2:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Done(ctx, parts["lag-1"]); err != nil {
		t.Fatal(err)
	}
	wantLag(0, 0)

	produceValues(t, p, "lag", 1, "b-3")
	wantLag(0, 1)
}

func TestPollReportsAMissingTopic(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"present": 1})
	s := openSource(t, config(t, addrs, "missing", "TRIM_HORIZON", "absent"))
	var err error
	gatewaytest.Eventually(t, within, func() bool {
		_, err = s.Poll(context.Background(), 10, 200*time.Millisecond)
		return err != nil
	}, "poll of a missing topic never failed")
	if !errors.Is(err, kerr.UnknownTopicOrPartition) || !strings.Contains(err.Error(), `"absent"`) {
		t.Fatalf("error = %v, want UNKNOWN_TOPIC_OR_PARTITION naming the topic", err)
	}
}

func TestPollReportsUnreachableBrokers(t *testing.T) {
	addr := freePort(t)
	s := openSource(t, config(t, []string{addr}, "down", "TRIM_HORIZON", "orders"))
	var err error
	gatewaytest.Eventually(t, within, func() bool {
		_, err = s.Poll(context.Background(), 10, 200*time.Millisecond)
		return err != nil
	}, "poll with no broker never failed")
	if !strings.Contains(err.Error(), "kafka") {
		t.Fatalf("error = %v", err)
	}
	t.Logf("poll error: %v", err)
}

func TestDoneRejectsForeignRecords(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"x": 1})
	s := openSource(t, config(t, addrs, "foreign", "TRIM_HORIZON", "x"))
	err := s.Done(context.Background(), []*sources.Record{{ID: "1-0", Handle: "redis entry"}})
	if err == nil || !strings.Contains(err.Error(), "1-0") {
		t.Fatalf("done with a foreign record: %v", err)
	}
	if s.Ordered() != true {
		t.Fatal("kafka source must be ordered")
	}
}

func TestOpenValidatesSettings(t *testing.T) {
	cases := map[string]func(cfg *sources.Config){
		"no url":      func(cfg *sources.Config) { cfg.Spec.URL = " , " },
		"no topics":   func(cfg *sources.Config) { cfg.Spec.Topics = nil },
		"no group":    func(cfg *sources.Config) { cfg.Spec.Group = "" },
		"bad start":   func(cfg *sources.Config) { cfg.Spec.StartingFrom = "EARLIEST" },
		"no settings": func(cfg *sources.Config) { cfg.Spec = nil },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := config(t, []string{"127.0.0.1:1"}, "g", "LATEST", "t")
			mutate(&cfg)
			if s, err := Open(context.Background(), cfg); err == nil {
				_ = s.Close()
				t.Fatal("open accepted invalid settings")
			}
		})
	}
}

func TestParsePartition(t *testing.T) {
	cases := map[string]topicPartition{
		"orders-0":         {"orders", 0},
		"my-topic-name-12": {"my-topic-name", 12},
	}
	for in, want := range cases {
		if got, ok := parsePartition(in); !ok || got != want || got.String() != in {
			t.Errorf("parsePartition(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"orders", "-1", "orders-x", "orders-", ""} {
		if _, ok := parsePartition(bad); ok {
			t.Errorf("parsePartition(%q) accepted", bad)
		}
	}
}

// TestDoneFromAnEarlierHoldIsIgnored moves a partition away from a member
// and back: the member's Done for records it polled before the move must not
// commit, because the partition is read again from its commit under the new
// hold (and another member may have consumed it in between).
func TestDoneFromAnEarlierHoldIsIgnored(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"hold": 2})
	p := producer(t, addrs)
	produceValues(t, p, "hold", 0, seq("h0", 3)...)
	produceValues(t, p, "hold", 1, seq("h1", 3)...)
	ctx := context.Background()

	cfgA := config(t, addrs, "holds", "TRIM_HORIZON", "hold")
	cfgA.Member = "a"
	a := openSource(t, cfgA)
	early := byPartition(pollN(t, a, 6))

	cfgB := cfgA
	cfgB.Member = "b"
	b := openSource(t, cfgB)
	gatewaytest.Eventually(t, within, func() bool { return len(owned(a)) == 1 && len(owned(b)) == 1 },
		"partitions not split: a %v, b %v", owned(a), owned(b))
	moved := owned(b)[0]
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, within, func() bool { return len(owned(a)) == 2 }, "a owns %v after b left", owned(a))

	if err := a.Done(ctx, early[moved]); err != nil {
		t.Fatal(err)
	}
	if c := committed(t, addrs, "holds"); len(c) != 0 {
		t.Fatalf("a Done records of %s polled before it moved away and back; the group committed %v", moved, c)
	}
	again := pollN(t, a, 3)
	if want := seq(strings.ReplaceAll(moved, "hold-", "h"), 3); !slices.Equal(values(again), want) {
		t.Fatalf("a read %v again after getting %s back, want %v", values(again), moved, want)
	}
	if err := a.Done(ctx, again); err != nil {
		t.Fatal(err)
	}
	if c := committed(t, addrs, "holds"); c[moved] != 3 {
		t.Fatalf("commit of %s = %v, want 3", moved, c)
	}
}

func TestPollWithoutWaitReturnsWhatIsBuffered(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"now": 1})
	produceValues(t, producer(t, addrs), "now", 0, seq("n", 3)...)
	s := openSource(t, config(t, addrs, "now", "TRIM_HORIZON", "now"))
	var got []*sources.Record
	gatewaytest.Eventually(t, within, func() bool {
		recs, err := s.Poll(context.Background(), 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 2 {
			t.Fatalf("poll returned %d records, max 2", len(recs))
		}
		got = append(got, recs...)
		return len(got) >= 3
	}, "buffered records never returned; have %v", values(got))
	if !slices.Equal(values(got), seq("n", 3)) {
		t.Fatalf("got %v", values(got))
	}
}

// Without filters no record carries a Filter view: nothing would read it.
func TestNoFilterViewWithoutFilters(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"nf": 1})
	produceValues(t, producer(t, addrs), "nf", 0, `{"a":1}`)
	cfg := config(t, addrs, "nofilters", "TRIM_HORIZON", "nf")
	cfg.Spec.Filters = nil
	recs := pollN(t, openSource(t, cfg), 1)
	if recs[0].Filter != nil {
		t.Fatalf("record %s has filter view %#v, want none", recs[0].ID, recs[0].Filter)
	}
}
