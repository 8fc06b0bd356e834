package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/specs/schedexpr"
)

// Lock rule: Source.mu guards claim and closed, and is held across the KV
// writes of an existing claim (renewal, Done, Close) so they apply in
// order with the claim's latest revision. Poll's own Get and claiming
// write run without it.

const (
	// DefaultBucket is the JetStream KV bucket of tick states, one key per
	// mapping UUID.
	DefaultBucket = "nimbus_schedules"
	// MinLease is the least claim lease.
	MinLease = 60 * time.Second
	// Partition is every schedule record's partition.
	Partition = "schedule"

	stateClaimed = "claimed"
	stateFired   = "fired"
)

// Options tunes a Source; zero values take the defaults. Tests shorten the
// lease.
type Options struct {
	// Lease is how long a claim stays its owner's without renewal; the
	// owner renews it every Lease/3 until Done. Another member re-claims
	// the same tick once it lapses. Default max(MinLease, 2 × the
	// function timeout).
	Lease time.Duration
	// Bucket is the KV bucket. Default DefaultBucket.
	Bucket string
	// Replicas of the bucket when this Source creates it (use 3 on a
	// clustered NATS system). Default 1.
	Replicas int
}

// state is a mapping's KV value.
type state struct {
	// Tick is the tick claimed or fired.
	Tick time.Time `json:"tick"`
	// State is "claimed" (Owner is invoking it) or "fired" (Done).
	State string `json:"state"`
	Owner string `json:"owner"`
	// At is when the claim was taken or last renewed (or the tick fired).
	At time.Time `json:"at"`
	// Attempt counts the claims of Tick (re-claims after lapsed leases).
	Attempt int `json:"attempt"`
}

// claim is this member's claimed tick: Record.Handle.
type claim struct {
	tick    time.Time
	attempt int
	rev     uint64
	event   json.RawMessage
	kv      jetstream.KeyValue
}

// Source fires one schedule mapping's ticks, exactly once across the
// gateways that share a NATS system (see the package documentation).
type Source struct {
	cfg    sources.Config
	opts   Options
	log    hclog.Logger
	sched  schedexpr.Schedule
	key    string
	since  time.Time
	js     jetstream.JetStream
	now    func() time.Time
	arn    string
	input  json.RawMessage
	stop   chan struct{}
	wg     sync.WaitGroup
	kvOnce sync.Mutex
	kv     jetstream.KeyValue

	mu     sync.Mutex
	claim  *claim
	closed bool
}

var (
	_ sources.Source  = (*Source)(nil)
	_ sources.Ordered = (*Source)(nil)
)

// Open opens a schedule mapping's Source with the default Options.
func Open(ctx context.Context, cfg sources.Config) (sources.Source, error) {
	s, err := OpenWith(ctx, cfg, Options{})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenWith opens a schedule mapping's Source. It needs the gateway's NATS
// connection (cfg.NATS) for the tick states; the bucket is created on the
// first Poll.
func OpenWith(_ context.Context, cfg sources.Config, opts Options) (*Source, error) {
	es := cfg.Spec
	if es == nil {
		return nil, errors.New("schedule source: no event source spec")
	}
	if cfg.NATS == nil {
		return nil, fmt.Errorf("schedule source %q: the gateway has no NATS connection to keep tick states in", es.Name)
	}
	if cfg.UUID == "" || cfg.Member == "" {
		return nil, fmt.Errorf("schedule source %q: the mapping UUID and the gateway member name are required", es.Name)
	}
	sched, err := schedexpr.Parse(es.Schedule)
	if err != nil {
		return nil, err
	}
	if opts.Lease <= 0 {
		opts.Lease = max(MinLease, 2*cfg.FunctionTimeout)
	}
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("schedule source %q: opening JetStream: %w", es.Name, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	rule := es.Name
	if rule == "" {
		rule = cfg.UUID
	}
	s := &Source{
		cfg:   cfg,
		opts:  opts,
		log:   logger.With("mapping", cfg.UUID, "function", cfg.Function, "partition", Partition),
		sched: sched,
		key:   kvKey(cfg.UUID),
		since: now().UTC(),
		js:    js,
		now:   func() time.Time { return now().UTC() },
		arn:   "arn:aws:events:" + cfg.Region + ":" + cfg.AccountID + ":rule/" + rule,
		stop:  make(chan struct{}),
	}
	if es.Input != "" {
		if !json.Valid([]byte(es.Input)) {
			return nil, fmt.Errorf("schedule source %q: input is not a JSON document", es.Name)
		}
		s.input = json.RawMessage(es.Input)
	}
	s.wg.Add(1)
	go s.renewLoop()
	return s, nil
}

var kvKeyRE = regexp.MustCompile(`^[-_=A-Za-z0-9]+$`)

// kvKey is the mapping's key: its UUID, or a hash of it when the UUID has
// characters a KV key cannot.
func kvKey(id string) string {
	if kvKeyRE.MatchString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "h" + hex.EncodeToString(sum[:16])
}

// Forget deletes a mapping's tick state from the default bucket (call it
// when the mapping is deleted). A missing bucket or key is not an error.
func Forget(ctx context.Context, nc *nats.Conn, mappingUUID string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	kv, err := js.KeyValue(ctx, DefaultBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening schedule bucket %s: %w", DefaultBucket, err)
	}
	if err := kv.Purge(ctx, kvKey(mappingUUID)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("deleting schedule state of mapping %s: %w", mappingUUID, err)
	}
	return nil
}

// Ordered is true: ticks fire one at a time, in order.
func (s *Source) Ordered() bool { return true }

func (s *Source) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	s.kvOnce.Lock()
	defer s.kvOnce.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	kv, err := s.js.KeyValue(ctx, s.opts.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      s.opts.Bucket,
			Description: "nimbus schedule mappings: the last tick claimed or fired, by mapping UUID",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    s.opts.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = s.js.KeyValue(ctx, s.opts.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening schedule bucket %s: %w", s.opts.Bucket, err)
	}
	s.kv = kv
	return kv, nil
}

// Poll returns the due tick when this member wins its claim; otherwise it
// waits until the next tick (or a lapsing claim), at most wait, and
// returns nil.
func (s *Source) Poll(ctx context.Context, _ int, wait time.Duration) ([]*sources.Record, error) {
	deadline := time.Now().Add(wait)
	for {
		rec, wake, err := s.try(ctx)
		if err != nil || rec != nil {
			if rec != nil {
				return []*sources.Record{rec}, nil
			}
			return nil, err
		}
		sleep := time.Until(deadline)
		if !wake.IsZero() {
			sleep = min(sleep, wake.Sub(s.now()))
		}
		if time.Until(deadline) <= 0 {
			return nil, nil
		}
		sleep = max(sleep, 5*time.Millisecond)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// try makes one claim attempt. It returns the record when this member
// claimed a tick, else when to look again (zero: no sooner than the
// caller's wait).
func (s *Source) try(ctx context.Context) (*sources.Record, time.Time, error) {
	s.mu.Lock()
	closed, holding := s.closed, s.claim != nil
	s.mu.Unlock()
	if closed {
		return nil, time.Time{}, errors.New("schedule source closed")
	}
	if holding {
		// One tick at a time: the next waits for this one's Done.
		return nil, time.Time{}, nil
	}
	kv, err := s.bucket(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := s.now()
	var cur state
	var rev uint64
	entry, err := kv.Get(ctx, s.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, time.Time{}, fmt.Errorf("reading schedule state: %w", err)
	default:
		rev = entry.Revision()
		if err := json.Unmarshal(entry.Value(), &cur); err != nil {
			return nil, time.Time{}, fmt.Errorf("decoding schedule state: %w", err)
		}
	}

	var tick time.Time
	attempt := 1
	if rev != 0 && cur.State == stateClaimed {
		lapse := cur.At.Add(s.opts.Lease)
		if cur.Owner != s.cfg.Member && now.Before(lapse) {
			return nil, lapse, nil // another member is firing it
		}
		// The holder died (or was this member before a reopen): fire the
		// same tick again, never a later one, so it is not lost.
		tick, attempt = cur.Tick.UTC(), cur.Attempt+1
		s.log.Info("re-claiming a schedule tick whose claim lapsed", "tick", tick.Format(time.RFC3339), "owner", cur.Owner)
	} else {
		floor := s.since
		if rev != 0 {
			floor = cur.Tick.UTC()
		}
		latest, due := schedexpr.LatestIn(s.sched, floor, now)
		if !due {
			return nil, s.sched.Next(laterOf(floor, now)), nil
		}
		// After an outage longer than a period only the latest missed
		// tick fires (once).
		tick = latest
	}

	val, _ := json.Marshal(state{Tick: tick, State: stateClaimed, Owner: s.cfg.Member, At: now, Attempt: attempt})
	var newRev uint64
	if rev == 0 {
		newRev, err = kv.Create(ctx, s.key, val)
	} else {
		newRev, err = kv.Update(ctx, s.key, val, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil, now, nil // another member won; look again at once
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("claiming schedule tick %s: %w", tick.Format(time.RFC3339), err)
	}
	c := &claim{tick: tick, attempt: attempt, rev: newRev, event: s.event(tick), kv: kv}
	s.mu.Lock()
	s.claim = c
	s.mu.Unlock()
	return &sources.Record{
		ID:         tick.Format(time.RFC3339),
		Partition:  Partition,
		Time:       tick,
		Deliveries: attempt,
		Size:       len(c.event),
		Filter:     filterView(c.event),
		Handle:     c,
	}, time.Time{}, nil
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Done records the ticks as fired. A claim that lapsed and went to another
// member is logged, not an error: that member fires the tick.
func (s *Source) Done(ctx context.Context, recs []*sources.Record) error {
	for _, r := range recs {
		c, ok := r.Handle.(*claim)
		if !ok {
			return fmt.Errorf("record %s is not from a schedule source", r.ID)
		}
		if err := s.finish(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) finish(ctx context.Context, c *claim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claim != c {
		return nil // already finished, or released by Close
	}
	val, _ := json.Marshal(state{Tick: c.tick, State: stateFired, Owner: s.cfg.Member, At: s.now(), Attempt: c.attempt})
	_, err := c.kv.Update(ctx, s.key, val, c.rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		s.log.Warn("schedule claim lapsed before the tick finished; another member fires it", "tick", c.tick.Format(time.RFC3339))
		s.claim = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("recording schedule tick %s as fired: %w", c.tick.Format(time.RFC3339), err)
	}
	s.claim = nil
	return nil
}

// renewLoop renews the claim every Lease/3 until it is Done, so a member
// that is alive keeps its tick however long the engine retries it.
func (s *Source) renewLoop() {
	defer s.wg.Done()
	t := time.NewTicker(max(s.opts.Lease/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.renew()
	}
}

func (s *Source) renew() {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.claim
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(s.opts.Lease/3, time.Second))
	defer cancel()
	val, _ := json.Marshal(state{Tick: c.tick, State: stateClaimed, Owner: s.cfg.Member, At: s.now(), Attempt: c.attempt})
	rev, err := c.kv.Update(ctx, s.key, val, c.rev)
	switch {
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		s.log.Warn("schedule claim lapsed and went to another member", "tick", c.tick.Format(time.RFC3339))
	case err != nil:
		s.log.Debug("renewing schedule claim", "error", err)
	default:
		c.rev = rev
	}
}

// Close stops renewing and gives an unfinished tick back at once (its
// claim is marked lapsed), so another member fires it without waiting for
// the lease.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.claim
	s.claim = nil
	if c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	val, _ := json.Marshal(state{Tick: c.tick, State: stateClaimed, Owner: s.cfg.Member, Attempt: c.attempt})
	if _, err := c.kv.Update(ctx, s.key, val, c.rev); err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("releasing schedule tick %s: %w", c.tick.Format(time.RFC3339), err)
	}
	return nil
}

// Event is the EventBridge scheduled event (or the mapping's input).
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

func (s *Source) event(tick time.Time) json.RawMessage {
	if s.input != nil {
		return s.input
	}
	b, _ := json.Marshal(&Event{
		Version:    "0",
		ID:         EventID(s.cfg.UUID, tick),
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		Account:    s.cfg.AccountID,
		Time:       tick.UTC().Format(time.RFC3339),
		Region:     s.cfg.Region,
		Resources:  []string{s.arn},
		Detail:     json.RawMessage("{}"),
	})
	return b
}

// EventID is the event id of a mapping's tick: a version-4-shaped UUID
// made from a hash of the mapping UUID and the tick, so a tick fired again
// after a failover carries the same id and functions can drop the
// duplicate.
func EventID(mappingUUID string, tick time.Time) string {
	sum := sha256.Sum256([]byte(mappingUUID + "\x00" + tick.UTC().Format(time.RFC3339)))
	var id uuid.UUID
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id.String()
}

// filterView is the event as filters see it; an input that is not a JSON
// object is under "data".
func filterView(ev json.RawMessage) map[string]any {
	var obj map[string]any
	if json.Unmarshal(ev, &obj) == nil && obj != nil {
		return obj
	}
	var v any
	_ = json.Unmarshal(ev, &v)
	return map[string]any{"data": v}
}

// Event is the tick's event: one record per batch.
func (s *Source) Event(recs []*sources.Record) (json.RawMessage, error) {
	if len(recs) != 1 {
		return nil, fmt.Errorf("a schedule batch holds one tick, got %d", len(recs))
	}
	c, ok := recs[0].Handle.(*claim)
	if !ok {
		return nil, fmt.Errorf("record %s is not from a schedule source", recs[0].ID)
	}
	return c.event, nil
}

// Info is the value of "ScheduleInfo" in an on-failure record.
type Info struct {
	Schedule string `json:"schedule"`
	Tick     string `json:"tick"`
}

// BatchInfo names the schedule and the tick of a discarded batch.
func (s *Source) BatchInfo(recs []*sources.Record) (string, any) {
	info := &Info{Schedule: s.cfg.Spec.Schedule}
	if len(recs) > 0 {
		info.Tick = recs[0].ID
	}
	return "ScheduleInfo", info
}
