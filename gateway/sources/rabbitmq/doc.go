// Package rabbitmq is the `rabbitmq` event source: Lambda's Amazon MQ for
// RabbitMQ source against any RabbitMQ broker. It implements
// sources.Source as a queue-like source (not Ordered; Record.Partition is
// empty) plus sources.Redeliverer and sources.Lagger, over
// github.com/rabbitmq/amqp091-go.
//
// Every gateway consumes the mapping's queue (which must exist; the source
// never declares it) as a competing consumer with manual acks and a
// prefetch of batch size × maximum concurrency (1 when unset, RabbitMQ's
// Lambda default), so the broker hands each message to one member at a
// time and never more than the mapping can have in flight. Done acks,
// Redeliver holds a message for the delay and then nacks it with requeue,
// and Close (or a lost connection) makes the broker requeue everything not
// yet acked, flagged redelivered.
//
// Records: ID is the message-id property (else "dtag-<delivery tag>");
// Time the timestamp property (else when it was received); Deliveries the
// x-delivery-count header + 1 where the broker keeps one (quorum queues),
// else counted by this source per message id — which sees only the
// redeliveries that come back to this member, so with classic queues and
// several gateways the count is a lower bound (a redelivered message first
// seen here counts 2); Handle is the source's delivery (opaque to the
// engine). Event builds Lambda's aws:rmq event, which aws-lambda-go's
// events.RabbitMQEvent decodes.
//
// The URL's password never leaves the package: events, BatchInfo, errors
// and logs name the broker by scheme, host and port only.
//
// It may import gateway/**, specs and third-party modules.
package rabbitmq
