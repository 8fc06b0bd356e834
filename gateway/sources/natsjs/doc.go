// Package natsjs is the `nats` event source: it reads a NATS JetStream
// stream for one mapping through a durable pull consumer with explicit
// acks, shared by every gateway (competing consumers), and implements
// sources.Source.
//
// # Connection
//
// Spec.URL (nats://[user:pass@]host:port[,…]) names the NATS system; empty
// means the gateway's own connection (Config.NATS). Credentials in the URL
// never appear in events, errors or logs.
//
// # Durable consumer
//
// Spec.Group is the durable's name, created or updated on the first Poll
// (CreateOrUpdateConsumer). An existing durable keeps its position: only
// a new one starts at Spec.StartingFrom — LATEST (deliver new), TRIM_HORIZON
// (deliver all) or AT_TIMESTAMP (deliver by start time,
// Spec.StartingTimestamp, RFC 3339). A work-queue stream always starts
// with every message it holds (the server allows nothing else). The stream
// must exist; Poll names it when it does not.
//
// AckWait is max(30 s, 3 × the function timeout) and MaxAckPending 1000
// (Options): at most that many records are out, not yet Done, across all
// gateways. While a record is not Done its Source sends "in progress"
// every AckWait/3, so the server redelivers only the records of a gateway
// that died; Close naks every record not Done so it is delivered again at
// once.
//
// # Two modes, chosen by the stream's retention when Open reads it
//
//   - Work-queue or interest stream: queue-like. Open returns a
//     *QueueSource: not ordered, a sources.Redeliverer (Redeliver =
//     NakWithDelay), Record.Deliveries = the server's delivery count.
//   - Limits stream: ordered per subject. Open returns a *Source whose
//     Ordered() is true; Record.Partition is the subject. The durable uses
//     the pinned-client priority policy (NATS server 2.11 or later): the
//     server hands records to one gateway at a time, so two gateways never
//     work on one subject at once. The pin moves when the pinned gateway
//     closes its Source or does not pull for PinnedTTL (default AckWait).
//
// A gateway that dies holding records of an ordered durable leaves them
// un-acked; the server redelivers them after the ack wait, in the order
// their waits ran out, while newer records would flow at once. So when a
// Source first finds the durable with records un-acked, it gathers what
// arrives until every one of those records is back (or three ack waits
// passed) and hands the lot over sorted by sequence: order per subject
// survives a crash, at the cost of one ack wait of delay.
//
// A stream Open cannot read (missing, or the server down) gives an ordered
// Source, correct for every retention; a queue stream that appears later
// is still read in order until the mapping is reopened.
//
// # Records and the event
//
// Record.ID is the stream sequence (decimal), Time the message's store
// time, Size the payload plus header keys and values, Filter
// {"stream","subject","sequence","timestamp","headers":{k:first value},
// "data": the payload decoded when it is a JSON object, else a string}.
// Record.Handle is the *handle of the delivered jetstream.Msg.
//
// The event (Event, documented in docs/events/nats.md):
//
//	{"eventSource": "nimbus:nats", "eventSourceArn": "nats:<stream>[:<subject>]",
//	 "records": [{"stream", "subject", "sequence", "timestamp" (RFC 3339 nano),
//	              "headers": {k: [v, …]}, "data": "<base64>"}]}
//
// A discarded batch's on-failure record carries "NATSBatchInfo"
// (BatchInfo). Lag is the durable's pending plus ack-pending count, as
// one entry named by the subject filter, else the stream.
//
// It may import gateway/sources and third-party modules.
package natsjs
