package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// deliveryTimeout bounds one Publish when the caller's context does not.
const deliveryTimeout = 30 * time.Second

// Producer publishes on_failure and destination records to Kafka topics.
// It is safe for concurrent use.
type Producer struct {
	cl *kgo.Client
}

// NewProducer makes a producer for the cluster at brokers ("host:port").
// It connects lazily: an unreachable cluster is an error from Publish.
func NewProducer(brokers []string, logger hclog.Logger) (*Producer, error) {
	brokers = splitList(brokers)
	if len(brokers) == 0 {
		return nil, errors.New("kafka producer: no brokers")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("nimbus-producer"),
		kgo.WithLogger(kgoLogger{logger}),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Publish is synchronous, one record at a time: don't linger.
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		// Let a cancelled context fail a record already sent; a retry by
		// the caller may then duplicate it, which at-least-once
		// destinations accept, while a Publish that cannot be abandoned
		// would hold up the poller behind it.
		kgo.AllowIdempotentProduceCancellation(),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return &Producer{cl: cl}, nil
}

// Publish writes body to topic with headers (in key order) and returns once
// all in-sync replicas have it.
func (p *Producer) Publish(ctx context.Context, topic string, body []byte, headers map[string]string) error {
	rec := &kgo.Record{Topic: topic, Value: body}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(headers[k])})
	}
	if err := p.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("kafka: publishing to %q: %w", topic, err)
	}
	return nil
}

// Close flushes nothing (Publish is synchronous) and closes the connections.
func (p *Producer) Close() {
	p.cl.Close()
}
