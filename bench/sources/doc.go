// Package sourcesbench measures event-source mappings (gateway/sources)
// against each broker's own Go client, measured in the same run right
// before the mapping, on the same broker:
//
//   - Kafka: an in-process kfake cluster (internal/kafkatest); baseline a
//     franz-go consumer group member that polls up to 100 records and
//     commits them synchronously before polling again.
//   - NATS JetStream: the gateway's own embedded server, a limits stream
//     (so the mapping runs ordered per subject); baseline a durable pull
//     consumer, Fetch(100) and an ack per message for throughput, Consume
//     (pull requests kept outstanding) for latency, since a Fetch of 100
//     waits for 100 records or its expiry.
//   - Redis Streams: a real redis-server (internal/redistest; the row says
//     "skipped" when redis-server is not on PATH); baseline XREADGROUP
//     COUNT 100 BLOCK 1s, then XACK of what it read.
//
// The mapping runs in a dev gateway (gateway/server with the engine's
// default options, except that mappings are picked up every 20 ms so the
// start is prompt) and invokes internal/testfn/stamp, a real aws-lambda-go
// function in a real instance (driver/instance, 4 environments), which
// appends "<payload>\t<unix nanos>" per record to a file the benchmark
// reads. Function, gateway and benchmark share the machine's clock. Every
// mapping has batch_size 100, maximum_batching_window "0s", TRIM_HORIZON
// and one partition (one topic partition, one subject, one stream), so a
// mapping runs one batch at a time, in order.
//
// Throughput: N records (Kafka and NATS 20,000, Redis 10,000) are produced
// first; the baseline consumes all N in its own group, then the mapping
// starts in another. records/s is N over the time from the start (client
// created, mapping handed to the engine) until the last record was acked
// (baseline) or seen by the function (nimbus). ratio is nimbus over
// baseline; the goal is at least 0.5x. The "throughput run" row reads the
// function's stamps: how long the first batch took to arrive (group join,
// consumer set-up) and the pauses of 50 ms or more between invocations —
// one batch's invoke is a few milliseconds here, so such pauses are the
// engine waiting, not working, and their sum is the time they cost; the
// rate outside them is N over the rest of the time.
//
// Latency: on a fresh topic/subject/stream, 200 records are produced one
// every 5 ms, each carrying its produce time; the table gives p50 / p99 of
// the time until the function saw it (nimbus) or the client received it
// (baseline). The goal is a p50 under 5 ms. A warm-up record goes first so
// group joins are not counted.
//
// A case that does not finish within 15 s reports what got through by
// then, marked '*', so the table stays near a minute even when a mapping
// is slow. Numbers are for reading, not asserting: nothing here fails on
// timing. NIMBUS_BENCH_SOURCES=kafka,nats,redis picks the sources (all by
// default), e.g. to profile one with -cpuprofile or -trace:
//
//	NIMBUS_BENCH_SOURCES=kafka go test -run='^$' -bench=. -benchtime=1x \
//	    -trace /tmp/t.out ./bench/sources/
//	go tool trace -pprof=sync /tmp/t.out > sync.pprof
//
// Test-only package: it may import gateway/**, driver/**, specs,
// internal/** and the brokers' client modules.
package sourcesbench
