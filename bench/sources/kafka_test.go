package sourcesbench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nimbus-fn/nimbus/internal/kafkatest"
	"github.com/nimbus-fn/nimbus/specs"
)

// kafkaRecords is the Kafka throughput cases' N.
const kafkaRecords = 550000

// kafkaCases: one partition; four partitions (a mapping runs a batch of
// each at once); one partition in four lanes.
var kafkaCases = []thrCase{
	{key: "kafka-thr", units: 1, label: "1 partition"},
	{key: "kafka-thr-p4", units: 4, label: "4 partitions"},
	{key: "kafka-thr-pf4", units: 1, factor: 4, label: "1 partition, parallelization 4"},
}

// kafkaBroker is an in-process kfake cluster; every key is a topic.
type kafkaBroker struct {
	addrs []string
	prod  *kgo.Client
}

func newKafka(b *testing.B) *kafkaBroker {
	topics := map[string]int32{"kafka-lat-raw": 1, "kafka-lat-nimbus": 1}
	for _, c := range kafkaCases {
		topics[c.key] = int32(c.units)
	}
	addrs := kafkatest.Start(b, topics)
	// No linger: a paced record goes out at once.
	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(prod.Close)
	return &kafkaBroker{addrs: addrs, prod: prod}
}

func (k *kafkaBroker) name() string     { return "kafka" }
func (k *kafkaBroker) records() int     { return kafkaRecords }
func (k *kafkaBroker) cases() []thrCase { return kafkaCases }

// produce sends keyed records with the default (key-hashing) partitioner.
func (k *kafkaBroker) produce(ctx context.Context, key string, rs ...rec) error {
	recs := make([]*kgo.Record, len(rs))
	for i, r := range rs {
		recs[i] = &kgo.Record{Topic: key, Value: r.v}
		if r.k != "" {
			recs[i].Key = []byte(r.k)
		}
	}
	return k.prod.ProduceSync(ctx, recs...).FirstErr()
}

// consume is a franz-go consumer group member polling up to batchSize
// records and committing them synchronously before the next poll (what
// the mapping does per batch, without the function).
func (k *kafkaBroker) consume(ctx context.Context, key, group string, _ bool, got func([][]byte, time.Time)) (func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(key),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			fs := cl.PollRecords(ctx, batchSize)
			at := time.Now()
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			_ = cl.CommitRecords(context.WithoutCancel(ctx), recs...) // kfake on loopback does not fail it
			ps := make([][]byte, len(recs))
			for i, r := range recs {
				ps[i] = r.Value
			}
			got(ps, at)
		}
	}()
	return func() { wg.Wait(); cl.Close() }, nil
}

func (k *kafkaBroker) source(name, key string, factor int) *specs.EventSource {
	return &specs.EventSource{Name: name, Type: specs.SourceKafka, Enabled: true, URL: strings.Join(k.addrs, ","),
		Topics: []string{key}, StartingFrom: "TRIM_HORIZON", BatchSize: batchSize, MaximumBatchingWindow: "0s",
		ParallelizationFactor: factor}
}

// event is the self-managed Kafka event of a batch of one partition.
func (k *kafkaBroker) event(key string, first int, batch []rec) ([]byte, error) {
	tp := key + "-0"
	ev := events.KafkaEvent{EventSource: "SelfManagedKafka", BootstrapServers: strings.Join(k.addrs, ","),
		Records: map[string][]events.KafkaRecord{tp: nil}}
	now := time.Now()
	for i, r := range batch {
		ev.Records[tp] = append(ev.Records[tp], events.KafkaRecord{Topic: key, Offset: int64(first + i),
			Timestamp: events.MilliSecondsEpochTime{Time: now}, TimestampType: "CREATE_TIME",
			Key: base64.StdEncoding.EncodeToString([]byte(r.k)), Value: base64.StdEncoding.EncodeToString(r.v),
			Headers: []map[string]events.JSONNumberBytes{}})
	}
	return json.Marshal(ev)
}
