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
// mapping has batch_size 100, maximum_batching_window "0s" and
// TRIM_HORIZON.
//
// Throughput cases (the table names each, with its partitions/streams):
//
//   - Kafka: a topic of 1 partition; of 4 partitions (the mapping runs a
//     batch of each at once); of 1 partition with parallelization_factor 4.
//   - NATS: 1 subject; 4 subjects under one filter (ordered per subject,
//     each its own unit). NATS takes no parallelization_factor.
//   - Redis: 1 stream; 1 stream with parallelization_factor 4.
//
// Records are keyed, cycling over 64 keys (Kafka record key, hashed to a
// partition by franz-go's default partitioner; Redis field "key"; the NATS
// subject among the 4 by the key's hash), so lanes and partitions share
// the load. N (Kafka 550,000, NATS 260,000, Redis 500,000) is produced
// once per case; it is sized so the baseline's run lasts about two
// seconds or more at the rates seen on this kind of machine — the table
// prints the baseline's median run time, so a short one shows.
//
// Each case runs 3 rounds, baseline then mapping, alternating, each in a
// new group (consumer group, durable, Redis group) reading all N records
// from the start; the table prints the medians, their ratio, and each
// round's own ratio, so the spread shows. records/s is N over the time
// from the start (client created, mapping handed to the engine) until the
// last record was acked (baseline) or seen by the function (nimbus). The
// goal is a ratio of at least 0.5x. The "median run" line reads the
// function's stamps: how long the first batch took to arrive (group join,
// consumer set-up) and the pauses of 50 ms or more between invocations —
// one batch's invoke is a few milliseconds here, so such pauses are the
// engine waiting, not working, and their sum is the time they cost; the
// rate outside them is N over the rest of the time.
//
// Is the baseline fair? Both read the same N pre-produced records, each
// run in its own group, 100 at a time, and both count distinct records
// until all N arrived. Where they differ, the baseline is the stricter
// one: the Kafka and Redis baselines commit/XACK synchronously before
// their next poll (the mapping checkpoints in the background while the
// next batch runs), the Redis and NATS baselines make one request per
// batch with no read-ahead (the mapping polls ahead), the baseline is one
// consumer processing one batch at a time whatever the partitions (the
// mapping runs partitions and lanes at once), and the baseline's loop
// parses every payload into the tally before polling again (the stamp
// function only base64-decodes and posts lines; the benchmark parses them
// outside the mapping's path). What the mapping pays and the baseline does
// not is the function: per batch, an HTTP invoke to the instance, the
// Runtime API hand-off to the function's process and back, and the stamp
// function's own post to the log collector (instrumentation: one more
// loopback round trip). With one partition and no lanes a mapping runs one
// batch at a time, so its rate is at most 100 records over one such
// invoke; several partitions or lanes run batches at once, up to the
// instance's 4 environments, and then the machine's two cores — shared by
// the broker, the gateway, the function and the baseline — are the limit.
//
// The floor column splits that cost out: each round also invokes the stamp
// function with the same N records, in batches of 100 built beforehand in
// the event shape the mapping sends, through the gateway's router (the
// mapping's own invoke path), as many batches at once as the mapping runs
// (one per partition or subject, times the lanes, at most the 4
// environments), with no broker and no mapping. Its rate is what invoking
// the function alone allows; "of floor" is how much of it the mapping
// keeps, and the floor's own ratio to the baseline bounds the mapping's.
//
// The instrument is kept cheap on purpose, since it runs on the same two
// cores: the tally indexes records by number in slices (string maps of
// half a million ids made hashing and GC scans the benchmark's largest
// cost and held the baseline at a third of its rate), and the stamp
// function scans each event's bytes in place rather than decoding it.
//
// Latency: on a fresh topic/subject/stream, 200 records are produced one
// every 5 ms, each carrying its produce time; the table gives p50 / p99 of
// the time until the function saw it (nimbus) or the client received it
// (baseline). The goal is a p50 under 5 ms. A warm-up record goes first so
// group joins are not counted.
//
// A run that does not finish within 45 s reports what got through by
// then, marked '*'. The whole table takes about ten minutes. Numbers are
// for reading, not asserting: nothing here fails on timing.
// NIMBUS_BENCH_SOURCES=kafka,nats,redis picks the sources (all by default),
// NIMBUS_BENCH_CASES=kafka-thr-p4,… the throughput cases by key (all by
// default) and NIMBUS_BENCH_RECORDS=N overrides N, e.g. to profile one
// with -cpuprofile or -trace:
//
//	NIMBUS_BENCH_SOURCES=kafka go test -run='^$' -bench=. -benchtime=1x \
//	    -trace /tmp/t.out ./bench/sources/
//	go tool trace -pprof=sync /tmp/t.out > sync.pprof
//
// Test-only package: it may import gateway/**, driver/**, specs,
// internal/** and the brokers' client modules.
package sourcesbench
