package slots

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the KV bucket holding the slots.
const DefaultBucket = "nimbus_concurrency"

// Config configures Slots. Zero values take the defaults noted.
type Config struct {
	// Bucket is the KV bucket. Default DefaultBucket.
	Bucket string
	// Lease is how long a slot outlives its holder's last renewal: the
	// bucket's max age. An existing bucket keeps the lease it was created
	// with, and Open then uses that one. Default 30s; at least 300ms.
	Lease time.Duration
	// Replicas of the bucket's stream. Default 1.
	Replicas int
	// Owner names this gateway in the slots it holds. Required.
	Owner string
	// ReleaseTimeout bounds one release. Default 5s.
	ReleaseTimeout time.Duration
	// FullFor is how long Acquire answers "full" without asking NATS after
	// a scan found every slot of a function taken, so a flood of requests
	// for a saturated function costs one scan per FullFor, not one each.
	// A slot another gateway frees meanwhile waits at most this long; one
	// this gateway frees is seen at once. Default 50ms; negative: never.
	FullFor time.Duration
}

func (c *Config) defaults() {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Lease == 0 {
		c.Lease = 30 * time.Second
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.ReleaseTimeout == 0 {
		c.ReleaseTimeout = 5 * time.Second
	}
	if c.FullFor == 0 {
		c.FullFor = 50 * time.Millisecond
	}
}

// Slots acquires and renews slot leases. Safe for concurrent use.
type Slots struct {
	kv     jetstream.KeyValue
	cfg    Config
	logger hclog.Logger

	mu   sync.Mutex // guards held and full
	held map[string]*lease
	full map[string]time.Time // function → until when a scan found it full
}

// lease is one held slot. Its mutex orders renewal and release, so a
// release never deletes at a revision a renewal just replaced.
type lease struct {
	key string

	mu       sync.Mutex
	rev      uint64
	released bool
	lost     bool // another holder took it after this one lapsed
}

// Open opens (creating when absent) the bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, logger hclog.Logger) (*Slots, error) {
	cfg.defaults()
	if cfg.Owner == "" {
		return nil, errors.New("concurrency slots need an owner name")
	}
	if cfg.Lease < 300*time.Millisecond {
		return nil, fmt.Errorf("concurrency slot lease %s is below 300ms", cfg.Lease)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      cfg.Bucket,
			Description: "nimbus reserved concurrency: one key per held slot, <function>.<n>",
			History:     1,
			TTL:         cfg.Lease,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening concurrency bucket %s: %w", cfg.Bucket, err)
	}
	// The bucket's max age is the lease every gateway lives by: one
	// created earlier with another lease keeps it, and renewals follow it
	// (renewing at a third of a longer lease than the bucket's would let
	// held slots lapse).
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading concurrency bucket %s: %w", cfg.Bucket, err)
	}
	switch ttl := st.TTL(); {
	case ttl <= 0:
		return nil, fmt.Errorf("concurrency bucket %s has no max age, so a dead gateway's slots would never free: recreate it", cfg.Bucket)
	case ttl != cfg.Lease:
		logger.Warn("the concurrency bucket was created with another lease; using the bucket's",
			"bucket", cfg.Bucket, "lease", ttl, "configured", cfg.Lease)
		cfg.Lease = ttl
	}
	return &Slots{kv: kv, cfg: cfg, logger: logger.Named("slots"), held: map[string]*lease{}, full: map[string]time.Time{}}, nil
}

// Key is the KV key of a function's slot n.
func Key(function string, n int) string { return function + "." + strconv.Itoa(n) }

// taken reports whether a create failed because the key holds a value.
func taken(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// Acquire takes one of function's limit slots. ok is false when all are
// held (by any gateway); release frees the slot and must be called once
// the invocation ended. An error means NATS could not decide: the caller
// must not admit.
func (s *Slots) Acquire(ctx context.Context, function string, limit int) (release func(), ok bool, err error) {
	if limit <= 0 {
		return nil, false, nil
	}
	s.mu.Lock()
	until, known := s.full[function]
	s.mu.Unlock()
	if known && time.Now().Before(until) {
		return nil, false, nil
	}
	start := rand.IntN(limit)
	for i := range limit {
		key := Key(function, (start+i)%limit)
		s.mu.Lock()
		_, mine := s.held[key]
		s.mu.Unlock()
		if mine {
			continue
		}
		rev, err := s.kv.Create(ctx, key, []byte(s.cfg.Owner))
		if taken(err) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("taking concurrency slot %s: %w", key, err)
		}
		l := &lease{key: key, rev: rev}
		s.mu.Lock()
		s.held[key] = l
		s.mu.Unlock()
		var once sync.Once
		return func() { once.Do(func() { s.release(function, l) }) }, true, nil
	}
	if s.cfg.FullFor > 0 {
		s.mu.Lock()
		s.full[function] = time.Now().Add(s.cfg.FullFor)
		s.mu.Unlock()
	}
	return nil, false, nil
}

func (s *Slots) release(function string, l *lease) {
	s.mu.Lock()
	delete(s.held, l.key)
	s.mu.Unlock()
	defer func() {
		// Freed here: the next Acquire asks NATS again.
		s.mu.Lock()
		delete(s.full, function)
		s.mu.Unlock()
	}()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = true
	if l.lost {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReleaseTimeout)
	defer cancel()
	if err := s.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev)); err != nil {
		// The slot lapses by itself within the lease.
		s.logger.Warn("releasing a concurrency slot; it frees itself when its lease ends", "slot", l.key, "error", err)
	}
}

// Held is the number of slots this gateway holds.
func (s *Slots) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// Run renews the held slots every Lease/3 until ctx ends.
func (s *Slots) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.renew(ctx)
		}
	}
}

func (s *Slots) renew(ctx context.Context) {
	s.mu.Lock()
	ls := make([]*lease, 0, len(s.held))
	for _, l := range s.held {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	for _, l := range ls {
		s.renewOne(ctx, l)
	}
}

func (s *Slots) renewOne(ctx context.Context, l *lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released || l.lost {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Lease/3)
	defer cancel()
	rev, err := s.kv.Update(rctx, l.key, []byte(s.cfg.Owner), l.rev)
	if err == nil {
		l.rev = rev
		return
	}
	if !taken(err) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.logger.Warn("renewing a concurrency slot", "slot", l.key, "error", err)
		return
	}
	// The lease lapsed (NATS unreachable for a whole lease): take the
	// slot back if it is still free.
	if rev, err := s.kv.Create(rctx, l.key, []byte(s.cfg.Owner)); err == nil {
		l.rev = rev
		s.logger.Warn("a concurrency slot's lease lapsed; took it back", "slot", l.key)
		return
	}
	l.lost = true
	s.logger.Error("a concurrency slot's lease lapsed and another invocation holds it: reserved concurrency is exceeded until this invocation ends",
		"slot", l.key)
}
