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
// Redeliver holds a message unacked for the delay and then nacks it with
// requeue (a held message takes a prefetch slot, and delays must stay
// below the broker's consumer_timeout, 30 minutes by default, after which
// it closes the channel), and Close (or a lost connection) makes the broker
// requeue everything not yet acked, flagged redelivered. Delivery tags
// belong to a channel: acks and nacks of deliveries from a channel that
// has closed are dropped, since the broker has requeued those already.
//
// Connections are made by Poll (and Lag), not Open: a broker that is down
// is a quick error from Poll, and after a connection or channel closes the
// next Poll connects and subscribes again, spacing failed attempts with a
// backoff (100 ms doubling to 5 s) during which Poll returns the last
// error at once. A consumer the broker cancels keeps its channel open
// until the deliveries it handed out are settled.
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
