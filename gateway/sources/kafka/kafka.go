package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// Lock rule: commitMu is taken before mu, never the other way round.
//
//   - mu guards owned and nextGen. It is held only for map work, never
//     across a network call.
//   - commitMu serialises every offset commit (Done, Close) with the group's
//     revoke and lost callbacks. A revoke callback runs with commitMu held,
//     commits what is Done for the partitions it gives up and removes them
//     from owned; once it returns, no commit for those partitions can go out
//     any more, so this member never commits (or rewinds) offsets of a
//     partition that another member already consumes.
//
// Why OnPartitionsRevoked and not BlockRebalanceOnPoll: the engine polls on
// one goroutine and finishes batches on others, much later — a batch may
// retry for as long as records live, and a failing partition blocks while
// the others keep flowing. BlockRebalanceOnPoll would hold every rebalance
// until all polled records were finished, so one stuck partition would keep
// the group from rebalancing until the coordinator evicted this member.
// Instead rebalances run freely: a revoke commits what is Done so far and
// forgets the rest, later Done calls for those records are ignored, and the
// new owner reads them again from the committed offset (at-least-once).

const (
	// fetchMaxWait bounds how long a broker holds a fetch with no new data.
	// Resume only takes effect with the next fetch, so this is also how
	// long a resumed partition may wait for its first records.
	fetchMaxWait = 500 * time.Millisecond
	// commitTimeout bounds one offset commit, so a revoke callback (which
	// the group waits for) cannot hang on an unreachable coordinator.
	commitTimeout = 10 * time.Second
	// checkEvery is how often an idle Poll re-checks that the brokers answer
	// and the topics exist; a failed check is repeated on every empty Poll.
	checkEvery = 5 * time.Second
	// checkTimeout bounds that metadata request.
	checkTimeout = 2 * time.Second
	// leaveTimeout bounds leaving the group on Close.
	leaveTimeout = 5 * time.Second
	// sessionTimeout is how long the coordinator waits for a member that
	// stopped heartbeating (a killed gateway) before giving its partitions
	// to the others; heartbeatInterval is how often members heartbeat, and
	// so how soon they notice a rebalance. These are Kafka's classic 10s/1s
	// rather than kgo's 45s/3s: a crashed gateway's partitions stall for
	// seconds, not most of a minute, at the cost of a little more traffic.
	sessionTimeout    = 10 * time.Second
	heartbeatInterval = time.Second
)

var errClosed = errors.New("kafka source is closed")

// Source is one mapping's member of its Kafka consumer group.
type Source struct {
	cl      *kgo.Client
	adm     *kadm.Client
	servers []string
	topics  []string
	group   string
	start   startPosition
	logger  hclog.Logger
	// filters: the mapping has filters, so records carry a Filter view.
	filters bool

	commitMu sync.Mutex

	mu      sync.Mutex
	owned   map[topicPartition]*assignment
	nextGen uint64

	// lastCheck and checkErr are used by Poll only (one goroutine).
	lastCheck time.Time
	checkErr  error

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ sources.Opener  = Open
	_ sources.Source  = (*Source)(nil)
	_ sources.Ordered = (*Source)(nil)
	_ sources.Pauser  = (*Source)(nil)
	_ sources.Lagger  = (*Source)(nil)
)

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// String is the engine's Partition key, "<topic>-<partition>".
func (tp topicPartition) String() string {
	return tp.topic + "-" + strconv.FormatInt(int64(tp.partition), 10)
}

// parsePartition reads "<topic>-<partition>"; topics may contain '-'.
func parsePartition(s string) (topicPartition, bool) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return topicPartition{}, false
	}
	p, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil || p < 0 {
		return topicPartition{}, false
	}
	return topicPartition{topic: s[:i], partition: int32(p)}, true
}

// assignment is this member's hold on one partition, from the group
// assigning it until it is revoked or lost. Each has its own gen, stamped on
// the records polled under it, so a Done for a record polled under an
// earlier hold of the same partition is told apart and ignored.
type assignment struct {
	gen uint64
	// name is the partition's "<topic>-<partition>" (Record.Partition) and
	// ctx a record context carrying gen: both made once per assignment
	// rather than once per record.
	name string
	ctx  context.Context
	// done is the offset to commit: the last Done record's offset + 1
	// (Offset -1 while nothing is Done).
	done kgo.EpochOffset
	// committed is the last offset this member committed under this
	// assignment (-1 none).
	committed int64
	// first is the first offset polled under this assignment (-1 none); Lag
	// counts from it while the group has no committed offset.
	first int64
}

// startPosition is where a group without committed offsets starts.
type startPosition struct {
	name   string // LATEST, TRIM_HORIZON, AT_TIMESTAMP
	millis int64  // AT_TIMESTAMP
}

func (p startPosition) offset() kgo.Offset {
	switch p.name {
	case "TRIM_HORIZON":
		return kgo.NewOffset().AtStart()
	case "AT_TIMESTAMP":
		return kgo.NewOffset().AfterMilli(p.millis)
	default:
		return kgo.NewOffset().AtEnd()
	}
}

// Open joins the mapping's consumer group. It does not wait for the
// brokers: kgo connects lazily, and a cluster that cannot be reached is an
// error from Poll.
func Open(_ context.Context, cfg sources.Config) (sources.Source, error) {
	return open(cfg)
}

// open builds the Source; extra options are for tests (shorter heartbeats).
func open(cfg sources.Config, extra ...kgo.Opt) (*Source, error) {
	if cfg.Spec == nil {
		return nil, errors.New("kafka: mapping has no settings")
	}
	servers := splitList(strings.Split(cfg.Spec.URL, ","))
	if len(servers) == 0 {
		return nil, errors.New("kafka: url names no bootstrap servers")
	}
	topics := splitList(cfg.Spec.Topics)
	if len(topics) == 0 {
		return nil, errors.New("kafka: mapping names no topics")
	}
	if cfg.Spec.Group == "" {
		return nil, errors.New("kafka: mapping names no consumer group")
	}
	start, err := parseStart(cfg.Spec.StartingFrom, cfg.Spec.StartingTimestamp)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Source{
		servers: servers,
		topics:  topics,
		group:   cfg.Spec.Group,
		start:   start,
		logger:  logger,
		filters: len(cfg.Spec.Filters) > 0,
		owned:   make(map[topicPartition]*assignment),
	}
	// Member names this gateway; it goes into the client id (broker logs,
	// group listings) but not into a static InstanceID: static members do
	// not leave the group on Close, so a stopped gateway would keep its
	// partitions until the session timed out, and Member changes with every
	// gateway process anyway.
	clientID := "nimbus"
	if cfg.Member != "" {
		clientID += "-" + cfg.Member
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(servers...),
		kgo.ClientID(clientID),
		kgo.WithLogger(kgoLogger{logger}),
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeStartOffset(start.offset()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		kgo.SessionTimeout(sessionTimeout),
		kgo.HeartbeatInterval(heartbeatInterval),
		kgo.FetchMaxWait(fetchMaxWait),
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	s.cl = cl
	s.adm = kadm.NewClient(cl)
	return s, nil
}

func parseStart(name, timestamp string) (startPosition, error) {
	switch name {
	case "", "LATEST":
		return startPosition{name: "LATEST"}, nil
	case "TRIM_HORIZON":
		return startPosition{name: name}, nil
	case "AT_TIMESTAMP":
		t, err := time.Parse(time.RFC3339, timestamp)
		if err != nil {
			return startPosition{}, fmt.Errorf("kafka: starting_position_timestamp: %w", err)
		}
		return startPosition{name: name, millis: t.UnixMilli()}, nil
	default:
		return startPosition{}, fmt.Errorf("kafka: unknown starting_position %q", name)
	}
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Ordered reports that records are processed in order per partition.
func (s *Source) Ordered() bool { return true }

// genKey stamps a polled record's *kgo.Record with its assignment's gen.
type genKey struct{}

func stamp(kr *kgo.Record, gen uint64) {
	base := kr.Context
	if base == nil {
		base = context.Background()
	}
	kr.Context = context.WithValue(base, genKey{}, gen)
}

func genOf(kr *kgo.Record) (uint64, bool) {
	if kr.Context == nil {
		return 0, false
	}
	gen, ok := kr.Context.Value(genKey{}).(uint64)
	return gen, ok
}

// Poll returns up to max buffered or newly fetched records (max <= 0 means
// no limit), waiting up to wait; wait 0 returns only what is already
// buffered. Fetch errors (including the group session's) and, when idle, a
// periodic metadata check (brokers reachable, topics exist) come back as
// errors so that a dead cluster or a missing topic shows in the mapping's
// state instead of an endless empty poll.
func (s *Source) Poll(ctx context.Context, max int, wait time.Duration) ([]*sources.Record, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if max < 0 {
		max = 0
	}
	var fetches kgo.Fetches
	if wait <= 0 {
		// A nil context makes PollRecords return what is buffered at once.
		var buffered context.Context
		fetches = s.cl.PollRecords(buffered, max)
	} else {
		pctx, cancel := context.WithTimeout(ctx, wait)
		fetches = s.cl.PollRecords(pctx, max)
		cancel()
	}

	var errs []error
	fetches.EachError(func(topic string, partition int32, err error) {
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			// Our wait ended (or the caller's context did; checked below).
		case errors.Is(err, kgo.ErrClientClosed):
			errs = append(errs, errClosed)
		case topic == "":
			errs = append(errs, fmt.Errorf("kafka: %w", err))
		default:
			errs = append(errs, fmt.Errorf("kafka: fetching %s: %w", topicPartition{topic, partition}, err))
		}
	})

	recs := s.convert(fetches)
	if len(recs) > 0 {
		// Records polled are never dropped: kgo's cursor has moved past
		// them, and a later Done would commit over them.
		if len(errs) > 0 {
			s.logger.Warn("kafka fetch error alongside records", "error", errors.Join(errs...))
		}
		return recs, nil
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.maybeCheck(ctx); err != nil {
		return nil, err
	}
	return nil, nil
}

// convert turns polled records of partitions this member owns into engine
// records, stamping each with its assignment. Records of partitions revoked
// while the poll ran are left out: they belong to the new owner.
func (s *Source) convert(fetches kgo.Fetches) []*sources.Record {
	var recs []*sources.Record
	s.mu.Lock()
	defer s.mu.Unlock()
	fetches.EachRecord(func(kr *kgo.Record) {
		tp := topicPartition{kr.Topic, kr.Partition}
		a := s.owned[tp]
		if a == nil {
			return
		}
		if kr.Context == nil {
			kr.Context = a.ctx
		} else {
			stamp(kr, a.gen)
		}
		if a.first < 0 {
			a.first = kr.Offset
		}
		rec := &sources.Record{
			ID:        strconv.FormatInt(kr.Offset, 10),
			Partition: a.name,
			Key:       string(kr.Key),
			Time:      kr.Timestamp,
			Size:      elementSize(kr),
			Handle:    kr,
		}
		if s.filters {
			rec.Filter = filterView(kr)
		}
		recs = append(recs, rec)
	})
	return recs
}

// maybeCheck asks a broker for the topics' metadata when the last check is
// older than checkEvery or failed. kgo retries unreachable brokers and
// unknown topics silently, so without this an idle Poll could not tell a
// quiet topic from a dead cluster.
func (s *Source) maybeCheck(ctx context.Context) error {
	if s.checkErr == nil && !s.lastCheck.IsZero() && time.Since(s.lastCheck) < checkEvery {
		return nil
	}
	s.lastCheck = time.Now()
	s.checkErr = s.check(ctx)
	return s.checkErr
}

func (s *Source) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, t := range s.topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return fmt.Errorf("kafka: brokers %s do not answer: %w", strings.Join(s.servers, ","), err)
	}
	var errs []error
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			errs = append(errs, fmt.Errorf("kafka: topic %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Done commits, per partition, the offset after the last of recs. Records
// of partitions this member no longer holds (revoked or lost since they
// were polled) are skipped without error: their new owner reads them again.
func (s *Source) Done(ctx context.Context, recs []*sources.Record) error {
	krs, err := handles(recs)
	if err != nil {
		return err
	}

	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	touched := map[topicPartition]bool{}
	for _, kr := range krs {
		tp := topicPartition{kr.Topic, kr.Partition}
		a := s.owned[tp]
		if gen, ok := genOf(kr); a == nil || !ok || gen != a.gen {
			continue
		}
		if next := kr.Offset + 1; next > a.done.Offset {
			a.done = kgo.EpochOffset{Epoch: kr.LeaderEpoch, Offset: next}
		}
		touched[tp] = true
	}
	s.mu.Unlock()
	if len(touched) == 0 {
		return nil
	}
	return s.commitPendingLocked(ctx, func(tp topicPartition) bool { return touched[tp] })
}

// commitPendingLocked commits every owned partition selected by want whose
// Done offset is past its committed one. Callers hold commitMu.
func (s *Source) commitPendingLocked(ctx context.Context, want func(topicPartition) bool) error {
	offsets, gens := s.pending(want)
	if len(offsets) == 0 {
		return nil
	}
	if err := s.commitLocked(ctx, offsets); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for tp, gen := range gens {
		if a := s.owned[tp]; a != nil && a.gen == gen {
			a.committed = offsets[tp.topic][tp.partition].Offset
		}
	}
	return nil
}

// pending lists the Done-but-uncommitted offsets of owned partitions chosen
// by want, with the gen each was read under.
func (s *Source) pending(want func(topicPartition) bool) (map[string]map[int32]kgo.EpochOffset, map[topicPartition]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	gens := map[topicPartition]uint64{}
	for tp, a := range s.owned {
		if !want(tp) || a.done.Offset <= a.committed {
			continue
		}
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.topic][tp.partition] = a.done
		gens[tp] = a.gen
	}
	return offsets, gens
}

// commitLocked commits offsets synchronously. Callers hold commitMu.
func (s *Source) commitLocked(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	var errs []error
	s.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", topicPartition{t.Topic, p.Partition}, err))
				}
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("kafka: committing offsets: %w", errors.Join(errs...))
	}
	return nil
}

// assigned starts a new hold on each partition the group gives this member.
// kgo calls it before fetching those partitions.
func (s *Source) assigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if s.owned[tp] != nil {
				continue // an eager re-assignment of a partition still held
			}
			s.nextGen++
			s.owned[tp] = &assignment{
				gen:       s.nextGen,
				name:      tp.String(),
				ctx:       context.WithValue(context.Background(), genKey{}, s.nextGen),
				done:      kgo.EpochOffset{Epoch: -1, Offset: -1},
				committed: -1,
				first:     -1,
			}
		}
	}
	s.logger.Debug("kafka partitions assigned", "partition", partitionNames(parts))
}

// revoked commits what is Done for the partitions given up, then forgets
// them. kgo has already stopped fetching them and waits for this callback
// before the group moves on.
func (s *Source) revoked(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	if len(parts) == 0 {
		return
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	set := partitionSet(parts)
	// The client's context is cancelled when closing; the commit still has
	// to go out, bounded by commitTimeout.
	if err := s.commitPendingLocked(context.Background(), func(tp topicPartition) bool { return set[tp] }); err != nil {
		s.logger.Warn("kafka commit on revoke", "partition", partitionNames(parts), "error", err)
	}
	s.forget(set)
	s.logger.Debug("kafka partitions revoked", "partition", partitionNames(parts))
}

// lost forgets partitions the group took away without a revoke (session
// expired, fenced): a commit could not succeed any more.
func (s *Source) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	if len(parts) == 0 {
		return
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.forget(partitionSet(parts))
	s.logger.Warn("kafka partitions lost", "partition", partitionNames(parts))
}

func (s *Source) forget(set map[topicPartition]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tp := range set {
		delete(s.owned, tp)
	}
}

func partitionSet(parts map[string][]int32) map[topicPartition]bool {
	set := map[topicPartition]bool{}
	for topic, ps := range parts {
		for _, p := range ps {
			set[topicPartition{topic, p}] = true
		}
	}
	return set
}

func partitionNames(parts map[string][]int32) []string {
	var names []string
	for topic, ps := range parts {
		for _, p := range ps {
			names = append(names, topicPartition{topic, p}.String())
		}
	}
	return names
}

// Pause stops fetching the partitions ("<topic>-<partition>"); records
// already buffered for them are dropped by kgo and fetched again on Resume.
// Names that are not partitions are ignored. Pauses outlive rebalances.
func (s *Source) Pause(partitions []string) {
	if m := partitionMap(partitions); len(m) > 0 {
		s.cl.PauseFetchPartitions(m)
	}
}

// Resume fetches paused partitions again.
func (s *Source) Resume(partitions []string) {
	if m := partitionMap(partitions); len(m) > 0 {
		s.cl.ResumeFetchPartitions(m)
	}
}

func partitionMap(partitions []string) map[string][]int32 {
	m := map[string][]int32{}
	for _, name := range partitions {
		if tp, ok := parsePartition(name); ok {
			m[tp.topic] = append(m[tp.topic], tp.partition)
		}
	}
	return m
}

// Close commits what is Done, leaves the group (so its partitions move to
// the other members at once) and closes the connections. Records not Done
// are read again by whoever owns their partition next.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.commitMu.Lock()
		s.closeErr = s.commitPendingLocked(context.Background(), func(topicPartition) bool { return true })
		s.commitMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
		defer cancel()
		if err := s.cl.LeaveGroupContext(ctx); err != nil {
			s.logger.Warn("kafka leaving group", "error", err)
		}
		s.cl.Close()
	})
	return s.closeErr
}

// kgoLogger forwards kgo's warnings and errors (and its info lines when the
// logger is at debug) to hclog, renaming kgo's "err" key to "error".
type kgoLogger struct{ l hclog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.IsDebug() {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	keyvals := make([]any, len(kv))
	copy(keyvals, kv)
	for i := 0; i+1 < len(keyvals); i += 2 {
		if keyvals[i] == "err" {
			keyvals[i] = "error"
		}
	}
	switch level {
	case kgo.LogLevelError:
		k.l.Error(msg, keyvals...)
	case kgo.LogLevelWarn:
		k.l.Warn(msg, keyvals...)
	case kgo.LogLevelInfo:
		k.l.Info(msg, keyvals...)
	default:
		k.l.Debug(msg, keyvals...)
	}
}
