// Package kafka is the Kafka event source: a consumer-group member that
// feeds one event-source mapping's records to the engine in
// gateway/sources, commits offsets only for records the engine marks Done,
// and shapes batches into Lambda's self-managed Kafka event
// ("eventSource": "SelfManagedKafka"). It also holds the Kafka producer that
// on_failure and destination records are published with.
//
// The client is github.com/twmb/franz-go (kgo, kadm). Group balancing is
// franz-go's (cooperative sticky by default); commits never happen on their
// own, only from Done, from a revoke and from Close.
//
// Record.Partition is "topic-partition" and Record.Key the record's key
// (empty for a null key), which parallelization_factor lanes go by.
//
// It may import gateway/**, specs, driver/invokeapi and third-party modules.
package kafka
