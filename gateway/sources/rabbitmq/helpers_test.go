package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/internal/rabbittest"
	"github.com/nimbus-fn/nimbus/specs"
)

// TestMain shares one rabbitmq-server between the package's tests (booting
// one takes seconds); rabbittest.Main stops it after the last test.
func TestMain(m *testing.M) { os.Exit(rabbittest.Main(m)) }

// clock is the fixed receive time of messages without a timestamp.
var clock = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type opt func(*sources.Config)

func batch(size, concurrency int) opt {
	return func(c *sources.Config) {
		c.Spec.BatchSize = size
		c.Spec.MaximumConcurrency = concurrency
	}
}

func logTo(l hclog.Logger) opt { return func(c *sources.Config) { c.Logger = l } }

func member(m string) opt { return func(c *sources.Config) { c.Member = m } }

func config(t *testing.T, amqpURL, queue string, opts ...opt) sources.Config {
	cfg := sources.Config{
		UUID:     "6d7c1a52-0c1b-4a43-9c39-1b0d3c0e7f10",
		Function: "orders",
		Spec: &specs.EventSource{Name: "q", Type: "rabbitmq", Enabled: true, URL: amqpURL, Queue: queue,
			BatchSize: 10, MaximumBatchingWindow: "0s"},
		Member:          "gw-1",
		FunctionTimeout: 3 * time.Second,
		Region:          "us-east-1",
		AccountID:       "123456789012",
		Logger:          gatewaytest.Logger(t),
		Now:             func() time.Time { return clock },
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// open opens a source and closes it on cleanup.
func open(t *testing.T, amqpURL, queue string, opts ...opt) *Source {
	t.Helper()
	src, err := Open(context.Background(), config(t, amqpURL, queue, opts...))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src.(*Source)
}

// queueName is a fresh queue name for a test.
func queueName(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return name + "-" + hex.EncodeToString(b)
}

// collect polls until n records have arrived (failing after 30 s).
func collect(t *testing.T, src *Source, n int) []*sources.Record {
	t.Helper()
	var got []*sources.Record
	var lastErr error
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		recs, err := src.Poll(context.Background(), n-len(got), 200*time.Millisecond)
		if err != nil {
			lastErr = err
		}
		got = append(got, recs...)
		return len(got) >= n
	}, "%d of %d records arrived (last error %v)", len(got), n, lastErr)
	if len(got) != n {
		t.Fatalf("Poll returned %d records, want %d", len(got), n)
	}
	return got
}

// empty asserts a poll finds nothing within wait.
func empty(t *testing.T, src *Source, wait time.Duration) {
	t.Helper()
	recs, err := src.Poll(context.Background(), 10, wait)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if len(recs) != 0 {
		t.Fatalf("Poll returned %s, want nothing", ids(recs))
	}
}

func ids(recs []*sources.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func done(t *testing.T, src *Source, recs []*sources.Record) {
	t.Helper()
	if err := src.Done(context.Background(), recs); err != nil {
		t.Fatalf("Done: %v", err)
	}
}
