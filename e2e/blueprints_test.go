package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/kafkatest"
	"github.com/nimbus-fn/nimbus/internal/redistest"
)

// blueprintUnderDev scaffolds blueprint with the nimbus CLI as a user
// would (nimbus init --blueprint … --name orders), points its broker
// variable's default at a test broker (replacing oldDefault by newDefault,
// which must occur once) and serves it with nimbus dev. The function's log
// lines reach nimbus dev's stderr.
func blueprintUnderDev(t *testing.T, blueprint, oldDefault, newDefault string) *nimbusProc {
	t.Helper()
	bin := nimbusOnce(t)
	dir := filepath.Join(t.TempDir(), "orders")
	if out, err := exec.Command(bin, "init", "--blueprint", blueprint, "--name", "orders", dir).CombinedOutput(); err != nil {
		t.Fatalf("nimbus init: %v\n%s", err, out)
	}
	specPath := filepath.Join(dir, "nimbus.hcl")
	spec, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(spec), oldDefault); n != 1 {
		t.Fatalf("%s: %q occurs %d times in nimbus.hcl:\n%s", blueprint, oldDefault, n, spec)
	}
	spec = []byte(strings.Replace(string(spec), oldDefault, newDefault, 1))
	if err := os.WriteFile(specPath, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	return startNimbusProc(t, exec.Command(bin, "dev", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir(), dir))
}

// TestRedisConsumerBlueprintUnderDev runs the redis-consumer-go blueprint,
// unchanged but for its Redis URL, under nimbus dev against a real
// redis-server: a good entry is processed, a bad one is reported and
// retried until its retries run out, and the entry behind it waits for
// that (the stream is ordered) and is processed afterwards.
func TestRedisConsumerBlueprintUnderDev(t *testing.T) {
	url := redistest.Start(t)
	dev := blueprintUnderDev(t, "redis-consumer-go", `"redis://127.0.0.1:6379/0"`, fmt.Sprintf("%q", url))
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	defer rc.Close()
	ctx := context.Background()
	var ids []string
	for _, values := range []map[string]any{
		{"data": `{"order_id":"r-1","amount":5}`},
		{"kind": "ping"}, // no order: the function reports it
		{"data": `{"order_id":"r-2","amount":7.5}`},
	} {
		id, err := rc.XAdd(ctx, &goredis.XAddArgs{Stream: "orders", Values: values}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	good := "order r-1: 5.00 (entry " + ids[0] + ")"
	bad := "entry " + ids[1] + ": order needs an order_id and a positive amount"
	after := "order r-2: 7.50 (entry " + ids[2] + ")"
	// The first run builds the function (go build), so allow for it.
	gatewaytest.Eventually(t, 3*time.Minute, func() bool { return strings.Contains(dev.stderr.String(), after) },
		"the entry after the failing one is processed once that one is given up; stderr:\n%s", dev.stderr)
	log := dev.stderr.String()
	if !strings.Contains(log, good) || strings.Count(log, bad) != 6 { // the first try and maximum_retry_attempts = 5
		t.Fatalf("want %q once and %q 6 times; stderr:\n%s", good, bad, log)
	}
	if strings.Index(log, after) < strings.LastIndex(log, bad) || strings.Count(log, after) != 1 {
		t.Fatalf("%q ran before the failing entry was given up, or more than once:\n%s", after, log)
	}
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		p, err := rc.XPending(ctx, "orders", "nimbus-orders-orders").Result()
		return err == nil && p.Count == 0
	}, "every entry acknowledged")
}

// TestKafkaConsumerBlueprintUnderDev runs the kafka-consumer-go blueprint
// under nimbus dev against a Kafka cluster (franz-go's kfake): both good
// records are processed and the bad one is named in batchItemFailures.
func TestKafkaConsumerBlueprintUnderDev(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"orders": 1})
	dev := blueprintUnderDev(t, "kafka-consumer-go", `"127.0.0.1:9092"`, fmt.Sprintf("%q", strings.Join(addrs, ",")))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := []*kgo.Record{
		{Key: []byte("k-1"), Value: []byte(`{"order_id":"k-1","amount":12.5}`)},
		{Key: []byte("k-2"), Value: []byte(`{"order_id":"k-2","amount":-1}`)},
		{Key: []byte("k-3"), Value: []byte(`{"order_id":"k-3","amount":3}`)},
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("order k-1: 12.50 (orders-0@%d)", recs[0].Offset),
		fmt.Sprintf("orders-0 offset %d: order needs an order_id and a positive amount", recs[1].Offset),
		fmt.Sprintf("order k-3: 3.00 (orders-0@%d)", recs[2].Offset),
	}
	gatewaytest.Eventually(t, 3*time.Minute, func() bool {
		log := dev.stderr.String()
		for _, w := range want {
			if !strings.Contains(log, w) {
				return false
			}
		}
		return true
	}, "the function logs %q; stderr:\n%s", want, dev.stderr)
}
