package kafkatest

import (
	"testing"
)

func TestStartServesTopics(t *testing.T) {
	addrs := Start(t, map[string]int32{"one": 1, "three": 3})
	if len(addrs) != 3 {
		t.Fatalf("addrs = %v, want three brokers", addrs)
	}
	RoundTrip(t, addrs, "three", 2)
}

func TestNewClusterRejectsNoPartitions(t *testing.T) {
	if c, err := NewCluster(0, map[string]int32{"bad": 0}); err == nil {
		c.Close()
		t.Fatal("a topic with 0 partitions was accepted")
	}
}
