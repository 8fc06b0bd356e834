package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/blueprints"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/internal/kafkatest"
	"github.com/nimbus-fn/nimbus/internal/redistest"
)

// The Python and Node consumer blueprints, scaffolded as `nimbus init`
// writes them and served by a gateway with their own spec, against real
// brokers: a good record, a bad one, another good one. The function must
// name what it did not handle in batchItemFailures, in the form the source
// accepts (otherwise the whole batch would fail from its first record), and
// after the spec's retries exactly those records' coordinates reach the
// spec's on_failure destination. On the ordered sources (Redis, Kafka) the
// handler stops at the bad record, so the record behind it is given up with
// it rather than counted as handled; the NATS one handles the rest and
// names the bad record alone.

// scaffoldConsumer writes blueprint name as function "consumer" and
// returns its spec with each of replace's old strings (each must occur
// exactly once) replaced, and the code dir made absolute.
func scaffoldConsumer(t *testing.T, name string, replace map[string]string) string {
	t.Helper()
	var interp string
	switch {
	case strings.HasSuffix(name, "-python"):
		interp = "python3"
	case strings.HasSuffix(name, "-node"):
		interp = "node"
	}
	if _, err := exec.LookPath(interp); err != nil {
		t.Skipf("%s is not on PATH: %s is not run", interp, name)
	}
	dir := filepath.Join(t.TempDir(), "consumer")
	if err := blueprints.Scaffold(name, dir, blueprints.Data{Name: "consumer"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "nimbus.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	replace[`dir = "."`] = `dir = "` + dir + `"`
	for old, repl := range replace {
		if n := strings.Count(spec, old); n != 1 {
			t.Fatalf("%s's spec has %q %d times, want once:\n%s", name, old, n, spec)
		}
		spec = strings.Replace(spec, old, repl, 1)
	}
	return spec
}

// waitFailure waits for one on_failure record and returns its batch info.
func waitFailure(t *testing.T, fails <-chan map[string]any, infoKey string) map[string]any {
	t.Helper()
	select {
	case rec := <-fails:
		rc, _ := rec["requestContext"].(map[string]any)
		info, _ := rec[infoKey].(map[string]any)
		if rc["condition"] != sources.ConditionRetriesExhausted || info == nil {
			t.Fatalf("failure record %v", rec)
		}
		return info
	case <-time.After(90 * time.Second):
		t.Fatal("no on_failure record for the bad record")
	}
	return nil
}

// wantFailed waits for the mapping's counts: all three records in and done
// (finished), failed of them given up.
func wantFailed(t *testing.T, g *gateway, failed int64) {
	t.Helper()
	last := &strings.Builder{}
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		st := statusOf(t, g, "consumer")
		b, _ := json.Marshal(st)
		last.Reset()
		last.Write(b)
		return len(st) == 1 && st[0].RecordsIn == 3 && st[0].RecordsDone == 3 && st[0].RecordsFailed == failed
	}, "3 records in and done, %d of them failed; last status %s", failed, last)
}

func TestScriptBlueprintsConsumeRedis(t *testing.T) {
	for _, name := range []string{"redis-consumer-python", "redis-consumer-node"} {
		t.Run(name, func(t *testing.T) {
			url := redistest.Start(t)
			spec := scaffoldConsumer(t, name, map[string]string{`"redis://127.0.0.1:6379/0"`: strconv.Quote(url)})
			opt, err := goredis.ParseURL(url)
			if err != nil {
				t.Fatal(err)
			}
			rc := goredis.NewClient(opt)
			defer rc.Close()
			ctx := context.Background()
			var ids []string
			for _, fields := range []map[string]any{
				{"kind": "payment", "data": `{"paymentId":"p1","amountCents":1250,"currency":"EUR"}`},
				{"kind": "payment", "data": `{"paymentId":"p2","amountCents":-3,"currency":"EUR"}`},
				{"kind": "refund", "paymentId": "p0", "amountCents": "400", "currency": "EUR"},
			} {
				id, err := rc.XAdd(ctx, &goredis.XAddArgs{Stream: "payments", Values: fields}).Result()
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			g := startGatewayWith(t, spec, nil, fastSources)
			fails := failures(t, g, "consumer.failed")
			info := waitFailure(t, fails, "RedisBatchInfo")
			if info["startId"] != ids[1] || info["endId"] != ids[2] {
				t.Fatalf("failure covers %v..%v, want the bad entry and the one behind it, %s..%s", info["startId"], info["endId"], ids[1], ids[2])
			}
			wantFailed(t, g, 2)
			eventually(t, 10*time.Second, func() bool {
				p, err := rc.XPending(ctx, "payments", "nimbus-consumer-payments").Result()
				return err == nil && p.Count == 0
			}, "every entry acknowledged")
		})
	}
}

func TestScriptBlueprintsConsumeNATS(t *testing.T) {
	for _, name := range []string{"nats-consumer-python", "nats-consumer-node"} {
		t.Run(name, func(t *testing.T) {
			spec := scaffoldConsumer(t, name, map[string]string{})
			g := startGatewayWith(t, spec, nil, fastSources)
			fails := failures(t, g, "consumer.failed")
			js, err := jetstream.New(g.srv.NATS().Conn)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TELEMETRY", Subjects: []string{"telemetry.>"}}); err != nil {
				t.Fatal(err)
			}
			var bad uint64
			for i, p := range []string{`{"sensor":"t-01","celsius":21.5}`, `{"sensor":"t-02","celsius":"warm"}`, `{"sensor":"t-07","celsius":38}`} {
				ack, err := js.Publish(ctx, "telemetry.berlin", []byte(p))
				if err != nil {
					t.Fatal(err)
				}
				if i == 1 {
					bad = ack.Sequence
				}
			}
			// The subject is ordered: the checkpoint stays before the bad
			// message, so when its retries run out the failure covers it
			// and, if it came in the same batch, the good one behind it
			// (as Lambda's range for a stream).
			info := waitFailure(t, fails, "NATSBatchInfo")
			last, _ := info["lastSequence"].(float64)
			if info["firstSequence"] != float64(bad) || (last != float64(bad) && last != float64(bad+1)) {
				t.Fatalf("failure covers %v..%v, want from the bad message %d to at most the one after it", info["firstSequence"], info["lastSequence"], bad)
			}
			wantFailed(t, g, int64(last)-int64(bad)+1)
		})
	}
}

func TestScriptBlueprintsConsumeKafka(t *testing.T) {
	for _, name := range []string{"kafka-consumer-python", "kafka-consumer-node"} {
		t.Run(name, func(t *testing.T) {
			addrs := kafkatest.Start(t, map[string]int32{"orders": 1, "orders-failed": 1})
			spec := scaffoldConsumer(t, name, map[string]string{`"127.0.0.1:9092"`: strconv.Quote(strings.Join(addrs, ","))})
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("orders"),
				kgo.ConsumeTopics("orders-failed"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			var recs []*kgo.Record
			for _, v := range []string{`{"orderId":"o1","amount":5}`, `not json`, `{"orderId":"o2","amount":7.5}`} {
				recs = append(recs, &kgo.Record{Key: []byte("k"), Value: []byte(v), Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("e2e")}}})
			}
			res := cl.ProduceSync(ctx, recs...)
			if err := res.FirstErr(); err != nil {
				t.Fatal(err)
			}
			badOffset := strconv.FormatInt(res[1].Record.Offset, 10)
			lastOffset := strconv.FormatInt(res[2].Record.Offset, 10)
			g := startGatewayWith(t, spec, nil, fastSources)

			fetchCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			var rec map[string]any
			for rec == nil {
				fs := cl.PollFetches(fetchCtx)
				if fetchCtx.Err() != nil {
					t.Fatal("no on_failure record on orders-failed")
				}
				fs.EachRecord(func(r *kgo.Record) {
					if rec == nil {
						_ = json.Unmarshal(r.Value, &rec)
					}
				})
			}
			info, _ := rec["KafkaBatchInfo"].(map[string]any)
			ri, _ := info["recordsInfo"].(map[string]any)
			part, _ := ri["orders-0"].(map[string]any)
			if part["firstRecordOffset"] != badOffset || part["lastRecordOffset"] != lastOffset {
				t.Fatalf("failure record %v, want the bad record and the one behind it, offsets %s..%s", rec, badOffset, lastOffset)
			}
			wantFailed(t, g, 2)
		})
	}
}
