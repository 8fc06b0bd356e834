package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/nimbus-fn/nimbus/internal/redistest"
)

func init() {
	templateCases["rest-api-redis"] = templateCase{setup: restAPISetup, verify: restAPIVerify}
}

// restAPISetup starts a real redis-server; the pipeline's tests and the
// deployed functions both use it.
func restAPISetup(t *testing.T) map[string]string {
	return map[string]string{"REDIS_URL": redistest.Start(t)}
}

// restAPIVerify creates an item through demo-create:live (a signed Invoke
// with a function URL event), reads it back through demo-get's function
// URL (public, unsigned) and finds it in the Redis hash the spec names.
func restAPIVerify(t *testing.T, g *versionsGateway, _ string, env map[string]string, live map[string]string) {
	ev := `{"version":"2.0","rawPath":"/","body":"{\"name\":\"tea\",\"data\":{\"qty\":2}}","isBase64Encoded":false,` +
		`"requestContext":{"http":{"method":"POST","path":"/"}}}`
	var created struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if err := json.Unmarshal(invokeLive(t, g, "demo-create", live["demo-create"], []byte(ev)), &created); err != nil || created.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %+v", err, created)
	}
	var item struct{ ID, Name string }
	if err := json.Unmarshal([]byte(created.Body), &item); err != nil || item.ID == "" || item.Name != "tea" {
		t.Fatalf("created item: %v %s", err, created.Body)
	}
	resp, err := http.Get(g.base + "/url/demo-get/?id=" + item.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct{ ID, Name string }
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusOK || got.ID != item.ID || got.Name != "tea" {
		t.Fatalf("GET demo-get's URL: %d %s", resp.StatusCode, body)
	}
	// demo-delete's URL is AWS_IAM: unsigned, it is refused.
	req, _ := http.NewRequest(http.MethodDelete, g.base+"/url/demo-delete/?id="+item.ID, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned DELETE on an AWS_IAM URL: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	opts, err := redis.ParseURL(env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	raw, err := rdb.HGet(context.Background(), "demo:items", item.ID).Result()
	if err != nil || !json.Valid([]byte(raw)) {
		t.Fatalf("the item in Redis hash demo:items: %v %q", err, raw)
	}
}

func init() {
	templateCases["queue-pipeline"] = templateCase{setup: queuePipelineSetup, verify: queuePipelineVerify,
		// The gateway's own NATS (async queue, destinations) is the same
		// server, so the on_failure record can be read from it.
		gatewayConf: func(b map[string]string) string {
			return fmt.Sprintf("\nqueue {\n  nats_url      = %q\n  nats_insecure = true\n}\n", b["NATS_URL"])
		}}
}

// queuePipelineSetup runs a real NATS server with JetStream.
func queuePipelineSetup(t *testing.T) map[string]string {
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return map[string]string{"NATS_URL": s.ClientURL()}
}

// queuePipelineVerify posts two orders through demo-ingest:live: the one
// the processor can price comes out on demo.orders.processed with its
// total; the one it cannot is retried and then reaches the on_failure
// destination demo.orders.failed with the batch's coordinates.
func queuePipelineVerify(t *testing.T, g *versionsGateway, _ string, env map[string]string, live map[string]string) {
	nc, err := nats.Connect(env["NATS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	processed, err := nc.SubscribeSync("demo.orders.processed")
	if err != nil {
		t.Fatal(err)
	}
	failed, err := nc.SubscribeSync("demo.orders.failed")
	if err != nil {
		t.Fatal(err)
	}
	post := func(order string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"version": "2.0", "rawPath": "/", "body": order,
			"requestContext": map[string]any{"http": map[string]string{"method": "POST", "path": "/"}}})
		var r struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		if err := json.Unmarshal(invokeLive(t, g, "demo-ingest", live["demo-ingest"], b), &r); err != nil || r.StatusCode != http.StatusAccepted {
			t.Fatalf("ingest %s: %v %+v", order, err, r)
		}
	}
	// Order ids are per version: ingest makes the id the JetStream message
	// id, so a second push's check posting the same ids would be dropped as
	// duplicates (which is what ingest promises producers).
	good, bad := "o-1-v"+live["demo-ingest"], "o-2-v"+live["demo-ingest"]
	post(`{"id":"` + good + `","customer":"ann","items":[{"sku":"tea","qty":2},{"sku":"cake","qty":1}]}`)
	post(`{"id":"` + bad + `","customer":"bob","items":[{"sku":"caviar","qty":1}]}`)

	msg, err := processed.NextMsg(60 * time.Second)
	if err != nil {
		t.Fatalf("no processed order on demo.orders.processed: %v\n%s", err, g.stderr)
	}
	var p struct {
		ID         string `json:"id"`
		TotalCents int    `json:"total_cents"`
	}
	if err := json.Unmarshal(msg.Data, &p); err != nil || p.ID != good || p.TotalCents != 1200 {
		t.Fatalf("processed: %s", msg.Data)
	}
	msg, err = failed.NextMsg(120 * time.Second)
	if err != nil {
		t.Fatalf("no on_failure record on demo.orders.failed: %v\n%s", err, g.stderr)
	}
	if !strings.Contains(string(msg.Data), "NATSBatchInfo") || !strings.Contains(string(msg.Data), "demo-orders") {
		t.Fatalf("on_failure record: %s", msg.Data)
	}
	if m, err := processed.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("the unpriceable order was processed: %s", m.Data)
	}
}

func init() {
	templateCases["scheduled-report"] = templateCase{setup: scheduledReportSetup, verify: scheduledReportVerify,
		gatewayConf: func(b map[string]string) string {
			return fmt.Sprintf("\nqueue {\n  nats_url      = %q\n  nats_insecure = true\n}\n", b["NATS_URL"])
		}}
}

// scheduledReportSetup: a real NATS for the gateway (so the destination
// can be read), one healthy URL and one nothing listens on, and a schedule
// of every two seconds instead of the daily default.
func scheduledReportSetup(t *testing.T) map[string]string {
	env := queuePipelineSetup(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	t.Cleanup(up.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/"
	l.Close()
	env["CHECK_URLS"] = up.URL + "/," + down
	env["REPORT_SCHEDULE"] = "*/2 * * * * *"
	return env
}

// scheduledReportVerify runs demo-report:live directly, then waits for a
// tick of the schedule to deliver a report to the on_success destination.
func scheduledReportVerify(t *testing.T, g *versionsGateway, _ string, env map[string]string, live map[string]string) {
	nc, err := nats.Connect(env["NATS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reports, err := nc.SubscribeSync("demo.reports")
	if err != nil {
		t.Fatal(err)
	}
	type report struct {
		EventID string   `json:"event_id"`
		Checked int      `json:"checked"`
		Healthy int      `json:"healthy"`
		Failing []string `json:"failing"`
	}
	down := env["CHECK_URLS"][strings.IndexByte(env["CHECK_URLS"], ',')+1:]
	var r report
	out := invokeLive(t, g, "demo-report", live["demo-report"], []byte(`{"detail-type":"Scheduled Event","id":"e2e-1","time":"2026-03-15T07:00:00Z"}`))
	if err := json.Unmarshal(out, &r); err != nil || r.EventID != "e2e-1" || r.Checked != 2 || r.Healthy != 1 || len(r.Failing) != 1 || r.Failing[0] != down {
		t.Fatalf("report: %v %s", err, out)
	}
	msg, err := reports.NextMsg(60 * time.Second)
	if err != nil {
		t.Fatalf("no report on the on_success destination demo.reports: %v\n%s", err, g.stderr)
	}
	var rec struct {
		RequestContext struct {
			Condition string `json:"condition"`
		} `json:"requestContext"`
		ResponsePayload report `json:"responsePayload"`
	}
	if err := json.Unmarshal(msg.Data, &rec); err != nil || rec.RequestContext.Condition != "Success" || rec.ResponsePayload.Checked != 2 || rec.ResponsePayload.Healthy != 1 {
		t.Fatalf("on_success record: %v %s", err, msg.Data)
	}
}
