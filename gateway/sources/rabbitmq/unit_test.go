package rabbitmq

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestOpenValidatesAndParsesTheURL(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		url, queue, err string
	}{
		{"", "q", "url is required"},
		{"amqp://h/", "", "queue is required"},
		{"http://h/", "q", "amqp://"},
		{"amqp://u:p@h:x/", "q", "malformed URL"},
	} {
		_, err := Open(ctx, config(t, tc.url, tc.queue))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Open(%q, %q) error %v, want it to mention %q", tc.url, tc.queue, err, tc.err)
		}
	}
	cfg := config(t, "amqp://h/", "q")
	cfg.Spec = nil
	if _, err := Open(ctx, cfg); err == nil {
		t.Error("Open without a spec succeeded")
	}

	for _, tc := range []struct {
		url, vhost, broker string
	}{
		{"amqp://u:p@broker.example", "/", "broker.example:5672"},
		{"amqp://u:p@broker.example:5673/", "/", "broker.example:5673"},
		{"amqp://u:p@broker.example/%2F", "/", "broker.example:5672"},
		{"amqp://u:p@broker.example/prod", "prod", "broker.example:5672"},
		{"amqp://u:p@broker.example/team%2Fprod", "team/prod", "broker.example:5672"},
		{"amqps://u:p@[::1]/v", "v", "[::1]:5671"},
	} {
		src, err := Open(ctx, config(t, tc.url, "orders"))
		if err != nil {
			t.Fatalf("Open(%q): %v", tc.url, err)
		}
		s := src.(*Source)
		if s.vhost != tc.vhost || s.broker != tc.broker || s.arn != "arn:nimbus:mq:us-east-1:123456789012:broker:"+tc.broker {
			t.Errorf("Open(%q): vhost %q broker %q arn %q; want vhost %q broker %q", tc.url, s.vhost, s.broker, s.arn, tc.vhost, tc.broker)
		}
		if s.tag != "nimbus:6d7c1a52-0c1b-4a43-9c39-1b0d3c0e7f10:gw-1" || s.prefetch != 10 {
			t.Errorf("consumer tag %q prefetch %d", s.tag, s.prefetch)
		}
	}
}

func TestHeaderValuesAsLambdaWritesThem(t *testing.T) {
	stamp := time.Date(1970, 1, 1, 0, 33, 41, 0, time.UTC)
	in := amqp.Table{
		"s":    "hé",
		"b":    []byte{0, 127, 128, 255},
		"i":    int64(-3),
		"u":    uint8(200),
		"f":    float32(1.5),
		"nan":  math.NaN(),
		"ok":   false,
		"nil":  nil,
		"t":    stamp,
		"d1":   amqp.Decimal{Scale: 2, Value: 12345},
		"d2":   amqp.Decimal{Scale: 3, Value: -5},
		"d3":   amqp.Decimal{Scale: 0, Value: 7},
		"list": []any{"a", int32(1)},
		"tab":  amqp.Table{"x": []any{}},
	}
	b, err := json.Marshal(table(in))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"s":    map[string]any{"bytes": []any{104.0, -61.0, -87.0}},
		"b":    []any{0.0, 127.0, -128.0, -1.0},
		"i":    -3.0,
		"u":    200.0,
		"f":    1.5,
		"nan":  "NaN",
		"ok":   false,
		"nil":  nil,
		"t":    "Jan 1, 1970, 12:33:41 AM",
		"d1":   123.45,
		"d2":   -0.005,
		"d3":   7.0,
		"list": []any{map[string]any{"bytes": []any{97.0}}, 1.0},
		"tab":  map[string]any{"x": []any{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("headers\n%s\nwant %v", b, want)
	}
	if s := string(b); !strings.Contains(s, `"d1":123.45`) || !strings.Contains(s, `"d2":-0.005`) {
		t.Fatalf("decimals are not plain numbers: %s", s)
	}
}

func TestDeliveryCounter(t *testing.T) {
	c := newDeliveryCounter(2)
	steps := []struct {
		id          string
		redelivered bool
		want        int
	}{
		{"a", false, 1},
		{"a", true, 2},
		{"a", true, 3},
		{"b", true, 2},  // first seen here, but delivered before elsewhere
		{"a", false, 1}, // a new message reusing the id
		{"c", false, 1}, // evicts b, the least recently seen
		{"b", true, 2},
	}
	for i, s := range steps {
		if got := c.observe(s.id, s.redelivered); got != s.want {
			t.Fatalf("step %d observe(%s, %v) = %d, want %d", i, s.id, s.redelivered, got, s.want)
		}
	}
	c.forget("b")
	if got := c.observe("b", true); got != 2 || c.order.Len() != 2 || len(c.ids) != 2 {
		t.Fatalf("after forget: %d (%d tracked)", got, len(c.ids))
	}
}

func TestBodyView(t *testing.T) {
	for _, tc := range []struct {
		body string
		want any
	}{
		{`{"a":{"b":[1,"x"]}}`, map[string]any{"a": map[string]any{"b": []any{1.0, "x"}}}},
		{` {"a":true} `, map[string]any{"a": true}},
		{`[1,2]`, `[1,2]`},
		{`"str"`, `"str"`},
		{`{"broken"`, `{"broken"`},
		{``, ``},
	} {
		if got := bodyView([]byte(tc.body)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("bodyView(%q) = %#v, want %#v", tc.body, got, tc.want)
		}
	}
}
