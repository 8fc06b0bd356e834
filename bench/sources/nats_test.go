package sourcesbench

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/gateway/sources/natsjs"
	"github.com/nimbus-fn/nimbus/specs"
)

// natsRecords is the NATS throughput cases' N.
const natsRecords = 260000

// natsCases: one subject; four subjects under one filter (the mapping runs
// a batch of each subject at once).
var natsCases = []thrCase{
	{key: "nats-thr", units: 1, label: "1 subject"},
	{key: "nats-thr-s4", units: 4, label: "4 subjects"},
}

// natsUnits is how many subjects key's records spread over.
func natsUnits(key string) int {
	for _, c := range natsCases {
		if c.key == key {
			return c.units
		}
	}
	return 1
}

// natsSubject is where a record of key with record key k goes: "bench.<key>"
// for one subject, else "bench.<key>.<n>" by the record key.
func natsSubject(key, k string) string {
	units := natsUnits(key)
	if units == 1 {
		return "bench." + key
	}
	h := fnv.New32a()
	h.Write([]byte(k))
	return fmt.Sprintf("bench.%s.%d", key, h.Sum32()%uint32(units))
}

// natsFilter is the subject filter reading all of key's records.
func natsFilter(key string) string {
	if natsUnits(key) == 1 {
		return "bench." + key
	}
	return "bench." + key + ".*"
}

// natsStream holds every key as the subject "bench.<key>": a limits
// stream, so the mapping runs ordered (per subject), as Kafka and Redis do.
const natsStream = "BENCH"

// natsBroker is the gateway's own embedded JetStream server, reached by an
// in-process connection as the mapping's is.
type natsBroker struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newNATS(b *testing.B, s *server.Server) *natsBroker {
	nc, err := s.NATS().Embedded.Connect("bench-sources")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: natsStream,
		Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	return &natsBroker{nc: nc, js: js}
}

func (n *natsBroker) name() string     { return "nats" }
func (n *natsBroker) records() int     { return natsRecords }
func (n *natsBroker) cases() []thrCase { return natsCases }

func (n *natsBroker) produce(ctx context.Context, key string, rs ...rec) error {
	if len(rs) == 1 {
		_, err := n.js.Publish(ctx, natsSubject(key, rs[0].k), rs[0].v)
		return err
	}
	for _, r := range rs {
		if _, err := n.js.PublishAsync(natsSubject(key, r.k), r.v); err != nil {
			return err
		}
	}
	select {
	case <-n.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// consume is a durable pull consumer. For throughput it Fetches batchSize
// records and acks each; streaming (latency) uses Consume, which keeps
// pull requests outstanding so a record is delivered as it arrives (a
// Fetch of batchSize waits for batchSize records or its expiry).
func (n *natsBroker) consume(ctx context.Context, key, group string, streaming bool, got func([][]byte, time.Time)) (func(), error) {
	cons, err := n.js.CreateOrUpdateConsumer(ctx, natsStream, jetstream.ConsumerConfig{Durable: group,
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubject: natsFilter(key)})
	if err != nil {
		return nil, err
	}
	if streaming {
		cc, err := cons.Consume(func(msg jetstream.Msg) {
			at := time.Now()
			_ = msg.Ack()
			got([][]byte{msg.Data()}, at)
		}, jetstream.PullMaxMessages(batchSize))
		if err != nil {
			return nil, err
		}
		return func() { <-ctx.Done(); cc.Stop(); <-cc.Closed() }, nil
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			batch, err := cons.Fetch(batchSize, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				continue
			}
			var ps [][]byte
			var at time.Time
			for msg := range batch.Messages() {
				if at.IsZero() {
					at = time.Now()
				}
				_ = msg.Ack()
				ps = append(ps, msg.Data())
			}
			if len(ps) > 0 {
				got(ps, at)
			}
		}
	}()
	return wg.Wait, nil
}

// source: nats takes no parallelization_factor (each subject is already
// its own ordered unit), so factor must be 0.
func (n *natsBroker) source(name, key string, factor int) *specs.EventSource {
	return &specs.EventSource{Name: name, Type: specs.SourceNATS, Enabled: true, Stream: natsStream,
		Subject: natsFilter(key), StartingFrom: "TRIM_HORIZON", BatchSize: batchSize, MaximumBatchingWindow: "0s",
		ParallelizationFactor: factor}
}

// event is the NATS event of a batch of key's records.
func (n *natsBroker) event(key string, first int, batch []rec) ([]byte, error) {
	ev := natsjs.Event{EventSource: natsjs.EventSource, EventSourceArn: "nats:" + natsStream + ":" + natsFilter(key)}
	now := time.Now().UTC()
	for i, r := range batch {
		ev.Records = append(ev.Records, natsjs.EventRecord{Stream: natsStream, Subject: natsSubject(key, r.k),
			Sequence: uint64(first + i + 1), Timestamp: now, Headers: map[string][]string{}, Data: r.v})
	}
	return json.Marshal(ev)
}
