// Package redis is the Redis Streams event source: it implements
// sources.Source, sources.Ordered (the Partition is the stream key) and
// sources.Lagger over one stream and one consumer group, with
// github.com/redis/go-redis/v9.
//
// # Mapping settings
//
// URL is redis://[user:pass@]host:port/db or rediss:// for TLS. Stream is
// the key. Group is the consumer group (specs fills a default); the gateway's
// Member is the consumer name. The first Poll creates the group, and the
// stream when missing (XGROUP CREATE … MKSTREAM), at the starting position:
// LATEST starts at "$" (entries added from now on), TRIM_HORIZON at "0" (the
// whole stream), AT_TIMESTAMP at the first entry added in or after the
// millisecond of starting_position_timestamp (RFC 3339). An existing group
// keeps its position. A group that vanishes (the stream was deleted, Redis
// restarted without persistence) is created again after the last entry
// this source handed out, or at the stream's start when it handed out none.
//
// # Reading
//
// Poll reads, in this order: entries other consumers of the group left
// pending for longer than the claim idle time (XAUTOCLAIM, looked for at
// most every ClaimInterval; the idle time is 3 × the function timeout + 30s,
// at least 30s), so work held by a gateway that died is taken over; then
// this consumer's own pending entries (XREADGROUP with id 0: entries left by
// an earlier process with the same Member, or by a read whose reply was
// lost); then new entries (XREADGROUP ">", COUNT max, BLOCK up to wait in
// reads of at most a second, so a cancelled context ends Poll soon; a wait
// of 0 does not block). Entries the source has handed out and not seen Done
// are never handed out twice; their idle time is renewed every
// ClaimInterval so that no other gateway claims them while the engine
// retries them. Done acknowledges with XACK. Entries are at-least-once:
// one taken over from a gateway that was only slow is processed twice.
//
// Each Record has ID = the entry id, Partition = the stream key, Key = the
// entry's field "key" (KeyField; parallelization_factor lanes go by it,
// empty when the entry has none), Time = the
// id's millisecond part, Deliveries = the entry's delivery count (1 for a
// new entry; from XPENDING for an entry read again, 0 when unknown), Size =
// the sum of the lengths of field names and values, and Filter =
//
//	{"stream": "orders", "id": "1718000000000-0", "timestamp": 1718000000000,
//	 "fields": {"data": "{\"amount\":12}", "kind": "order"},
//	 "data": {"amount": 12}}
//
// where "data" is the "data" field decoded when it is a JSON object, else
// its string, and is absent when the entry has no "data" field. Handle is
// the source's own copy of the entry.
//
// A Redis that is down or unreachable makes Poll fail within a few seconds
// (bounded dial and read timeouts); the engine backs off and polls again.
//
// # Event
//
// The function receives (see Event, EventRecord and docs/events/redis.md):
//
//	{
//	  "eventSource": "nimbus:redis",
//	  "eventSourceArn": "redis://redis.service.consul:6379/0/orders",
//	  "records": [
//	    {"stream": "orders", "id": "1718000000000-0", "timestamp": 1718000000000,
//	     "fields": {"data": "{\"amount\":12}", "kind": "order"},
//	     "data": "eyJhbW91bnQiOjEyfQ=="}
//	  ]
//	}
//
// data is the base64 of the "data" field, or of the JSON object of all
// fields when the entry has none. A discarded batch is described in the
// on-failure record under "RedisBatchInfo" (see BatchInfo): stream, group,
// startId, endId, batchSize, approximateArrivalOfFirstRecord,
// approximateArrivalOfLastRecord. The URL's credentials never appear in
// events, on-failure records, errors or logs.
//
// It may import gateway/**, specs, driver/invokeapi and third-party modules.
package redis
