// Package destinations delivers async invocation records and dead-lettered
// events to the targets a spec's `async` block names (specs.Destination):
//
//   - function: the body becomes the event of an asynchronous invocation of
//     that function (through a FunctionEnqueuer: the async queue itself);
//   - NATS subject: published with a JetStream acknowledgement when a
//     stream captures the subject, as a plain core-NATS publish otherwise;
//   - HTTP webhook: POSTed as application/json, any 2xx accepts it, other
//     answers and transport errors are retried a few times with backoff;
//   - Kafka topic: not built in this gateway; Send answers ErrKafkaNotBuilt
//     (the spec validates, delivery fails and is counted).
//
// Message headers travel as NATS headers or HTTP headers. The package does
// not build records; the queue does.
//
// It may import specs and nothing else from the module.
package destinations
