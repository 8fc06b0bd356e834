package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/gateway/sources"
	redissource "github.com/nimbus-fn/nimbus/gateway/sources/redis"
	"github.com/nimbus-fn/nimbus/internal/kafkatest"
	"github.com/nimbus-fn/nimbus/internal/redistest"
)

// The lane tests produce laneKeys keys × lanePerKey records, round-robin
// over the keys, with one poison record of key k0 after the first
// lanePoisonAfter rounds. The function (testfn/batch) reports the poison
// record failed every time, so with maximum_retry_attempts = -1 its lane
// is stuck: the other lanes must go on, order per key must hold and the
// checkpoint must stay on the poison record. Then the spec changes to one
// retry: the mapping restarts from the checkpoint, so what the other lanes
// finished behind the poison comes again (at least once), the stuck lane
// gets through, the poison goes to on_failure and the checkpoint reaches
// the end.
const (
	laneKeys        = 8
	lanePerKey      = 10
	lanePoisonAfter = 4
	laneFactor      = 4
)

// laneRecord is one produced record: key, payload, and once produced its
// partition and position (Kafka offset or Redis entry id).
type laneRecord struct {
	key, payload string
	part         int32
	offset       int64
	id           string
}

func laneRecords() []laneRecord {
	var out []laneRecord
	for n := 0; n < lanePerKey; n++ {
		if n == lanePoisonAfter {
			out = append(out, laneRecord{key: "k0", payload: `{"kind":"poison","key":"k0"}`})
		}
		for k := 0; k < laneKeys; k++ {
			key := fmt.Sprintf("k%d", k)
			out = append(out, laneRecord{key: key, payload: fmt.Sprintf(`{"kind":"order","key":"%s","n":%d}`, key, n)})
		}
	}
	return out
}

// laneSpec is the consumer with one event_source "orders" of body plus the
// lane settings and retries.
func laneSpec(t *testing.T, logPath, body string, retries int) string {
	return consumerSpec(t, logPath, `
  event_source "orders" {`+body+`
    starting_position          = "TRIM_HORIZON"
    batch_size                 = 3
    maximum_batching_window    = "0s"
    parallelization_factor     = `+fmt.Sprint(laneFactor)+`
    report_batch_item_failures = true
    maximum_retry_attempts     = `+fmt.Sprint(retries)+`
    on_failure { nats = "consumer.failed" }
  }`)
}

// checkKeyOrder fails unless every key's records first reached the
// function in produce order.
func checkKeyOrder(t *testing.T, seen []string) {
	t.Helper()
	last := map[string]int{}
	for _, p := range seen {
		var v struct {
			Kind, Key string
			N         int
		}
		if json.Unmarshal([]byte(p), &v) != nil || v.Kind != "order" {
			continue
		}
		if prev, ok := last[v.Key]; ok && v.N <= prev {
			t.Fatalf("key %s: record %d reached the function after %d", v.Key, v.N, prev)
		}
		last[v.Key] = v.N
	}
}

// laneOutcome checks phase one: every record except those behind the
// poison in its lane (same partition, same lane) reached the function and
// order per key held. It returns the held ones.
func laneOutcome(t *testing.T, logPath string, recs []laneRecord, poison laneRecord, behind func(laneRecord) bool) []laneRecord {
	t.Helper()
	var want, held []laneRecord
	for _, r := range recs {
		switch {
		case r.payload == poison.payload:
		case r.part == poison.part && sources.Lane(r.key, "", laneFactor) == sources.Lane(poison.key, "", laneFactor) && behind(r):
			held = append(held, r)
		default:
			want = append(want, r)
		}
	}
	if len(held) == 0 || len(held) == len(recs)-1 {
		t.Fatalf("bad test data: %d of %d records behind the poison in its lane", len(held), len(recs))
	}
	eventually(t, 60*time.Second, func() bool {
		seen := map[string]bool{}
		for _, p := range flatten(batchLog(t, logPath)) {
			seen[p] = true
		}
		for _, r := range want {
			if !seen[r.payload] {
				return false
			}
		}
		return true
	}, "every record outside the stuck lane reaches the function")
	seen := firstSeen(flatten(batchLog(t, logPath)))
	checkKeyOrder(t, seen)
	return held
}

// laneRedelivered checks phase two: everything reached the function, in
// order per key, and every record the other lanes had finished behind the
// poison came again.
func laneRedelivered(t *testing.T, logPath string, recs []laneRecord, poison laneRecord, behind func(laneRecord) bool) {
	t.Helper()
	poisonLane := sources.Lane(poison.key, "", laneFactor)
	eventually(t, 60*time.Second, func() bool {
		count := map[string]int{}
		for _, p := range flatten(batchLog(t, logPath)) {
			count[p]++
		}
		for _, r := range recs {
			again := r.part == poison.part && behind(r) && sources.Lane(r.key, "", laneFactor) != poisonLane
			if count[r.payload] == 0 || again && count[r.payload] < 2 {
				return false
			}
		}
		return true
	}, "every record reaches the function once the stuck lane gives up on the poison, and what the other lanes "+
		"finished behind the unfinished poison comes again (at least once)")
	checkKeyOrder(t, firstSeen(flatten(batchLog(t, logPath))))
}

// checkHeld fails unless each record behind the poison in its lane reached
// the function only in a batch with the poison (retried with it, never
// checkpointed).
func checkHeld(t *testing.T, logPath string, held []laneRecord, poison laneRecord) {
	t.Helper()
	isHeld := map[string]bool{}
	for _, r := range held {
		isHeld[r.payload] = true
	}
	for _, b := range batchLog(t, logPath) {
		withPoison := false
		for _, p := range b {
			withPoison = withPoison || p == poison.payload
		}
		for _, p := range b {
			if isHeld[p] && !withPoison {
				t.Fatalf("%s (behind the failing poison in its lane) reached the function without it: batch %v", p, b)
			}
		}
	}
}

// rewriteSpec replaces the gateway's spec file; the local catalog reloads
// it and the engine restarts the mapping with the new settings.
func rewriteSpec(t *testing.T, g *gateway, spec string) {
	t.Helper()
	path := filepath.Join(g.specDir, "nimbus.hcl")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
}

func TestKafkaLanesKeepOrderPerKeyAndAFailingLaneHoldsTheCheckpoint(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"lanes": 2})
	body := `
    type   = "kafka"
    url    = "` + strings.Join(addrs, ",") + `"
    topics = ["lanes"]`
	logPath := filepath.Join(t.TempDir(), "batches.log")

	// Produce first, keyed (franz-go's default partitioner hashes keys).
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("lanes"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := laneRecords()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Key: []byte(r.key), Value: []byte(r.payload)}
	}
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	high := map[int32]int64{}
	var poison laneRecord
	for i, kr := range krs {
		recs[i].part, recs[i].offset = kr.Partition, kr.Offset
		high[kr.Partition] = max(high[kr.Partition], kr.Offset+1)
		if strings.Contains(recs[i].payload, "poison") {
			poison = recs[i]
		}
	}
	behind := func(r laneRecord) bool { return r.offset > poison.offset }

	g := startGatewayWith(t, laneSpec(t, logPath, body, -1), nil, fastSources)
	fails := failures(t, g, "consumer.failed")
	adm := kadm.NewClient(cl)
	commits := func() map[int32]int64 {
		resp, err := adm.FetchOffsets(ctx, "nimbus-consumer-orders")
		if err != nil {
			return nil
		}
		out := map[int32]int64{}
		resp.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.Topic == "lanes" {
				out[o.Partition] = o.At
			}
		})
		return out
	}

	held := laneOutcome(t, logPath, recs, poison, behind)
	other := 1 - poison.part
	eventually(t, 30*time.Second, func() bool {
		c := commits()
		return c[poison.part] == poison.offset && c[other] == high[other]
	}, "the poison's partition commits up to the poison, the other partition to its end")
	// The stuck lane still holds its records and the checkpoint: what is
	// behind the poison in its lane only ever came with the poison, and the
	// commit did not pass the poison.
	checkHeld(t, logPath, held, poison)
	if c := commits(); c[poison.part] != poison.offset {
		t.Fatalf("committed %d on the poison's partition, want %d (the poison's offset)", c[poison.part], poison.offset)
	}

	rewriteSpec(t, g, laneSpec(t, logPath, body, 1))
	laneRedelivered(t, logPath, recs, poison, behind)
	waitFailure(t, fails, "KafkaBatchInfo")
	eventually(t, 30*time.Second, func() bool {
		c := commits()
		return c[poison.part] == high[poison.part] && c[other] == high[other]
	}, "every partition committed to its end")
}

func TestRedisLanesKeepOrderPerKeyAndAFailingLaneHoldsTheAcks(t *testing.T) {
	url := redistest.Start(t)
	body := `
    type   = "redis"
    url    = "` + url + `"
    stream = "lanes"`
	logPath := filepath.Join(t.TempDir(), "batches.log")
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	defer rc.Close()
	ctx := context.Background()
	recs := laneRecords()
	var poison laneRecord
	poisonAt := 0
	for i := range recs {
		id, err := rc.XAdd(ctx, &goredis.XAddArgs{Stream: "lanes",
			Values: map[string]any{"data": recs[i].payload, redissource.KeyField: recs[i].key}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		recs[i].id, recs[i].offset = id, int64(i)
		if strings.Contains(recs[i].payload, "poison") {
			poison, poisonAt = recs[i], i
		}
	}
	behind := func(r laneRecord) bool { return r.offset > poison.offset }

	g := startGatewayWith(t, laneSpec(t, logPath, body, -1), nil, fastSources)
	fails := failures(t, g, "consumer.failed")
	pending := func() int64 {
		p, err := rc.XPending(ctx, "lanes", "nimbus-consumer-orders").Result()
		if err != nil {
			return -1
		}
		return p.Count
	}

	held := laneOutcome(t, logPath, recs, poison, behind)
	// Acks stop at the poison: it and every entry behind it stay pending
	// (delivered, not acknowledged), whichever lane finished them.
	eventually(t, 30*time.Second, func() bool { return pending() == int64(len(recs)-poisonAt) },
		"the entries from the poison on stay pending, everything before it is acknowledged")
	checkHeld(t, logPath, held, poison)

	rewriteSpec(t, g, laneSpec(t, logPath, body, 1))
	laneRedelivered(t, logPath, recs, poison, behind)
	waitFailure(t, fails, "RedisBatchInfo")
	eventually(t, 30*time.Second, func() bool { return pending() == 0 }, "every entry acknowledged")
}
