package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/internal/kafkatest"
	"github.com/nimbus-fn/nimbus/internal/redistest"
)

// killSource is one ordered broker for the kill test: the spec's
// event_source body, and a producer of record n on partition p.
type killSource struct {
	block   string
	produce func(t *testing.T, p, n int)
}

// TestOrderedSourcesSurvivePollerKill SIGKILLs the `nimbus dev` process
// running an ordered source's poller in the middle of a stream and starts
// it again: every record reaches the function (at least once), order per
// partition holds, and duplicates stay within one batch per partition.
func TestOrderedSourcesSurvivePollerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts nimbus dev per broker")
	}
	const (
		partitions = 2
		perPart    = 150
		batch      = 5
	)
	bin := buildNimbus(t)
	cases := map[string]func(t *testing.T) killSource{
		"redis": func(t *testing.T) killSource {
			url := redistest.Start(t)
			opt, _ := goredis.ParseURL(url)
			rc := goredis.NewClient(opt)
			t.Cleanup(func() { rc.Close() })
			return killSource{
				// One stream per partition: a Redis stream is the unit of order.
				block: fmt.Sprintf(`
  event_source "p0" {
    type = "redis"
    url = "%[1]s"
    stream = "s0"
    starting_position = "TRIM_HORIZON"
    batch_size = %[2]d
  }
  event_source "p1" {
    type = "redis"
    url = "%[1]s"
    stream = "s1"
    starting_position = "TRIM_HORIZON"
    batch_size = %[2]d
  }`, url, batch),
				produce: func(t *testing.T, p, n int) {
					if err := rc.XAdd(context.Background(), &goredis.XAddArgs{Stream: fmt.Sprintf("s%d", p),
						Values: map[string]any{"data": killPayload(p, n)}}).Err(); err != nil {
						t.Error(err)
					}
				},
			}
		},
		"kafka": func(t *testing.T) killSource {
			addrs := kafkatest.Start(t, map[string]int32{"events": partitions})
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("events"),
				kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			return killSource{
				block: fmt.Sprintf(`
  event_source "events" {
    type = "kafka"
    url = "%s"
    topics = ["events"]
    starting_position = "TRIM_HORIZON"
    batch_size = %d
    maximum_batching_window = "0s"
  }`, strings.Join(addrs, ","), batch),
				produce: func(t *testing.T, p, n int) {
					r := &kgo.Record{Partition: int32(p), Value: []byte(killPayload(p, n))}
					if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
						t.Error(err)
					}
				},
			}
		},
		"nats": func(t *testing.T) killSource {
			// A NATS server of its own: the gateway's embedded one would
			// die with the process under test.
			ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
			if err != nil {
				t.Fatal(err)
			}
			go ns.Start()
			if !ns.ReadyForConnections(10 * time.Second) {
				t.Fatal("nats server not ready")
			}
			t.Cleanup(ns.Shutdown)
			nc, err := nats.Connect(ns.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, _ := jetstream.New(nc)
			if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}}); err != nil {
				t.Fatal(err)
			}
			return killSource{
				block: fmt.Sprintf(`
  event_source "events" {
    type = "nats"
    url = "%s"
    stream = "EV"
    starting_position = "TRIM_HORIZON"
    batch_size = %d
  }`, ns.ClientURL(), batch),
				produce: func(t *testing.T, p, n int) {
					if _, err := js.Publish(context.Background(), fmt.Sprintf("ev.p%d", p), []byte(killPayload(p, n))); err != nil {
						t.Error(err)
					}
				},
			}
		},
	}
	for _, name := range []string{"redis", "kafka", "nats"} {
		t.Run(name, func(t *testing.T) {
			src := cases[name](t)
			dir := t.TempDir()
			logPath := filepath.Join(t.TempDir(), "batches.log")
			spec := consumerSpec(t, logPath, src.block)
			// Slow the function a little so the kill lands mid-stream.
			spec = strings.Replace(spec, `BATCH_REPORT = "1"`, `BATCH_REPORT = "1"
    BATCH_SLEEP_MS = "20"`, 1)
			if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), []byte(spec), 0o644); err != nil {
				t.Fatal(err)
			}
			state := t.TempDir()
			start := func() *nimbusProc {
				cmd := exec.Command(bin, "dev", "--listen", "127.0.0.1:0", "--log-level", "info", dir)
				cmd.Env = append(os.Environ(), "NIMBUS_STATE_DIR="+state)
				return startNimbusProc(t, cmd)
			}
			dev := start()
			var produced atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				// A steady rate, so the kill lands mid-stream.
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for n := range perPart {
					for p := range partitions {
						src.produce(t, p, n)
						produced.Add(1)
					}
					<-tick.C
				}
			}()
			eventually(t, 60*time.Second, func() bool { return len(flatten(batchLog(t, logPath))) >= 60 }, "records flowing before the kill")
			dev.kill()
			seenAtKill := len(flatten(batchLog(t, logPath)))
			<-done
			dev = start()
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("restarted nimbus dev's log:\n%s", dev.stderr)
				}
			})
			total := partitions * perPart
			eventually(t, 120*time.Second, func() bool { return len(firstSeen(flatten(batchLog(t, logPath)))) >= total },
				"every record delivered after the restart")
			all := flatten(batchLog(t, logPath))
			first := firstSeen(all)
			if len(first) != total {
				t.Fatalf("%d distinct records, want %d", len(first), total)
			}
			next := make([]int, partitions)
			for _, p := range first {
				var part, n int
				if _, err := fmt.Sscanf(p, `{"p":%d,"n":%d}`, &part, &n); err != nil {
					t.Fatalf("payload %q: %v", p, err)
				}
				if n != next[part] {
					var arrivals []string
					for i, q := range all {
						if strings.HasPrefix(q, fmt.Sprintf(`{"p":%d,`, part)) {
							mark := ""
							if i == seenAtKill {
								mark = "|KILL|"
							}
							arrivals = append(arrivals, mark+strings.TrimSuffix(strings.TrimPrefix(q, fmt.Sprintf(`{"p":%d,"n":`, part)), "}"))
						}
					}
					t.Fatalf("partition %d: record %d arrived where %d was due (order broken); arrivals: %s",
						part, n, next[part], strings.Join(arrivals, " "))
				}
				next[part]++
			}
			dups := len(all) - len(first)
			t.Logf("%s: %d records, %d seen before the kill, %d duplicates after the restart", name, total, seenAtKill, dups)
			if dups > batch*partitions {
				t.Fatalf("%d duplicates; at most one batch per partition (%d) may repeat", dups, batch*partitions)
			}
		})
	}
}

func killPayload(p, n int) string { return fmt.Sprintf(`{"p":%d,"n":%d}`, p, n) }
