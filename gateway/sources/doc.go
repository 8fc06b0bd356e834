// Package sources runs event-source mappings: a poller per mapping reads
// batches from a broker (Kafka, Redis Streams, NATS JetStream, RabbitMQ, a
// schedule), drops records no filter matches, invokes the function
// synchronously through the router, and then checkpoints. On failure it
// retries, bisects, honours batchItemFailures and finally sends Lambda's
// failure record to the mapping's on_failure destination. Ordered sources
// keep order per partition; queue-like sources run batches in parallel up
// to the mapping's maximum concurrency.
//
// Neither broker round trip sits between one invocation of a partition and
// the next: polling runs ahead of the batches, so the next batch is
// buffered when one finishes, and an ordered partition's checkpoint goes
// out in the background while its next batch is invoked — one checkpoint
// per partition at a time, in order, each naming only records whose batch
// has finished, and all of them returned before the source is closed.
//
// parallelization_factor (Lambda's ParallelizationFactor, ordered sources
// only) splits each partition into up to that many lanes by Record.Key
// (Lane: FNV-1a of the key, or of the ID when there is none); each lane is
// ordered and runs one batch at a time as a partition does, lanes run at
// once, and retries, bisecting and on_failure work per lane. A partition's
// records are tracked in poll order across its lanes and checkpointed only
// as far as every lane has finished, so a failing lane holds the
// partition's checkpoint while the others go on; records finished behind
// it are delivered again after a restart (at-least-once). What a partition
// holds that way is bounded: at 20 batches per lane it is paused (a source
// that cannot pause stops polling) until it is down to half; a stuck lane
// alone is never paused, as that would stop its partition's other lanes.
//
// This package holds the engine and the Source contract (source.go); each
// broker lives in a sub-package that implements Source and is registered
// by the server's wiring, so the engine imports no broker client.
//
// It may import gateway/**, specs and driver/invokeapi.
package sources
