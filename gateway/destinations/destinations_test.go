package destinations_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/specs"
)

type enqueuer struct {
	ref     string
	payload []byte
	err     error
}

func (e *enqueuer) EnqueueFunction(_ context.Context, ref string, payload []byte) (string, error) {
	e.ref, e.payload = ref, payload
	return "rid", e.err
}

func TestKindAndTarget(t *testing.T) {
	cases := []struct {
		d          *specs.Destination
		kind, addr string
	}{
		{nil, "", ""},
		{&specs.Destination{}, "", ""},
		{&specs.Destination{Function: "audit:prod"}, destinations.KindFunction, "function:audit:prod"},
		{&specs.Destination{NATS: "orders.failed"}, destinations.KindNATS, "nats:orders.failed"},
		{&specs.Destination{Kafka: "t"}, destinations.KindKafka, "kafka:t"},
		{&specs.Destination{Webhook: "http://h/x"}, destinations.KindWebhook, "http://h/x"},
	}
	for _, c := range cases {
		if k, a := destinations.Kind(c.d), destinations.Target(c.d); k != c.kind || a != c.addr {
			t.Errorf("%+v: kind %q target %q, want %q %q", c.d, k, a, c.kind, c.addr)
		}
	}
}

func TestWebhookHeadersAndRetries(t *testing.T) {
	var calls atomic.Int32
	var got http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got = r.Header.Clone()
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	s := &destinations.Sender{WebhookBackoff: time.Millisecond}
	err := s.Send(context.Background(), &specs.Destination{Webhook: srv.URL},
		destinations.Message{Body: []byte(`{"a":1}`), Headers: map[string]string{"RequestID": "r-1", "ErrorCode": "200"}})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || string(body) != `{"a":1}` || got.Get("Requestid") != "r-1" || got.Get("ErrorCode") != "200" ||
		got.Get("Content-Type") != "application/json" {
		t.Errorf("calls %d body %s headers %v", calls.Load(), body, got)
	}
}

func TestWebhookGivesUpAfterItsAttempts(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	s := &destinations.Sender{WebhookAttempts: 2, WebhookBackoff: time.Millisecond}
	err := s.Send(context.Background(), &specs.Destination{Webhook: srv.URL}, destinations.Message{Body: []byte(`{}`)})
	if err == nil || calls.Load() != 2 {
		t.Errorf("err %v after %d calls", err, calls.Load())
	}
}

func TestFunctionKafkaAndMissingAdapters(t *testing.T) {
	e := &enqueuer{}
	s := &destinations.Sender{Functions: e}
	if err := s.Send(context.Background(), &specs.Destination{Function: "audit"}, destinations.Message{Body: []byte(`{"r":1}`)}); err != nil {
		t.Fatal(err)
	}
	if e.ref != "audit" || string(e.payload) != `{"r":1}` {
		t.Errorf("enqueued %q %s", e.ref, e.payload)
	}
	e.err = errors.New("no such function")
	if err := s.Send(context.Background(), &specs.Destination{Function: "gone"}, destinations.Message{}); err == nil {
		t.Error("a failed enqueue was reported delivered")
	}
	if err := s.Send(context.Background(), &specs.Destination{Kafka: "t"}, destinations.Message{}); !errors.Is(err, destinations.ErrKafkaNotBuilt) {
		t.Errorf("kafka: %v", err)
	}
	if err := s.Send(context.Background(), &specs.Destination{NATS: "x"}, destinations.Message{}); err == nil {
		t.Error("nats without a connection was reported delivered")
	}
}

func TestParseAndFormatRoundTrip(t *testing.T) {
	const prefix = "arn:aws:lambda:us-east-1:123456789012:function:"
	arn := func(name, q string) string {
		if q != "" {
			return prefix + name + ":" + q
		}
		return prefix + name
	}
	for in, want := range map[string]string{
		prefix + "fn": prefix + "fn", prefix + "fn:live": prefix + "fn:live", "function:fn": prefix + "fn",
		"nats:a.b": "nats:a.b", "kafka:t": "kafka:t", "https://h.example/x": "https://h.example/x",
	} {
		d, ok := destinations.Parse(in, prefix)
		if !ok {
			t.Fatalf("Parse(%q) refused", in)
		}
		if got := destinations.Format(d, arn); got != want {
			t.Fatalf("Format(Parse(%q)) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "nats:", "kafka:", "function:", "arn:aws:lambda:eu-west-1:123456789012:function:fn", "http://", "sqs:q"} {
		if _, ok := destinations.Parse(bad, prefix); ok {
			t.Fatalf("Parse(%q) accepted", bad)
		}
	}
}
