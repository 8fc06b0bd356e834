package rabbitmq

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/hashicorp/go-hclog"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/internal/rabbittest"
)

func decodeEvent(t *testing.T, src *Source, recs []*sources.Record) events.RabbitMQEvent {
	t.Helper()
	raw, err := src.Event(recs)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	var ev events.RabbitMQEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event does not decode into events.RabbitMQEvent: %v\n%s", err, raw)
	}
	return ev
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestEventDecodesIntoRabbitMQEvent(t *testing.T) {
	srv := rabbittest.Shared(t)
	u := srv.VhostURL(rabbittest.ExtraVhost)
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	stamp := time.Date(2021, 6, 7, 20, 9, 10, 0, time.UTC)
	body := []byte(`{"order":42}`)
	rabbittest.Publish(t, u, q,
		amqp.Publishing{
			ContentType: "application/json", ContentEncoding: "utf-8",
			Headers: amqp.Table{
				"tenant": "acme", "attempt": int32(7), "flag": true,
				"nested": amqp.Table{"k": "é"}, "raw": []byte{0xff, 1},
			},
			DeliveryMode: amqp.Persistent, Priority: 5, CorrelationId: "corr-1", ReplyTo: "reply-q",
			Expiration: "60000", MessageId: "ev-1", Timestamp: stamp, Type: "order.created",
			UserId: rabbittest.User, AppId: "shop", Body: body,
		},
		amqp.Publishing{Body: []byte("body")},
	)
	src := open(t, u, q)
	recs := collect(t, src, 2)
	ev := decodeEvent(t, src, recs)

	wantARN := "arn:nimbus:mq:us-east-1:123456789012:broker:127.0.0.1:" + strconv.Itoa(srv.Port)
	if ev.EventSource != "aws:rmq" || ev.EventSourceARN != wantARN {
		t.Fatalf("eventSource %q eventSourceArn %q, want aws:rmq and %q", ev.EventSource, ev.EventSourceARN, wantARN)
	}
	key := q + "::" + rabbittest.ExtraVhost
	msgs, ok := ev.MessagesByQueue[key]
	if !ok || len(ev.MessagesByQueue) != 1 || len(msgs) != 2 {
		t.Fatalf("rmqMessagesByQueue %v, want 2 messages under %q", ev.MessagesByQueue, key)
	}
	m := msgs[0]
	p := m.BasicProperties
	str := func(s *string) string {
		if s == nil {
			return "<nil>"
		}
		return *s
	}
	if p.ContentType != "application/json" || str(p.ContentEncoding) != "utf-8" || p.DeliveryMode != 2 ||
		p.Priority != 5 || str(p.CorrelationID) != "corr-1" || str(p.ReplyTo) != "reply-q" ||
		p.Expiration != "60000" || str(p.MessageID) != "ev-1" || p.Timestamp != "Jun 7, 2021, 8:09:10 PM" ||
		str(p.Type) != "order.created" || p.UserID != rabbittest.User || str(p.AppID) != "shop" ||
		p.ClusterID != nil || p.BodySize != uint64(len(body)) {
		t.Errorf("basicProperties %+v", p)
	}
	wantHeaders := map[string]any{
		"tenant":  map[string]any{"bytes": []any{97.0, 99.0, 109.0, 101.0}},
		"attempt": 7.0,
		"flag":    true,
		"nested":  map[string]any{"k": map[string]any{"bytes": []any{-61.0, -87.0}}},
		"raw":     []any{-1.0, 1.0},
	}
	if !reflect.DeepEqual(p.Headers, wantHeaders) {
		t.Errorf("headers %#v\nwant %#v", p.Headers, wantHeaders)
	}
	if data, err := base64.StdEncoding.DecodeString(m.Data); err != nil || string(data) != string(body) || m.Redelivered {
		t.Errorf("data %q (%v) redelivered %v", m.Data, err, m.Redelivered)
	}

	// A message without properties has them all null, as Lambda writes it.
	raw, err := src.Event(recs[1:])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"eventSource":"aws:rmq","eventSourceArn":"` + wantARN + `","rmqMessagesByQueue":{"` + key + `":[` +
		`{"basicProperties":{"contentType":null,"contentEncoding":null,"headers":null,"deliveryMode":null,` +
		`"priority":null,"correlationId":null,"replyTo":null,"expiration":null,"messageId":null,"timestamp":null,` +
		`"type":null,"userId":null,"appId":null,"clusterId":null,"bodySize":4},"redelivered":false,"data":"Ym9keQ=="}]}}`
	if string(raw) != want {
		t.Errorf("event\n%s\nwant\n%s", raw, want)
	}

	k, info := src.BatchInfo(recs)
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	wantInfo := `{"queue":"` + q + `","virtualHost":"nimbus/test","batchSize":2,"messageIds":["ev-1","` + recs[1].ID + `"]}`
	if k != "RabbitMQBatchInfo" || string(b) != wantInfo {
		t.Errorf("BatchInfo = %s %s, want RabbitMQBatchInfo %s", k, b, wantInfo)
	}
	if _, err := src.Event(nil); err == nil {
		t.Error("Event of an empty batch succeeded")
	}
	done(t, src, recs)
}

func TestEventKeyForTheDefaultVhost(t *testing.T) {
	u := rabbittest.Start(t)
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Quorum)
	rabbittest.Publish(t, u, q, amqp.Publishing{MessageId: "k", Body: []byte("x")})
	src := open(t, u, q)
	recs := collect(t, src, 1)
	ev := decodeEvent(t, src, recs)
	if m := ev.MessagesByQueue[q+"::/"]; len(m) != 1 || *m[0].BasicProperties.MessageID != "k" {
		t.Fatalf("rmqMessagesByQueue %+v, want key %q", ev.MessagesByQueue, q+"::/")
	}
	done(t, src, recs)
}

func TestPasswordNeverLeaks(t *testing.T) {
	srv := rabbittest.Shared(t)
	pw := srv.Password
	logs := &gatewaytest.LogBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	var seen []string // every text the source produced
	check := func(what, text string) {
		t.Helper()
		seen = append(seen, text)
		if strings.Contains(text, pw) {
			t.Errorf("%s contains the password: %s", what, text)
		}
	}
	ctx := context.Background()

	q := queueName(t)
	rabbittest.DeclareQueue(t, srv.URL(), q, rabbittest.Classic)
	rabbittest.Publish(t, srv.URL(), q, amqp.Publishing{MessageId: "s", Body: []byte("x")})
	src := open(t, srv.URL(), q, logTo(logger))
	recs := collect(t, src, 1)
	raw, err := src.Event(recs)
	if err != nil {
		t.Fatal(err)
	}
	check("event", string(raw))
	_, info := src.BatchInfo(recs)
	b, _ := json.Marshal(info)
	check("batch info", string(b))
	check("filter", func() string { b, _ := json.Marshal(recs[0].Filter); return string(b) }())
	// A channel error (an ack of an unknown delivery tag) is logged, and
	// the source subscribes again.
	current := func() *consumer {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.cons
	}
	c := current()
	if err := c.ch.Ack(999999, false); err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "PRECONDITION_FAILED")
	}, "channel error logged; logs:\n%s", logs.String())
	if _, err := src.Poll(ctx, 10, 0); err != nil || current() == c || current() == nil {
		t.Fatalf("Poll after a channel error: %v (consumer replaced: %v)", err, current() != c)
	}

	missing := open(t, srv.URL(), queueName(t), logTo(logger))
	_, err = missing.Poll(ctx, 10, 0)
	if err == nil {
		t.Fatal("Poll of a missing queue succeeded")
	}
	check("missing-queue error", err.Error())
	_, err = missing.Lag(ctx)
	check("lag error", err.Error())

	wrong := "wrong-" + pw[:8]
	bad := open(t, "amqp://"+rabbittest.User+":"+wrong+"@127.0.0.1:"+strconv.Itoa(srv.Port)+"/", q, logTo(logger))
	_, err = bad.Poll(ctx, 10, 0)
	if err == nil || strings.Contains(err.Error(), wrong) {
		t.Fatalf("Poll with a wrong password: %v", err)
	}
	check("auth error", err.Error())

	for _, u := range []string{
		"amqp://nimbus:" + pw + "@127.0.0.1:notaport/",
		"amqp://nimbus:" + pw + "%zz@127.0.0.1/",
		"http://nimbus:" + pw + "@127.0.0.1/",
	} {
		_, err := Open(ctx, config(t, u, q))
		if err == nil {
			t.Fatalf("Open(%q) succeeded", u)
		}
		check("Open error", err.Error())
	}
	check("logs", logs.String())
	if !strings.Contains(logs.String(), "127.0.0.1:"+strconv.Itoa(srv.Port)) {
		t.Errorf("logs do not name the broker:\n%s", logs.String())
	}
	if len(seen) < 8 {
		t.Fatalf("checked %d texts", len(seen))
	}
}
