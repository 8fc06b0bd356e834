// Package sources runs event-source mappings: a poller per mapping reads
// batches from a broker (Kafka, Redis Streams, NATS JetStream, RabbitMQ, a
// schedule), drops records no filter matches, invokes the function
// synchronously through the router, and then checkpoints. On failure it
// retries, bisects, honours batchItemFailures and finally sends Lambda's
// failure record to the mapping's on_failure destination. Ordered sources
// keep order per partition; queue-like sources run batches in parallel up
// to the mapping's maximum concurrency.
//
// This package holds the engine and the Source contract (source.go); each
// broker lives in a sub-package that implements Source and is registered
// by the server's wiring, so the engine imports no broker client.
//
// It may import gateway/**, specs and driver/invokeapi.
package sources
