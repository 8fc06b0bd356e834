package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/kafkatest"
	"github.com/nimbus-fn/nimbus/internal/redistest"
)

// blueprintUnderDev scaffolds blueprint with the nimbus CLI as a user
// would (nimbus init --blueprint … DIR, the function named after DIR),
// points its broker variable's default at a test broker (replacing
// oldDefault by newDefault, which must occur once; "" changes nothing) and
// serves it with nimbus dev. The function's log lines reach nimbus dev's
// stderr.
func blueprintUnderDev(t *testing.T, blueprint, name, oldDefault, newDefault string) *nimbusProc {
	t.Helper()
	bin := nimbusOnce(t)
	dir := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command(bin, "init", "--blueprint", blueprint, dir).CombinedOutput(); err != nil {
		t.Fatalf("nimbus init: %v\n%s", err, out)
	}
	if oldDefault == "" {
		return startNimbusProc(t, exec.Command(bin, "dev", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir(), dir))
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
// redis-server. Of three entries the first is processed; the second fails,
// so the function names it and the third (the stream is ordered): both are
// retried until the retries run out and then given up together, the third
// never having run ahead of the second.
func TestRedisConsumerBlueprintUnderDev(t *testing.T) {
	url := redistest.Start(t)
	dev := blueprintUnderDev(t, "redis-consumer-go", "orders", `"redis://127.0.0.1:6379/0"`, fmt.Sprintf("%q", url))
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
		{"kind": "ping"}, // no order: the function fails on it
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
	givenUp := regexp.MustCompile(`discarding records: function=orders .*condition=RetryAttemptsExhausted records=2`)
	// The first run builds the function (go build), so allow for that.
	gatewaytest.Eventually(t, 3*time.Minute, func() bool { return givenUp.MatchString(dev.stderr.String()) },
		"the failing entry and the one behind it are given up; stderr:\n%s", dev.stderr)
	log := dev.stderr.String()
	if strings.Count(log, good) != 1 || strings.Count(log, bad) != 6 { // the first try and maximum_retry_attempts = 5
		t.Fatalf("want %q once and %q 6 times; stderr:\n%s", good, bad, log)
	}
	if strings.Contains(log, "order r-2") {
		t.Fatalf("the entry behind the failing one ran ahead of it:\n%s", log)
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
	dev := blueprintUnderDev(t, "kafka-consumer-go", "orders", `"127.0.0.1:9092"`, fmt.Sprintf("%q", strings.Join(addrs, ",")))
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

// TestURLBlueprintsUnderDev calls the http-api-go and streaming-go
// blueprints through their function URLs under nimbus dev: routing, JSON,
// cookies both ways and the CORS block of the spec; an NDJSON stream.
func TestURLBlueprintsUnderDev(t *testing.T) {
	t.Run("http-api-go", func(t *testing.T) {
		dev := blueprintUnderDev(t, "http-api-go", "notes", "", "")
		base := dev.endpoint + "/url/notes"
		const origin = "http://localhost:3000" // the blueprint's allow_origins
		post := mustRequest("POST", base+"/notes")
		post.Body = io.NopCloser(strings.NewReader(`{"text":"buy milk"}`))
		post.Header.Set("Content-Type", "application/json")
		post.Header.Set("Origin", origin)
		resp := mustDo(t, post)
		if resp.StatusCode != 201 || string(resp.body) != `{"id":"1","text":"buy milk"}` ||
			resp.Header.Get("Location") != "/notes/1" ||
			resp.Header.Get("Access-Control-Allow-Origin") != origin || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("POST /notes: %d %s %v\n%s", resp.StatusCode, resp.body, resp.Header, dev.stderr)
		}
		if c := resp.Cookies(); len(c) != 1 || c[0].Name != "last_note" || c[0].Value != "1" || !c[0].HttpOnly {
			t.Fatalf("cookies %v", resp.Header.Values("Set-Cookie"))
		}
		get := mustRequest("GET", base+"/me")
		get.AddCookie(&http.Cookie{Name: "session", Value: "abc123"})
		if resp := mustDo(t, get); resp.StatusCode != 200 || string(resp.body) != `{"session":"abc123"}` {
			t.Fatalf("GET /me: %d %s", resp.StatusCode, resp.body)
		}
		if resp := mustDo(t, mustRequest("GET", base+"/notes/9")); resp.StatusCode != 404 {
			t.Fatalf("GET /notes/9: %d %s", resp.StatusCode, resp.body)
		}
		pre := mustRequest("OPTIONS", base+"/notes/1")
		pre.Header.Set("Origin", origin)
		pre.Header.Set("Access-Control-Request-Method", "DELETE")
		resp = mustDo(t, pre)
		if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "DELETE") {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		other := mustRequest("GET", base+"/notes")
		other.Header.Set("Origin", "https://evil.example")
		if resp := mustDo(t, other); resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("an origin outside allow_origins got %v", resp.Header)
		}
	})
	t.Run("streaming-go", func(t *testing.T) {
		dev := blueprintUnderDev(t, "streaming-go", "stream", "", "")
		resp := mustDo(t, mustRequest("GET", dev.endpoint+"/url/stream/?items=3"))
		want := "{\"item\":1,\"of\":3}\n{\"item\":2,\"of\":3}\n{\"item\":3,\"of\":3}\n{\"done\":true}\n"
		if resp.StatusCode != 200 || string(resp.body) != want || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%d %q %v\n%s", resp.StatusCode, resp.body, resp.Header, dev.stderr)
		}
		if resp := mustDo(t, mustRequest("GET", dev.endpoint+"/url/stream/?items=0")); resp.StatusCode != 400 {
			t.Fatalf("items=0: %d %s", resp.StatusCode, resp.body)
		}
	})
}

// natsLine is nimbus dev's line with its embedded NATS server's URL.
var natsLine = regexp.MustCompile(`(?m)^NATS:\s+(nats://\S+)`)

// TestNATSConsumerBlueprintUnderDev runs the nats-consumer-go blueprint,
// unchanged, under nimbus dev: it reads the ORDERS stream of the embedded
// NATS server; a good message is processed, a bad one is reported by its
// stream sequence and retried until the retries run out.
func TestNATSConsumerBlueprintUnderDev(t *testing.T) {
	dev := blueprintUnderDev(t, "nats-consumer-go", "orders", "", "")
	var url string
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		m := natsLine.FindStringSubmatch(dev.stdout.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	}, "nimbus dev prints its NATS URL; stdout:\n%s", dev.stdout)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, m := range []struct{ subject, data string }{
		{"orders.eu", `{"order_id":"n-1","amount":4}`},
		{"orders.eu", `{"order_id":"n-2"}`},
		{"orders.us", `{"order_id":"n-3","amount":9.5}`},
	} {
		ack, err := js.Publish(ctx, m.subject, []byte(m.data))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	want := []string{
		fmt.Sprintf("order n-1: 4.00 (orders.eu #%d)", seqs[0]),
		fmt.Sprintf("orders.eu #%d: order needs an order_id and a positive amount", seqs[1]),
		fmt.Sprintf("order n-3: 9.50 (orders.us #%d)", seqs[2]),
	}
	gatewaytest.Eventually(t, 3*time.Minute, func() bool {
		log := dev.stderr.String()
		for _, w := range want {
			if !strings.Contains(log, w) {
				return false
			}
		}
		return strings.Count(log, want[1]) == 6 // the first try and maximum_retry_attempts = 5
	}, "the function logs %q, the failure 6 times; stderr:\n%s", want, dev.stderr)
}
