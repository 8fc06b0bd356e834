// Package schedule is the `schedule` event source: it invokes a function
// on a rate or cron schedule with EventBridge's scheduled event, exactly
// once per tick across every gateway on one NATS system, and implements
// sources.Source.
//
// # Expressions
//
// Parsed by specs/schedexpr (rate(…), EventBridge cron(…), bare cron
// expressions; all times UTC), the same package spec validation uses.
//
// # Exactly once across gateways
//
// The gateway's NATS connection (Config.NATS, required) holds a JetStream
// KV bucket, nimbus_schedules (created when absent, history 1), with one
// key per mapping UUID: {tick, state "claimed"|"fired", owner, at,
// attempt}. Every write is checked against the revision read:
//
//   - Poll finds the latest due tick after the fired one and claims it
//     (state "claimed", owner = Config.Member). Only the member whose write
//     lands returns the record; the others see the claim and wait.
//   - The owner renews the claim every Lease/3 while the engine works on
//     the tick; Done writes state "fired".
//   - A claim not renewed for Lease (default max(60 s, 2 × the function
//     timeout); Options.Lease) belongs to a member that died: another
//     member re-claims the SAME tick, so a failover neither loses nor
//     doubles it. Close releases an unfinished claim at once.
//   - No member ever fires a tick at or before the fired one.
//   - After an outage longer than a period only the most recent missed
//     tick fires, once. EventBridge does not catch up on missed ticks at
//     all; firing the latest one means a short failover does not lose it.
//   - A new mapping fires the first tick after its first Source opened,
//     never one before.
//
// A tick is re-fired only when its owner stops renewing for a whole lease
// while still invoking (a NATS partition); the event id is the same then,
// so functions can drop the duplicate.
//
// # Records and the event
//
// One record per tick: ID = the tick in RFC 3339, Time = the tick,
// Partition "schedule" (Ordered), Deliveries = the claims of the tick,
// Filter = the event as a map, Handle = the *claim. The event is what
// aws-lambda-go's events.CloudWatchEvent decodes:
//
//	{"version": "0", "id": "<uuid>", "detail-type": "Scheduled Event",
//	 "source": "aws.events", "account": "<account>", "time": "<tick, RFC 3339 Z>",
//	 "region": "<region>", "resources": ["arn:aws:events:<region>:<account>:rule/<name>"],
//	 "detail": {}}
//
// The id is a version-4-shaped UUID derived from the mapping UUID and the
// tick (EventID): the same tick always carries the same id. When the
// mapping sets input, the event is that JSON, verbatim. A discarded
// tick's on-failure record carries "ScheduleInfo": {schedule, tick}.
// See docs/events/schedule.md.
//
// It may import gateway/sources and third-party modules.
package schedule
