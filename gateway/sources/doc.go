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
// This package holds the engine and the Source contract (source.go); each
// broker lives in a sub-package that implements Source and is registered
// by the server's wiring, so the engine imports no broker client.
//
// It may import gateway/**, specs and driver/invokeapi.
package sources
