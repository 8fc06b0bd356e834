package kafkatest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// NewCluster starts a kfake cluster on 127.0.0.1 with topics (name →
// partitions) already created. Port 0 starts three brokers on ports the
// kernel picks; any other port starts one broker on exactly that port. The
// caller closes the cluster.
func NewCluster(port int, topics map[string]int32) (*kfake.Cluster, error) {
	opts := []kfake.Opt{kfake.NumBrokers(3)}
	if port != 0 {
		opts = []kfake.Opt{kfake.Ports(port)}
	}
	// Seed in a stable order: SeedTopics is applied in option order.
	names := make([]string, 0, len(topics))
	for name := range topics {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if topics[name] < 1 {
			return nil, fmt.Errorf("topic %q: partitions must be at least 1, got %d", name, topics[name])
		}
		opts = append(opts, kfake.SeedTopics(topics[name], name))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting kfake cluster: %w", err)
	}
	return c, nil
}

// Start runs a cluster for the test with topics (name → partitions) and
// returns its broker addresses ("127.0.0.1:port"). The cluster closes when
// the test ends.
func Start(tb testing.TB, topics map[string]int32) (addrs []string) {
	tb.Helper()
	c, err := NewCluster(0, topics)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c.ListenAddrs()
}

// RoundTrip produces one record to topic/partition on addrs and reads it
// back directly from that partition, failing tb when either step fails. It
// checks that a cluster (in-process or kfakeserver) serves the topic.
func RoundTrip(tb testing.TB, addrs []string, topic string, partition int32) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		tb.Fatal(err)
	}
	defer p.Close()
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Value: []byte("ping")}).FirstErr(); err != nil {
		tb.Fatalf("producing: %v", err)
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	fs := c.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		tb.Fatalf("fetching: %v", err)
	}
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Value) != "ping" || recs[0].Partition != partition {
		tb.Fatalf("read back %v", recs)
	}
}
