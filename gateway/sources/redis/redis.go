package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"

	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/specs"
)

// Lock rule: mu guards inflight and lastSeen (Poll, Done and the lease
// keeper touch them from different goroutines); groupMu serialises group
// creation (Poll and Lag). The poll* fields belong to the one goroutine that
// calls Poll and need no lock. Never hold mu while talking to Redis.

const (
	defaultDialTimeout = 2 * time.Second
	defaultReadTimeout = 3 * time.Second
	minClaimIdle       = 30 * time.Second
	maxClaimInterval   = 5 * time.Second
	// ackChunk bounds the ids of one XACK / XCLAIM command.
	ackChunk = 1000
	// lagCountCap bounds the entries Lag counts itself when Redis cannot
	// tell the group's lag (Redis < 7, or after entries were deleted).
	lagCountCap = 10000
	// blockSlice is the longest single blocking read.
	blockSlice = time.Second
	// maxSeq is the largest sequence part of a stream id.
	maxSeq = "18446744073709551615"
)

// Options tune a Source beyond its sources.Config. The zero value means
// the defaults.
type Options struct {
	// ClaimIdle is how long an entry must have been pending on another
	// consumer of the group (a gateway that died holding it) before Poll
	// takes it over with XAUTOCLAIM.
	// Default: 3 × Config.FunctionTimeout + 30s, at least 30s.
	ClaimIdle time.Duration
	// ClaimInterval is how often Poll looks for such entries, and how often
	// the source renews the idle time of the entries it holds itself so
	// that no other gateway claims them while the engine still works on
	// them (retries of a blocked partition can outlast ClaimIdle).
	// Default: ClaimIdle / 4, at most 5s.
	ClaimInterval time.Duration
	// DialTimeout bounds connecting to Redis. Default: 2s.
	DialTimeout time.Duration
	// ReadTimeout bounds each reply, beyond the wait of a blocking read.
	// Default: 3s.
	ReadTimeout time.Duration
}

// Source reads one Redis stream through a consumer group. See the package
// documentation.
type Source struct {
	client   *goredis.Client
	stream   string
	filters  bool // the mapping has filters: records carry a Filter view
	group    string
	consumer string
	startID  string // where a new group starts
	arn      string // eventSourceArn: URL without credentials + "/" + stream
	password string // only to keep it out of error strings
	opts     Options
	log      hclog.Logger
	now      func() time.Time

	groupMu    sync.Mutex
	groupReady bool
	groupMade  bool // created (or found) once: a later creation is a recreation

	mu       sync.Mutex
	inflight map[string]struct{} // ids handed out by Poll and not yet Done
	lastSeen string              // highest id handed out by Poll

	// Owned by the Poll goroutine.
	pollRescan      bool   // read this consumer's own pending entries first
	pollCursor      string // where the own-pending scan continues
	pollClaimCursor string // where the XAUTOCLAIM scan continues
	pollNextClaim   time.Time

	stop      chan struct{}
	keeper    sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	_ sources.Source  = (*Source)(nil)
	_ sources.Ordered = (*Source)(nil)
	_ sources.Lagger  = (*Source)(nil)
	_ sources.Opener  = Open
)

// Open opens a Source with the default Options (matches sources.Opener).
func Open(ctx context.Context, cfg sources.Config) (sources.Source, error) {
	return OpenWith(ctx, cfg, Options{})
}

// OpenWith opens a Source. It does not contact Redis: the group is created
// by the first Poll (or Lag), so a Redis that is down is an error from Poll.
func OpenWith(_ context.Context, cfg sources.Config, o Options) (*Source, error) {
	spec := cfg.Spec
	if spec == nil {
		return nil, errors.New("redis source: no event source spec")
	}
	if spec.Stream == "" {
		return nil, errors.New("redis source: stream is required")
	}
	if cfg.Member == "" {
		return nil, errors.New("redis source: member (consumer name) is required")
	}
	ropts, u, err := parseURL(spec.URL)
	if err != nil {
		return nil, err
	}
	startID, err := startingID(spec.StartingFrom, spec.StartingTimestamp)
	if err != nil {
		return nil, err
	}
	group := spec.Group
	if group == "" {
		group = specs.DefaultGroup(cfg.Function, spec.Name)
	}
	o = o.withDefaults(cfg.FunctionTimeout)

	ropts.DialTimeout = o.DialTimeout
	ropts.ReadTimeout = o.ReadTimeout
	ropts.WriteTimeout = o.ReadTimeout
	ropts.ContextTimeoutEnabled = true
	ropts.MaxRetries = 1
	ropts.DialerRetries = 2
	ropts.PoolSize = 4
	ropts.ClientName = clientName(cfg.Member)

	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Source{
		client:     goredis.NewClient(ropts),
		stream:     spec.Stream,
		filters:    len(spec.Filters) > 0,
		group:      group,
		consumer:   cfg.Member,
		startID:    startID,
		arn:        u.Scheme + "://" + ropts.Addr + "/" + strconv.Itoa(ropts.DB) + "/" + spec.Stream,
		password:   ropts.Password,
		opts:       o,
		log:        log.Named("redis").With("partition", spec.Stream),
		now:        now,
		inflight:   map[string]struct{}{},
		pollRescan: true,
		pollCursor: "0",

		pollClaimCursor: "0-0",
		stop:            make(chan struct{}),
	}
	s.keeper.Add(1)
	go s.keepLeases()
	return s, nil
}

func (o Options) withDefaults(functionTimeout time.Duration) Options {
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = max(3*functionTimeout+30*time.Second, minClaimIdle)
	}
	if o.ClaimInterval <= 0 {
		o.ClaimInterval = min(o.ClaimIdle/4, maxClaimInterval)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = defaultReadTimeout
	}
	return o
}

// clientName is the connection name (CLIENT SETNAME) for a member: Redis
// refuses names with spaces or characters outside '!'..'~'.
func clientName(member string) string {
	return "nimbus-" + strings.Map(func(r rune) rune {
		if r < '!' || r > '~' {
			return '_'
		}
		return r
	}, member)
}

// parseURL parses a redis:// or rediss:// URL without ever putting the URL
// (which may hold a password) into an error.
func parseURL(raw string) (*goredis.Options, *url.URL, error) {
	if raw == "" {
		return nil, nil, errors.New("redis source: url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("redis source: parsing url: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, nil, fmt.Errorf("redis source: url scheme %q is not redis or rediss", u.Scheme)
	}
	o, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("redis source: parsing url: %w", redact(err, passwordOf(u)))
	}
	return o, u, nil
}

func passwordOf(u *url.URL) string {
	if u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// startingID maps the mapping's starting position to the id a new group
// starts after. AT_TIMESTAMP starts just before the timestamp's first
// possible id, so an entry added in that very millisecond is included.
func startingID(from, timestamp string) (string, error) {
	switch from {
	case "", "LATEST":
		return "$", nil
	case "TRIM_HORIZON":
		return "0", nil
	case "AT_TIMESTAMP":
		if timestamp == "" {
			return "", errors.New("redis source: AT_TIMESTAMP needs a starting_position_timestamp")
		}
		t, err := time.Parse(time.RFC3339, timestamp)
		if err != nil {
			return "", fmt.Errorf("redis source: starting_position_timestamp: %w", err)
		}
		ms := t.UnixMilli()
		if ms <= 0 {
			return "0", nil
		}
		return strconv.FormatInt(ms-1, 10) + "-" + maxSeq, nil
	default:
		return "", fmt.Errorf("redis source: unknown starting position %q", from)
	}
}

// Ordered reports that the entries of the stream (the Partition) must be
// processed in order.
func (s *Source) Ordered() bool { return true }

// Poll returns up to limit entries: entries another consumer left pending for
// longer than ClaimIdle (checked every ClaimInterval), then this consumer's
// own pending entries (after a restart, or after a read error that may have
// lost a reply), then new entries, waiting up to wait for them.
func (s *Source) Poll(ctx context.Context, limit int, wait time.Duration) ([]*sources.Record, error) {
	limit = max(limit, 1)
	if err := s.ensureGroup(ctx); err != nil {
		return nil, s.pollError(err)
	}
	recs, err := s.poll(ctx, limit, wait)
	if err != nil && groupLost(err) {
		s.log.Warn("consumer group is gone; recreating it", "error", s.safe(err))
		s.groupMu.Lock()
		s.groupReady = false
		s.groupMu.Unlock()
		if err := s.ensureGroup(ctx); err != nil {
			return nil, s.pollError(err)
		}
		s.pollRescan, s.pollCursor, s.pollClaimCursor = false, "0", "0-0"
		recs, err = s.poll(ctx, limit, wait)
	}
	if err != nil {
		return nil, s.pollError(err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	for _, r := range recs {
		s.inflight[r.ID] = struct{}{}
		if compareIDs(r.ID, s.lastSeen) > 0 {
			s.lastSeen = r.ID
		}
	}
	s.mu.Unlock()
	return recs, nil
}

// pollError prepares an error for the engine. A failed read may have been
// executed by Redis with its reply lost, leaving entries pending on this
// consumer that nobody holds: the next Poll scans them first.
func (s *Source) pollError(err error) error {
	s.pollRescan, s.pollCursor = true, "0"
	return fmt.Errorf("redis stream %q: %w", s.stream, s.safe(err))
}

func (s *Source) poll(ctx context.Context, limit int, wait time.Duration) ([]*sources.Record, error) {
	if now := s.now(); !now.Before(s.pollNextClaim) {
		recs, done, err := s.claim(ctx, limit)
		if err != nil {
			return nil, err
		}
		if done {
			s.pollNextClaim = now.Add(s.opts.ClaimInterval)
		}
		if len(recs) > 0 {
			return recs, nil
		}
	}
	if s.pollRescan {
		recs, err := s.readOwnPending(ctx, limit)
		if err != nil || len(recs) > 0 {
			return recs, err
		}
	}
	return s.readNew(ctx, limit, wait)
}

// claim takes over entries idle for ClaimIdle on any consumer of the group.
// done is false while the scan of the group's pending list is unfinished.
func (s *Source) claim(ctx context.Context, limit int) (recs []*sources.Record, done bool, err error) {
	msgs, next, err := s.client.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
		Stream:   s.stream,
		Group:    s.group,
		Consumer: s.consumer,
		MinIdle:  s.opts.ClaimIdle,
		Start:    s.pollClaimCursor,
		Count:    int64(limit),
	}).Result()
	if err != nil {
		return nil, false, fmt.Errorf("claiming idle entries: %w", err)
	}
	s.pollClaimCursor = next
	msgs = s.notHeld(msgs)
	if len(msgs) > 0 {
		s.log.Info("claimed entries left pending by another consumer", "count", len(msgs), "first_id", msgs[0].ID)
	}
	return s.records(ctx, msgs, true), next == "0-0" || next == "", nil
}

// readOwnPending reads entries already pending on this consumer that this
// Source does not hold (left by an earlier process with the same Member, or
// delivered by a read whose reply was lost).
func (s *Source) readOwnPending(ctx context.Context, limit int) ([]*sources.Record, error) {
	for {
		res, err := s.client.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group:    s.group,
			Consumer: s.consumer,
			Streams:  []string{s.stream, s.pollCursor},
			Count:    int64(limit),
			Block:    -1,
		}).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("reading own pending entries: %w", err)
		}
		msgs := messagesOf(res)
		if len(msgs) == 0 {
			s.pollRescan, s.pollCursor = false, "0"
			return nil, nil
		}
		s.pollCursor = msgs[len(msgs)-1].ID
		var gone []string
		live := msgs[:0:0]
		for _, m := range msgs {
			if len(m.Values) == 0 {
				gone = append(gone, m.ID) // deleted from the stream; still pending
				continue
			}
			live = append(live, m)
		}
		if len(gone) > 0 {
			if err := s.client.XAck(ctx, s.stream, s.group, gone...).Err(); err != nil {
				return nil, fmt.Errorf("acking deleted entries: %w", err)
			}
		}
		if live = s.notHeld(live); len(live) > 0 {
			return s.records(ctx, live, true), nil
		}
	}
}

// readNew reads entries never delivered to the group, waiting up to wait
// for them. The wait is cut into blocking reads of at most blockSlice so
// that a cancelled ctx ends Poll soon (Redis cannot be told to stop a
// blocked read through a context).
func (s *Source) readNew(ctx context.Context, limit int, wait time.Duration) ([]*sources.Record, error) {
	deadline := time.Now().Add(wait)
	for {
		args := &goredis.XReadGroupArgs{
			Group:    s.group,
			Consumer: s.consumer,
			Streams:  []string{s.stream, ">"},
			Count:    int64(limit),
			Block:    -1, // no BLOCK argument: answer at once
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if remaining := time.Until(deadline); remaining > 0 {
			// BLOCK 0 would wait forever: never round a short wait down to it.
			args.Block = max(min(remaining, blockSlice).Truncate(time.Millisecond), time.Millisecond)
			rctx, cancel = context.WithTimeout(ctx, args.Block+s.opts.ReadTimeout)
		}
		res, err := s.client.XReadGroup(rctx, args).Result()
		cancel()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			if ctx.Err() != nil {
				return nil, nil // the caller stopped waiting
			}
			return nil, fmt.Errorf("reading new entries: %w", err)
		default:
			if recs := s.records(ctx, messagesOf(res), false); len(recs) > 0 {
				return recs, nil
			}
		}
		if ctx.Err() != nil || args.Block < 0 || !time.Now().Before(deadline) {
			return nil, nil
		}
	}
}

func messagesOf(res []goredis.XStream) []goredis.XMessage {
	var out []goredis.XMessage
	for _, st := range res {
		out = append(out, st.Messages...)
	}
	return out
}

// notHeld drops entries this Source has handed out and not yet seen Done
// (they may come back from XAUTOCLAIM or an own-pending scan) and entries
// deleted from the stream.
func (s *Source) notHeld(msgs []goredis.XMessage) []goredis.XMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := msgs[:0:0]
	for _, m := range msgs {
		if _, held := s.inflight[m.ID]; held || len(m.Values) == 0 {
			continue
		}
		out = append(out, m)
	}
	return out
}

// records turns entries into Records. Entries read for the first time
// (">") are on their first delivery; for entries read again (own pending,
// claimed) the delivery count comes from XPENDING, 0 when it cannot be read.
func (s *Source) records(ctx context.Context, msgs []goredis.XMessage, again bool) []*sources.Record {
	if len(msgs) == 0 {
		return nil
	}
	var counts map[string]int
	if again {
		counts = s.deliveryCounts(ctx, msgs)
	}
	recs := make([]*sources.Record, len(msgs))
	for i, m := range msgs {
		e := newEntry(m)
		d := 1
		if again {
			d = counts[m.ID]
		}
		recs[i] = &sources.Record{
			ID:         m.ID,
			Partition:  s.stream,
			Key:        e.fields[KeyField],
			Time:       e.time(),
			Deliveries: d,
			Size:       e.size(),
			Handle:     e,
		}
		if s.filters {
			recs[i].Filter = e.filter(s.stream)
		}
	}
	return recs
}

func (s *Source) deliveryCounts(ctx context.Context, msgs []goredis.XMessage) map[string]int {
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XPendingExt(ctx, &goredis.XPendingExtArgs{
			Stream: s.stream, Group: s.group, Start: m.ID, End: m.ID, Count: 1, Consumer: s.consumer,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		s.log.Debug("reading delivery counts", "error", s.safe(err))
	}
	counts := make(map[string]int, len(msgs))
	for _, c := range cmds {
		for _, p := range c.Val() {
			counts[p.ID] = int(p.RetryCount)
		}
	}
	return counts
}

// ensureGroup creates the consumer group (and the stream) unless it is
// known to exist. An existing group keeps its position. A group created
// again after it vanished (stream deleted, Redis restarted without
// persistence) starts after the last entry this Source handed out, or at
// the stream's start when it handed out none: entries of a re-created
// stream are not skipped.
func (s *Source) ensureGroup(ctx context.Context) error {
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	if s.groupReady {
		return nil
	}
	start := s.startID
	if s.groupMade {
		s.mu.Lock()
		start = s.lastSeen
		s.mu.Unlock()
		if start == "" {
			start = "0"
		}
	}
	err := s.client.XGroupCreateMkStream(ctx, s.stream, s.group, start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("creating consumer group %q: %w", s.group, err)
	}
	if err == nil {
		s.log.Debug("created consumer group", "group", s.group, "start_id", start)
	}
	s.groupReady, s.groupMade = true, true
	return nil
}

// groupLost tells whether err means the group (or its stream) no longer
// exists.
func groupLost(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "NOGROUP") || strings.Contains(msg, "no longer exists")
}

// Done acknowledges entries (XACK, pipelined in chunks) so the group never
// delivers them again.
func (s *Source) Done(ctx context.Context, recs []*sources.Record) error {
	if len(recs) == 0 {
		return nil
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	pipe := s.client.Pipeline()
	for start := 0; start < len(ids); start += ackChunk {
		pipe.XAck(ctx, s.stream, s.group, ids[start:min(start+ackChunk, len(ids))]...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !groupLost(err) {
		return fmt.Errorf("redis stream %q: acking %d entries: %w", s.stream, len(ids), s.safe(err))
	}
	// With the group gone nothing is pending any more: forget them too.
	s.mu.Lock()
	for _, id := range ids {
		delete(s.inflight, id)
	}
	s.mu.Unlock()
	return nil
}

// keepLeases renews the idle time of the entries this Source holds, every
// ClaimInterval, so that no other consumer claims them while the engine is
// still working on them.
func (s *Source) keepLeases() {
	defer s.keeper.Done()
	t := time.NewTicker(s.opts.ClaimInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*s.opts.ReadTimeout)
		if err := s.renewLeases(ctx); err != nil {
			s.log.Debug("renewing held entries", "error", s.safe(err))
		}
		cancel()
	}
}

// renewLeases resets the idle time (XCLAIM … JUSTID, which leaves the
// delivery count alone) of held entries that are still pending on this
// consumer and idle for ClaimIdle/3 or longer. Entries another consumer
// claimed meanwhile are left to it.
func (s *Source) renewLeases(ctx context.Context) error {
	s.mu.Lock()
	n := len(s.inflight)
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	pending, err := s.client.XPendingExt(ctx, &goredis.XPendingExtArgs{
		Stream: s.stream, Group: s.group, Idle: s.opts.ClaimIdle / 3,
		Start: "-", End: "+", Count: int64(n) + ackChunk, Consumer: s.consumer,
	}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	var ids []string
	s.mu.Lock()
	for _, p := range pending {
		if _, held := s.inflight[p.ID]; held {
			ids = append(ids, p.ID)
		}
	}
	s.mu.Unlock()
	for start := 0; start < len(ids); start += ackChunk {
		err := s.client.XClaimJustID(ctx, &goredis.XClaimArgs{
			Stream:   s.stream,
			Group:    s.group,
			Consumer: s.consumer,
			MinIdle:  s.opts.ClaimIdle / 3,
			Messages: ids[start:min(start+ackChunk, len(ids))],
		}).Err()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
	}
	return nil
}

// Close stops the lease keeper and closes the client. Entries not Done stay
// pending on this consumer: a Source with the same Member reads them first,
// other members claim them after ClaimIdle.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.keeper.Wait()
		if err := s.client.Close(); err != nil {
			s.closeErr = fmt.Errorf("redis stream %q: closing: %w", s.stream, s.safe(err))
		}
	})
	return s.closeErr
}

// safe keeps the URL's password out of an error's text.
func (s *Source) safe(err error) error { return redact(err, s.password) }

// redact returns err, or an error with the same chain whose text has
// password replaced, when the text contains it.
func redact(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redacted{msg: strings.ReplaceAll(err.Error(), password, "REDACTED"), err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// compareIDs orders stream ids ("ms-seq"); "" sorts first.
func compareIDs(a, b string) int {
	am, as := splitID(a)
	bm, bs := splitID(b)
	switch {
	case am != bm:
		return cmpUint(am, bm)
	default:
		return cmpUint(as, bs)
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func splitID(id string) (ms, seq uint64) {
	m, q, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(q, 10, 64)
	return ms, seq
}
