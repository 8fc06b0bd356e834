package sources

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/nimbus-fn/nimbus/specs"
)

// Record is one message read from a broker.
//
// The source fills every field; the engine reads them and never looks
// inside Handle.
type Record struct {
	// ID is what a function names in batchItemFailures' itemIdentifier
	// (Kafka: the offset as a decimal string; Redis: the entry id; NATS:
	// the stream sequence as a decimal string; RabbitMQ: the message id,
	// else the delivery tag). Unique within a batch.
	ID string
	// Partition is the ordering key: an ordered source's records with the
	// same Partition are processed in order, one batch at a time (Kafka
	// "topic-partition", Redis the stream key, NATS the subject when the
	// mapping is ordered). Queue-like sources leave it empty.
	Partition string
	// Key is the record's key within its Partition for an ordered
	// mapping's parallelization_factor lanes: records with the same Key
	// share a lane and so keep their order (Kafka the record key, Redis the
	// entry's field "key"). Empty means none: the engine then spreads the
	// record over the lanes by its ID.
	Key string
	// Time is when the broker received the record (record age, lag).
	Time time.Time
	// Deliveries is how many times the broker has delivered this record,
	// this delivery included (queue-like sources; 0 when unknown).
	Deliveries int
	// Size is the record's size in bytes as it will count against the
	// function's payload limit (its element of the event, roughly).
	Size int
	// Filter is the record as filter patterns see it: metadata keys plus
	// the payload under the source's data key ("value" for Kafka, "data"
	// for NATS/Redis/RabbitMQ), decoded from JSON when the payload is a
	// JSON object, else the payload as a string. See sources/filter.
	// Kafka, NATS and Redis sources leave it nil when the mapping has no
	// filters (Config.Spec.Filters is empty): the engine reads it only to
	// match them, and decoding every payload for nothing cost more than
	// anything else the gateway does per record.
	Filter map[string]any
	// Handle is the source's own reference (offset, delivery tag, message).
	Handle any
}

// Source reads one mapping's records from its broker. One engine goroutine
// calls Poll; Done and Redeliver may be called from other goroutines,
// concurrently with Poll.
type Source interface {
	// Poll waits up to wait for records and returns at most max of them
	// (nil, nil when none arrived in time). An error means the broker or
	// the stream cannot be read right now: the engine records it in the
	// mapping's state, backs off and polls again.
	Poll(ctx context.Context, max int, wait time.Duration) ([]*Record, error)
	// Done marks records finished — processed, filtered out, or sent to
	// on_failure — so the broker never delivers them again to this group
	// (Kafka commits the offset after the last one per partition, Redis
	// XACKs, NATS acks, RabbitMQ acks). For an ordered source the engine
	// calls Done per partition in record order.
	Done(ctx context.Context, recs []*Record) error
	// Event builds the function's event for a batch (non-empty, all from
	// one Partition for ordered sources) in the source's documented shape.
	Event(recs []*Record) (json.RawMessage, error)
	// BatchInfo describes a discarded batch for the on-failure record:
	// the key Lambda uses ("KafkaBatchInfo", "NATSBatchInfo", …) and its
	// value (coordinates only, never the payload).
	BatchInfo(recs []*Record) (key string, info any)
	// Close releases the broker connection. Records not yet Done are
	// delivered again (to this gateway or another member of the group).
	Close() error
}

// Ordered is implemented by sources whose records must be processed in
// order per Partition (Kafka, Redis streams, NATS with ordering). The
// engine then never runs two batches of one partition at once and never
// lets a later batch of a partition finish before an earlier one: a failing
// batch blocks its partition until it succeeds, its retries are exhausted
// or its records age out.
type Ordered interface {
	Ordered() bool
}

// Redeliverer is implemented by queue-like sources (RabbitMQ, NATS work
// queues): records whose invocation failed go back to the broker to be
// delivered again after delay, and Deliveries counts the attempts.
type Redeliverer interface {
	Redeliver(ctx context.Context, recs []*Record, delay time.Duration) error
}

// Pauser is implemented by ordered sources that can stop fetching some
// partitions while the engine retries a batch of them, so other partitions
// keep flowing without unbounded buffering. The engine pauses a partition
// that holds two batches while its batch in flight is being retried, and
// resumes it once it is down to one batch; healthy partitions are never
// paused (a pause drops what the client has fetched, and a resumed Kafka
// partition waits for the fetch in flight): when every fetching partition
// is full and healthy the engine stops polling instead. With
// parallelization_factor a partition's lanes share its pause: it is paused
// while any of its lanes wants it paused.
type Pauser interface {
	Pause(partitions []string)
	Resume(partitions []string)
}

// Lagger is implemented by sources that can report their backlog.
type Lagger interface {
	Lag(ctx context.Context) ([]PartitionLag, error)
}

// PartitionLag is one partition's (or queue's) backlog.
type PartitionLag struct {
	Partition string `json:"partition"`
	// Records not yet consumed by the group (Kafka: high watermark minus
	// committed offset; Redis: entries after the group's last id plus
	// pending; NATS: num pending + ack pending; RabbitMQ: ready messages).
	Records int64 `json:"records"`
}

// Config is what a source is opened with.
type Config struct {
	// UUID identifies the mapping (stable across restarts and gateways).
	UUID string
	// Function is the function the mapping invokes (used in default names).
	Function string
	// Spec is the mapping's settings: URL, Stream, Subject, Topics, Queue,
	// Group, StartingFrom, StartingTimestamp, Schedule, Input. Parse has
	// filled the defaults.
	Spec *specs.EventSource
	// Member names this gateway within consumer groups (unique per
	// gateway process, stable for its life: Redis consumer name, Kafka
	// instance id, lock owner).
	Member string
	// FunctionTimeout is the invoked function's timeout: a record taken by
	// a member that has not finished it after several times this long may
	// be claimed by another (Redis XAUTOCLAIM, NATS ack wait, lock leases).
	FunctionTimeout time.Duration
	// NATS is the gateway's own NATS connection, for `nats` mappings with
	// no URL and for schedule locks. Nil when the gateway has none.
	NATS *nats.Conn
	// Region and AccountID make ARNs in events.
	Region    string
	AccountID string
	Logger    hclog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Opener opens a source of one type. It should not block for long: a
// broker that is down is an error from Poll (retried), not from Open,
// where the client library allows it.
type Opener func(ctx context.Context, cfg Config) (Source, error)
