// Package queue is the gateway's asynchronous invocation queue
// (InvocationType Event) on NATS JetStream.
//
// Storage. An embedded nats-server (JetStream file store in the gateway's
// data dir, loopback listener, in-process client connection) or an external
// NATS cluster shared by several gateways. One work-queue stream,
// NIMBUS_ASYNC, holds one message per queued event on
// nimbus.async.<function>.<request id> ("." in a function name is written
// "="); the request id is also the JetStream message id, so a publish the
// client retries is stored once. The stream is bounded (max_events, discard
// new): a full queue answers 429 at enqueue time, never later. A message
// is the payload (at most MaxEventSize, 1 MiB) plus its headers (at most
// MaxEventHeaders); the stream's max_msg_size and the embedded server's
// max_payload are their sum (MaxMessageSize), and an external NATS must
// allow at least that much.
// Access. Every NATS connection authenticates: the embedded server takes
// only clients with its token, derived from the gateway's invoke key
// (natsembed.DeriveToken; random per process without a key), and listens
// on loopback only; an external NATS is reached with the credentials
// (token, NKey seed, .creds file or a user in nats_url) and TLS of the
// queue block, and a cluster gateway refuses a nats_url without any unless
// nats_insecure is set. Credentials never reach a log line or an error
// (RedactURL).
// Enqueue returns only after JetStream acknowledged the publish, so a 202
// means the event is on disk (or replicated).
//
// Delivery. Every gateway's workers pull from one durable consumer with
// explicit acks: JetStream hands each event to one worker at a time (work
// sharing), and an event whose worker died is handed out again after
// ack_wait (crash safety, at-least-once). Workers send in-progress signals
// while a function runs, so long invocations are not redelivered. An event
// is acknowledged only after its outcome is recorded and its destinations
// were tried.
//
// Retries. A function error is retried up to max_retries (0–2) times, after
// retry_delays (Lambda: 1 min, 2 min); throttles (429 from the router's
// admission) and system errors (no instance could run it) are retried with
// exponential backoff from throttle_backoff_min to throttle_backoff_max
// (Lambda: 1 s to 5 min) for as long as the event is younger than
// max_event_age. A retry is a negative acknowledgement with a delay
// (NakWithDelay): the event stays the same stream message, and its attempt
// counters live in its status entry, read back on each redelivery. An event
// older than max_event_age fails with EventAgeExceeded.
//
// Priority. Workers invoke through the same router as synchronous calls, so
// reserved and account concurrency apply to them too, but they are fewer
// (workers, default 32) and hold at most function_share (default half) of a
// function's limit at once: synchronous callers always find room.
//
// Fairness. A worker never waits for a function's slot: an event whose
// function already runs its share goes back to the queue (a negative
// acknowledgement with busy_delay, growing with each deferral, not an
// attempt and not a retry) and the worker takes the next event. One
// function's backlog therefore cannot hold the workers that other
// functions' events need. Once Stop began, a worker starts no further
// invocation: the event it holds goes back to the queue at once.
//
// Outcomes. Success and failure records are Lambda's invocation record
// (version 1.0, requestContext with condition Success, RetriesExhausted or
// EventAgeExceeded, requestPayload, responseContext, responsePayload), sent
// to the version's on_success / on_failure destination; the dead-letter
// target gets the original event with RequestID, ErrorCode and ErrorMessage
// headers (package destinations delivers).
//
// Status. The KV bucket nimbus_async_status (TTL = retention) holds one
// entry per invocation past its first delivery, keyed
// <function>.<request id>: running, retrying n, succeeded, failed,
// dead-lettered. An event still waiting for its first attempt has no entry
// and is reported queued from the stream itself, so enqueueing costs one
// JetStream write. Handler serves GET /nimbus/v1/invocations/{id} and
// GET /nimbus/v1/functions/{fn}/invocations.
//
// Settings. Each event's function qualifier is resolved when it runs (an
// event whose function or qualifier is gone fails; one whose catalog
// cannot answer, e.g. Nomad unreachable, goes back to the queue with the
// throttle backoff); its
// spec's async block (max_retries, max_event_age, on_success, on_failure,
// dead_letter) applies, overlaid by an event-invoke config put through the
// Lambda API (KV bucket nimbus_event_invoke_config, keyed by function and
// qualifier, shared by all gateways).
//
// Metrics (on the gateway's registry): queue depth, oldest event age,
// enqueued, rejected, retries, finished, dead letters, dead-letter errors
// and destination delivery failures.
//
// Lock rules: Queue.mu guards only the per-function in-flight counts;
// nothing blocks while holding it.
//
// It may import gateway/**, specs and driver/invokeapi.
package queue
