package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/internal/kafkatest"
	"github.com/nimbus-fn/nimbus/internal/rabbittest"
	"github.com/nimbus-fn/nimbus/internal/redistest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// consumerSpec is a function running internal/testfn/batch (a real
// aws-lambda-go binary) with the given event_source blocks; it logs every
// batch it gets to logPath and reports records containing "poison" in
// batchItemFailures.
func consumerSpec(t *testing.T, logPath, sourceBlocks string) string {
	t.Helper()
	return `
function "consumer" {
  runtime = "provided.al2023"
  timeout = "10s"
  code { dir = "` + testfn.Dir(t, "batch") + `" }
  environment = {
    BATCH_LOG    = "` + testfn.LogURL(t, logPath) + `"
    BATCH_REPORT = "1"
  }
` + sourceBlocks + `
}
`
}

// fastSources retries in milliseconds so failure paths finish quickly.
func fastSources(d *server.Deps) {
	d.SourceOptions = sources.Options{ReconcileInterval: 200 * time.Millisecond, PollWait: 100 * time.Millisecond,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, LagInterval: 500 * time.Millisecond}
}

// batchLog reads the payload batches the function logged.
func batchLog(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var b []string
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			continue // a line being written
		}
		out = append(out, b)
	}
	return out
}

func flatten(b [][]string) []string {
	var out []string
	for _, x := range b {
		out = append(out, x...)
	}
	return out
}

// firstSeen keeps the first occurrence of each payload, in order.
func firstSeen(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range list {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// statusOf reads one mapping's status from the gateway's status API.
func statusOf(t *testing.T, g *gateway, function string) []sources.Status {
	t.Helper()
	var list struct {
		EventSourceMappings []sources.Status `json:"EventSourceMappings"`
	}
	if code := signedStatus(t, g, server.EventSourcesPath+"?function="+function, &list); code != 200 {
		t.Fatalf("GET %s: %d", server.EventSourcesPath, code)
	}
	return list.EventSourceMappings
}

// failures subscribes to the NATS subject on_failure records go to.
func failures(t *testing.T, g *gateway, subject string) <-chan map[string]any {
	t.Helper()
	ch := make(chan map[string]any, 100)
	sub, err := g.srv.NATS().Conn.Subscribe(subject, func(m *nats.Msg) {
		var v map[string]any
		if json.Unmarshal(m.Data, &v) == nil {
			ch <- v
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

// mixedStream is the sequence every consumer test produces: the orders,
// two records no filter matches and one the function reports failed.
func mixedStream(want []string) []string {
	var out []string
	for i, p := range want {
		out = append(out, p)
		switch i {
		case 5, 17:
			out = append(out, `{"kind":"noise"}`)
		case 11:
			out = append(out, `{"kind":"poison"}`)
		}
	}
	return out
}

func orderPayloads(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"kind":"order","id":"%s%03d"}`, prefix, i)
	}
	return out
}

// checkConsumer asserts the common outcome: every order in order, the
// noise filtered out, the poison record reported, retried and finally sent
// to on_failure with the batch info key.
func checkConsumer(t *testing.T, g *gateway, logPath string, want []string, infoKey string, fails <-chan map[string]any) {
	t.Helper()
	eventually(t, 60*time.Second, func() bool {
		got := firstSeen(flatten(batchLog(t, logPath)))
		n := 0
		for _, p := range got {
			if strings.Contains(p, `"order"`) {
				n++
			}
		}
		return n >= len(want)
	}, "every order reaches the function")
	var orders []string
	for _, p := range firstSeen(flatten(batchLog(t, logPath))) {
		if strings.Contains(p, `"order"`) {
			orders = append(orders, p)
		}
		if strings.Contains(p, "noise") {
			t.Fatalf("a record no filter matches reached the function: %s", p)
		}
	}
	if !slices.Equal(orders, want) {
		t.Fatalf("orders in the function's order:\n got %v\nwant %v", orders, want)
	}
	select {
	case rec := <-fails:
		rc, _ := rec["requestContext"].(map[string]any)
		if rc["condition"] != sources.ConditionRetriesExhausted || rec[infoKey] == nil {
			t.Fatalf("failure record %v", rec)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no failure record for the poison record")
	}
	eventually(t, 10*time.Second, func() bool {
		st := statusOf(t, g, "consumer")
		// The poison record and, when its last retry's batch held records
		// behind it, those too (the checkpoint stays before the lowest
		// failed record, as Lambda's).
		return len(st) == 1 && st[0].RecordsFiltered == 2 && st[0].RecordsFailed >= 1 && st[0].FunctionErrors >= 2
	}, "status counts filtered, failed and function errors")
}

const sourceTail = `
    batch_size                 = 4
    maximum_retry_attempts     = 1
    report_batch_item_failures = true
    filters                    = [{ data = { kind = ["order", "poison"] } }]
    on_failure { nats = "consumer.failed" }
`

// startConsumer serves the consumer function with one event_source
// "orders" block of the given body and subscribes to its on_failure
// subject.
func startConsumer(t *testing.T, body string) (g *gateway, logPath string, fails <-chan map[string]any) {
	t.Helper()
	logPath = filepath.Join(t.TempDir(), "batches.log")
	g = startGatewayWith(t, consumerSpec(t, logPath, `
  event_source "orders" {`+body+`  }`), nil, fastSources)
	return g, logPath, failures(t, g, "consumer.failed")
}

func TestRedisStreamDrivesAFunction(t *testing.T) {
	url := redistest.Start(t)
	g, logPath, fails := startConsumer(t, `
    type              = "redis"
    url               = "`+url+`"
    stream            = "orders"
    starting_position = "TRIM_HORIZON"
`+sourceTail)
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	defer rc.Close()
	want := orderPayloads("r", 30)
	ctx := context.Background()
	for _, p := range mixedStream(want) {
		if err := rc.XAdd(ctx, &goredis.XAddArgs{Stream: "orders", Values: map[string]any{"data": p}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	checkConsumer(t, g, logPath, want, "RedisBatchInfo", fails)
	eventually(t, 10*time.Second, func() bool {
		p, err := rc.XPending(ctx, "orders", "nimbus-consumer-orders").Result()
		return err == nil && p.Count == 0
	}, "every entry acknowledged, the poison one too")
}

func TestNATSStreamDrivesAFunction(t *testing.T) {
	g, logPath, fails := startConsumer(t, `
    type              = "nats"
    stream            = "ORDERS"
    subject           = "orders.>"
    starting_position = "TRIM_HORIZON"
`+sourceTail)
	js, err := jetstream.New(g.srv.NATS().Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	want := orderPayloads("n", 30)
	for _, p := range mixedStream(want) {
		if _, err := js.Publish(ctx, "orders.eu", []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	checkConsumer(t, g, logPath, want, "NATSBatchInfo", fails)
}

func TestKafkaTopicDrivesAFunction(t *testing.T) {
	addrs := kafkatest.Start(t, map[string]int32{"orders": 1})
	g, logPath, fails := startConsumer(t, `
    type                    = "kafka"
    url                     = "`+strings.Join(addrs, ",")+`"
    topics                  = ["orders"]
    starting_position       = "TRIM_HORIZON"
    maximum_batching_window = "0s"
`+strings.Replace(sourceTail, "data = {", "value = {", 1))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := orderPayloads("k", 30)
	var recs []*kgo.Record
	for _, p := range mixedStream(want) {
		recs = append(recs, &kgo.Record{Value: []byte(p)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	checkConsumer(t, g, logPath, want, "KafkaBatchInfo", fails)
}

// TestScheduleInvokesThroughTheAsyncQueue fires a per-second schedule and
// sees the function invoked with EventBridge's scheduled event.
func TestScheduleInvokesThroughTheAsyncQueue(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "batches.log")
	g := startGatewayWith(t, `
function "tick" {
  runtime = "provided.al2023"
  code { dir = "`+testfn.Dir(t, "batch")+`" }
  environment = { BATCH_LOG = "`+testfn.LogURL(t, logPath)+`" }
  event_source "every-second" {
    type     = "schedule"
    schedule = "* * * * * * *"
  }
}
`, nil, fastSources)
	eventually(t, 30*time.Second, func() bool { return len(batchLog(t, logPath)) >= 2 }, "two ticks invoked the function")
	st := statusOf(t, g, "tick")
	if len(st) != 1 || st[0].Batches < 2 || st[0].Spec.Type != "schedule" {
		t.Fatalf("status %+v", st)
	}
}

// TestEventSourceMappingAPIWithTheSDK creates a mapping with aws-sdk-go-v2
// against the dev gateway; records then flow to the function, and a
// disabled mapping stops reading.
func TestEventSourceMappingAPIWithTheSDK(t *testing.T) {
	url := redistest.Start(t)
	logPath := filepath.Join(t.TempDir(), "batches.log")
	g := startGatewayWith(t, consumerSpec(t, logPath, ""), nil, func(d *server.Deps) {
		fastSources(d)
		b, err := versions.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		d.MappingBackend = b
	})
	c := lambda.New(lambda.Options{Region: e2eRegion, BaseEndpoint: aws.String(g.base),
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, "")})
	ctx := context.Background()
	out, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		FunctionName:     aws.String("consumer"),
		EventSourceArn:   aws.String(url + "?stream=api"),
		BatchSize:        aws.Int32(2),
		StartingPosition: types.EventSourcePositionTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := goredis.ParseURL(url)
	rc := goredis.NewClient(opt)
	defer rc.Close()
	for _, p := range orderPayloads("a", 5) {
		rc.XAdd(ctx, &goredis.XAddArgs{Stream: "api", Values: map[string]any{"data": p}})
	}
	eventually(t, 30*time.Second, func() bool { return len(flatten(batchLog(t, logPath))) >= 5 }, "API mapping delivers")
	got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: out.UUID})
	if err != nil || aws.ToString(got.State) != "Enabled" || aws.ToString(got.LastProcessingResult) != sources.ResultOK {
		t.Fatalf("GetEventSourceMapping = %+v, %v", got, err)
	}
	if _, err := c.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: out.UUID, Enabled: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: out.UUID})
		return err == nil && aws.ToString(got.State) == "Disabled"
	}, "mapping disabled")
	rc.XAdd(ctx, &goredis.XAddArgs{Stream: "api", Values: map[string]any{"data": `{"kind":"order","id":"after"}`}})
	if _, err := c.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: out.UUID}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(flatten(batchLog(t, logPath)), `{"kind":"order","id":"after"}`) {
		t.Fatal("a disabled mapping delivered a record")
	}
	// Unsigned management calls are refused like unsigned invokes.
	anon := lambda.New(lambda.Options{Region: e2eRegion, BaseEndpoint: aws.String(g.base), Credentials: aws.AnonymousCredentials{}})
	if _, err := anon.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{}); err == nil {
		t.Fatal("an unsigned ListEventSourceMappings was answered")
	}
}

func TestRabbitMQQueueDrivesAFunction(t *testing.T) {
	url := rabbittest.Start(t)
	rabbittest.DeclareQueue(t, url, "orders", rabbittest.Quorum)
	g, logPath, fails := startConsumer(t, `
    type                    = "rabbitmq"
    url                     = "`+url+`"
    queue                   = "orders"
    maximum_batching_window = "0s"
`+sourceTail)
	want := orderPayloads("q", 30)
	var msgs []amqp.Publishing
	for i, p := range mixedStream(want) {
		msgs = append(msgs, amqp.Publishing{MessageId: fmt.Sprintf("m%03d", i), ContentType: "application/json", Body: []byte(p)})
	}
	rabbittest.Publish(t, url, "orders", msgs...)
	// One batch at a time (RabbitMQ's default concurrency of 1): order holds.
	checkConsumer(t, g, logPath, want, "RabbitMQBatchInfo", fails)
}

// TestABrokerThatIsDownShowsInTheMappingAndHarmsNothingElse points a
// mapping at a Redis that is not there: the mapping reports the problem,
// keeps retrying, and the gateway keeps serving other calls.
func TestABrokerThatIsDownShowsInTheMappingAndHarmsNothingElse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	logPath := filepath.Join(t.TempDir(), "batches.log")
	g := startGatewayWith(t, consumerSpec(t, logPath, `
  event_source "orders" {
    type   = "redis"
    url    = "redis://`+dead+`"
    stream = "orders"
  }`)+`
function "echo" {
  runtime = "provided.al2023"
  code { dir = "`+testfn.Dir(t, "echo")+`" }
}
`, nil, fastSources)
	eventually(t, 30*time.Second, func() bool {
		st := statusOf(t, g, "consumer")
		return len(st) == 1 && strings.HasPrefix(st[0].LastProcessingResult, sources.ResultProblem) &&
			strings.Contains(st[0].LastError, dead) && st[0].State == sources.StateEnabled
	}, "the mapping to report the unreachable broker")
	out, err := lambdaFor(g).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"ok":1}`)})
	if err != nil || string(out.Payload) != `{"ok":1}` {
		t.Fatalf("another function while a broker is down: %v %s", err, out.Payload)
	}
}

// TestAWSCLIManagesEventSourceMappings runs the AWS CLI, when it is on
// PATH, against the dev gateway's event-source-mapping API.
func TestAWSCLIManagesEventSourceMappings(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not on PATH")
	}
	url := redistest.Start(t)
	logPath := filepath.Join(t.TempDir(), "batches.log")
	g := startGatewayWith(t, consumerSpec(t, logPath, ""), nil, func(d *server.Deps) {
		fastSources(d)
		b, err := versions.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		d.MappingBackend = b
	})
	run := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(awsBin, append([]string{"lambda", "--endpoint-url", g.base, "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+e2eAccessKey, "AWS_SECRET_ACCESS_KEY="+e2eSecretKey,
			"AWS_DEFAULT_REGION="+e2eRegion, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var v map[string]any
		if len(out) > 0 {
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		return v
	}
	created := run("create-event-source-mapping", "--function-name", "consumer",
		"--event-source-arn", url+"?stream=cli", "--batch-size", "3", "--starting-position", "TRIM_HORIZON")
	id, _ := created["UUID"].(string)
	if id == "" || created["BatchSize"].(float64) != 3 {
		t.Fatalf("create-event-source-mapping answered %v", created)
	}
	list := run("list-event-source-mappings", "--function-name", "consumer")
	if ms, _ := list["EventSourceMappings"].([]any); len(ms) != 1 {
		t.Fatalf("list-event-source-mappings answered %v", list)
	}
	opt, _ := goredis.ParseURL(url)
	rc := goredis.NewClient(opt)
	defer rc.Close()
	rc.XAdd(context.Background(), &goredis.XAddArgs{Stream: "cli", Values: map[string]any{"data": `{"kind":"order","id":"cli"}`}})
	eventually(t, 30*time.Second, func() bool {
		return slices.Contains(flatten(batchLog(t, logPath)), `{"kind":"order","id":"cli"}`)
	}, "the CLI-created mapping delivers")
	run("delete-event-source-mapping", "--uuid", id)
}
