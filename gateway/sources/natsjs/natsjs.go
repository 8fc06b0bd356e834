package natsjs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// Lock rule: Source.mu guards cons, stream, pinID, inflight and closed.
// It is never held across a call to the server except the (bounded)
// consumer set-up in consumer(), which only Poll runs.

// Defaults of Options.
const (
	// DefaultMaxAckPending bounds the records the durable hands out without
	// an ack, across every gateway sharing it: a gateway that holds this
	// many records not yet Done gets nothing more until it finishes some.
	// It bounds the engine's buffering and, for ordered streams, how far a
	// blocked subject lets the others run ahead.
	DefaultMaxAckPending = 1000
	// MinAckWait is the least AckWait: the server redelivers a record whose
	// holder has neither acked it nor reported progress for this long.
	MinAckWait = 30 * time.Second
	// PriorityGroup is the pull priority group of the ordered mode's pinned
	// consumer.
	PriorityGroup = "nimbus"
)

// Options tunes a Source; zero values take the defaults. Tests shorten the
// timings.
type Options struct {
	// AckWait is the durable's ack wait. Default max(MinAckWait,
	// 3 × FunctionTimeout). While a record is not Done its Source reports
	// progress every AckWait/3, so only a gateway that died (or closed its
	// connection) has its records redelivered.
	AckWait time.Duration
	// MaxAckPending is the durable's limit of records handed out but not
	// acked. Default DefaultMaxAckPending.
	MaxAckPending int
	// PinnedTTL (ordered mode) is how long the pinned gateway may go
	// without pulling before the server pins another one. Default AckWait.
	PinnedTTL time.Duration
	// OpenTimeout bounds Open's look-up of the stream's retention.
	// Default 5s.
	OpenTimeout time.Duration
}

func (o *Options) defaults(cfg *sources.Config) {
	if o.AckWait <= 0 {
		o.AckWait = max(MinAckWait, 3*cfg.FunctionTimeout)
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = DefaultMaxAckPending
	}
	if o.PinnedTTL <= 0 {
		o.PinnedTTL = o.AckWait
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = 5 * time.Second
	}
}

// Open opens a `nats` mapping's Source with the default Options.
func Open(ctx context.Context, cfg sources.Config) (sources.Source, error) {
	return OpenWith(ctx, cfg, Options{})
}

// OpenWith opens a `nats` mapping's Source. It connects (to cfg.Spec.URL,
// or uses cfg.NATS) and looks the stream up, bounded by opts.OpenTimeout,
// to choose the mode from the stream's retention: a work-queue or interest
// stream gives a queue-like Source (a sources.Redeliverer, not ordered), a
// limits stream an ordered one. A stream that cannot be read yet gives an
// ordered Source (correct for every retention) whose Poll reports why.
func OpenWith(ctx context.Context, cfg sources.Config, opts Options) (sources.Source, error) {
	es := cfg.Spec
	if es == nil {
		return nil, errors.New("nats source: no event source spec")
	}
	if es.Stream == "" {
		return nil, errors.New("nats source: no stream")
	}
	if es.Group == "" {
		return nil, fmt.Errorf("nats source on stream %q: no group (durable name)", es.Stream)
	}
	opts.defaults(&cfg)
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Source{
		cfg:      cfg,
		opts:     opts,
		log:      logger.With("mapping", cfg.UUID, "function", cfg.Function),
		inflight: map[*handle]struct{}{},
		stop:     make(chan struct{}),
		secrets:  secretsOf(es.URL),
		drain:    drainGap,
	}
	if w, err := time.ParseDuration(es.MaximumBatchingWindow); err == nil && w == 0 {
		s.drain = 0
	}
	var err error
	if s.deliver, s.startTime, err = deliverPolicy(es.StartingFrom, es.StartingTimestamp); err != nil {
		return nil, fmt.Errorf("nats source on stream %q: %w", es.Stream, err)
	}
	s.arn = "nats:" + es.Stream
	if es.Subject != "" {
		s.arn += ":" + es.Subject
	}
	if es.URL == "" {
		if cfg.NATS == nil {
			return nil, fmt.Errorf("nats source on stream %q: no url and the gateway has no NATS connection", es.Stream)
		}
		s.nc = cfg.NATS
	} else {
		s.nc, err = nats.Connect(es.URL,
			nats.Name("nimbus-source-"+cfg.UUID),
			nats.MaxReconnects(-1),
			nats.RetryOnFailedConnect(true))
		if err != nil {
			return nil, s.redact(fmt.Errorf("nats source on stream %q: connecting to %s: %w", es.Stream, redactURL(es.URL), err))
		}
		s.ownConn = true
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		s.closeConn()
		return nil, s.redact(fmt.Errorf("nats source on stream %q: opening JetStream: %w", es.Stream, err))
	}

	// Choose the mode. A stream we cannot read now leaves the Source
	// ordered; Poll names the problem.
	lctx, cancel := context.WithTimeout(ctx, opts.OpenTimeout)
	stream, err := s.js.Stream(lctx, es.Stream)
	cancel()
	if err == nil {
		s.modeKnown = true
		s.queue = stream.CachedInfo().Config.Retention != jetstream.LimitsPolicy
	} else {
		s.log.Warn("nats stream not readable at open; the mapping runs ordered (per subject) until reopened",
			"stream", es.Stream, "error", s.redact(err))
	}

	s.wg.Add(1)
	go s.progressLoop()
	if s.queue {
		return &QueueSource{Source: s}, nil
	}
	return s, nil
}

func deliverPolicy(from, ts string) (jetstream.DeliverPolicy, *time.Time, error) {
	switch from {
	case "", "LATEST":
		return jetstream.DeliverNewPolicy, nil, nil
	case "TRIM_HORIZON":
		return jetstream.DeliverAllPolicy, nil, nil
	case "AT_TIMESTAMP":
		if ts == "" {
			return 0, nil, errors.New("starting_position AT_TIMESTAMP needs starting_position_timestamp")
		}
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return 0, nil, fmt.Errorf("starting_position_timestamp %q: %w", ts, err)
		}
		return jetstream.DeliverByStartTimePolicy, &t, nil
	default:
		return 0, nil, fmt.Errorf("starting_position %q must be LATEST, TRIM_HORIZON or AT_TIMESTAMP", from)
	}
}

// Source reads a JetStream stream through a durable pull consumer shared by
// every gateway (competing consumers). As returned by Open it is the
// ordered mode; QueueSource is the queue-like mode.
type Source struct {
	cfg       sources.Config
	opts      Options
	log       hclog.Logger
	nc        *nats.Conn
	ownConn   bool
	js        jetstream.JetStream
	arn       string
	secrets   []string
	deliver   jetstream.DeliverPolicy
	startTime *time.Time
	// queue is the mode (fixed at Open); modeKnown says whether Open read
	// the stream's retention.
	queue     bool
	modeKnown bool
	// drain is how long Poll waits for more records once some arrived:
	// drainGap, or 0 (take only what has already arrived) when the
	// mapping's maximum_batching_window is 0.
	drain time.Duration

	setup sync.Mutex // serialises consumer set-up

	mu       sync.Mutex
	cons     jetstream.Consumer
	stream   jetstream.Stream
	pinID    string
	inflight map[*handle]struct{}
	// open is a pull request a Poll returned from before it completed.
	open jetstream.MessageBatch
	// holdAbove: when this source first used the durable with records
	// un-acked (a member died holding them; they come back after the ack
	// wait), the highest sequence delivered so far. Until every one of
	// those holdCount records is back, Poll keeps what arrives, so the
	// dead member's records go to the engine before newer records of
	// their subject.
	holdAbove uint64
	// The dead member's records come back in the order their ack waits
	// ran out, not in sequence order: they are gathered here (holdCount
	// is how many it left) and handed over sorted once all arrived, or
	// once holdUntil passes.
	holdCount   int
	holdArrived int
	holdUntil   time.Time
	gathered    []*sources.Record
	closed      bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// QueueSource is the queue-like mode (work-queue or interest streams):
// records are processed in parallel and failed ones go back to the server
// with a delay.
type QueueSource struct {
	*Source
}

var (
	_ sources.Source      = (*Source)(nil)
	_ sources.Ordered     = (*Source)(nil)
	_ sources.Lagger      = (*Source)(nil)
	_ sources.Source      = (*QueueSource)(nil)
	_ sources.Redeliverer = (*QueueSource)(nil)
)

// handle is Record.Handle: the delivered message.
type handle struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
}

// Ordered reports whether records must be processed in order per subject
// (limits streams, and streams Open could not read).
func (s *Source) Ordered() bool { return !s.queue }

// consumer returns the durable, creating or updating it on first use.
func (s *Source) consumer(ctx context.Context) (jetstream.Consumer, error) {
	s.setup.Lock()
	defer s.setup.Unlock()
	s.mu.Lock()
	cons := s.cons
	s.mu.Unlock()
	if cons != nil {
		return cons, nil
	}
	es := s.cfg.Spec
	stream, err := s.js.Stream(ctx, es.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("nats stream %q not found: %w", es.Stream, err)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up nats stream %q: %w", es.Stream, err)
	}
	retention := stream.CachedInfo().Config.Retention
	if !s.modeKnown && retention != jetstream.LimitsPolicy {
		s.log.Warn("nats stream has queue retention but appeared after the mapping opened; it runs ordered until reopened",
			"stream", es.Stream)
	}
	cc := jetstream.ConsumerConfig{
		Durable:       es.Group,
		Description:   "nimbus event-source mapping " + s.cfg.UUID + " of function " + s.cfg.Function,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.opts.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: s.opts.MaxAckPending,
		FilterSubject: es.Subject,
		DeliverPolicy: s.deliver,
		OptStartTime:  s.startTime,
	}
	if retention == jetstream.WorkQueuePolicy {
		// A work queue has no position to start from: the server only
		// allows deliver-all consumers on it.
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverAllPolicy, nil
	}
	if !s.queue {
		// One gateway at a time reads an ordered durable, so two gateways
		// never work on one subject at once.
		cc.PriorityPolicy = jetstream.PriorityPolicyPinned
		cc.PriorityGroups = []string{PriorityGroup}
		cc.PinnedTTL = s.opts.PinnedTTL
	}
	if existing, err := stream.Consumer(ctx, es.Group); err == nil {
		// Keep the durable's position: its start settings cannot change.
		ec := existing.CachedInfo().Config
		cc.DeliverPolicy, cc.OptStartTime, cc.OptStartSeq = ec.DeliverPolicy, ec.OptStartTime, ec.OptStartSeq
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("looking up nats consumer %q on stream %q: %w", es.Group, es.Stream, err)
	}
	cons, err = stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("creating nats consumer %q on stream %q: %w", es.Group, es.Stream, err)
	}
	var holdAbove uint64
	if !s.queue {
		if info, err := cons.Info(ctx); err == nil && info.NumAckPending > 0 && info.AckFloor.Stream < info.Delivered.Stream {
			holdAbove = info.Delivered.Stream
			s.log.Info("nats durable has records another member left un-acked; holding newer records until they are redelivered",
				"stream", es.Stream, "pending", info.NumAckPending, "hold_above", holdAbove)
		}
	}
	s.mu.Lock()
	s.cons, s.stream, s.holdAbove = cons, stream, holdAbove
	if holdAbove > 0 {
		if info, err := cons.Info(ctx); err == nil {
			s.holdCount = info.NumAckPending
		}
		s.holdUntil = time.Now().Add(3 * s.opts.AckWait)
	}
	s.mu.Unlock()
	return cons, nil
}

// Poll fetches up to max records, waiting up to wait for the first.
func (s *Source) Poll(ctx context.Context, max int, wait time.Duration) ([]*sources.Record, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errors.New("nats source closed")
	}
	if max <= 0 {
		max = 1
	}
	cons, err := s.consumer(ctx)
	if err != nil {
		return nil, s.redact(err)
	}
	// A pull request still open from the last Poll is drained first: its
	// messages are on their way and must not be left behind.
	s.mu.Lock()
	batch := s.open
	s.open = nil
	s.mu.Unlock()
	if batch == nil {
		switch {
		case !s.queue:
			// A pinned consumer only serves requests naming the priority
			// group, which FetchNoWait cannot send: a short expiry instead.
			batch, err = cons.Fetch(max, jetstream.FetchMaxWait(maxDuration(wait, 10*time.Millisecond)),
				jetstream.FetchPriorityGroup(PriorityGroup))
		case wait <= 0:
			batch, err = cons.FetchNoWait(max)
		default:
			batch, err = cons.Fetch(max, jetstream.FetchMaxWait(wait))
		}
		if err != nil {
			return nil, s.redact(fmt.Errorf("fetching from nats stream %q: %w", s.cfg.Spec.Stream, err))
		}
	}
	var recs []*sources.Record
	msgs := batch.Messages()
	// Once records arrived, Poll returns when the next does not follow
	// within s.drain, instead of waiting for the whole pull request: the
	// request stays open for the next Poll (low latency at low rates).
	// With no batching window (s.drain 0) it takes the messages already
	// delivered and returns: the engine invokes as soon as records are
	// there and its poller comes straight back, so waiting drainGap for a
	// record that may follow only delayed the one at hand.
	var gap <-chan time.Time
	// ready: s.drain is 0 and records arrived, so only messages already
	// delivered are taken before returning.
	ready := false
	for {
		var msg jetstream.Msg
		ok, timedOut := false, false
		if ready {
			select {
			case msg, ok = <-msgs:
			default:
				timedOut = true
			}
		} else {
			select {
			case msg, ok = <-msgs:
			case <-gap:
				timedOut = true
			case <-ctx.Done():
				// Give back what arrived; the rest is naked as it comes.
				s.release(recs)
				go nakAll(msgs)
				return nil, ctx.Err()
			}
		}
		if timedOut {
			s.mu.Lock()
			closed := s.closed
			if !closed {
				s.open = batch
			}
			s.mu.Unlock()
			if closed {
				go nakAll(msgs)
			}
			return append(s.gatheredReady(), recs...), nil
		}
		if !ok {
			recs = append(s.gatheredReady(), recs...)
			if err := batch.Error(); err != nil && len(recs) == 0 {
				s.forgetConsumerOn(err)
				return nil, s.redact(fmt.Errorf("fetching from nats stream %q: %w", s.cfg.Spec.Stream, err))
			}
			return recs, nil
		}
		rec, err := s.take(msg)
		if err != nil {
			_ = msg.Nak()
			s.log.Warn("nats message without JetStream metadata", "error", err)
			continue
		}
		if s.gather(rec) {
			continue
		}
		recs = append(recs, rec)
		if s.drain > 0 {
			gap = time.After(s.drain)
		} else {
			ready = true
		}
	}
}

// drainGap is how long Poll waits for more records once some arrived.
const drainGap = 2 * time.Millisecond

// nakAll gives back every message still coming on a pull request.
func nakAll(msgs <-chan jetstream.Msg) {
	for msg := range msgs {
		_ = msg.Nak()
	}
}

// gather keeps every record while the hold stands: the dead member's as
// they come back, and newer ones, which must wait for them.
func (s *Source) gather(rec *sources.Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holdCount == 0 {
		return false
	}
	s.gathered = append(s.gathered, rec)
	if rec.Handle.(*handle).meta.Sequence.Stream <= s.holdAbove {
		s.holdArrived++
	}
	return true
}

// gatheredReady hands over the dead member's records, sorted by sequence,
// once all of them arrived (or the gathering timed out).
func (s *Source) gatheredReady() []*sources.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holdCount == 0 || (s.holdArrived < s.holdCount && time.Now().Before(s.holdUntil)) {
		return nil
	}
	out := s.gathered
	sort.Slice(out, func(i, j int) bool {
		return out[i].Handle.(*handle).meta.Sequence.Stream < out[j].Handle.(*handle).meta.Sequence.Stream
	})
	s.gathered, s.holdCount, s.holdAbove = nil, 0, 0
	s.log.Info("records of the previous member are back; reading on", "stream", s.cfg.Spec.Stream, "records", len(out))
	return out
}

// forgetConsumerOn drops the cached consumer when the server says it is
// gone, so the next Poll creates it again.
func (s *Source) forgetConsumerOn(err error) {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.mu.Lock()
		s.cons = nil
		s.mu.Unlock()
	}
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// take turns a delivered message into a record it tracks until Done.
func (s *Source) take(msg jetstream.Msg) (*sources.Record, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, err
	}
	h := &handle{msg: msg, meta: meta}
	s.mu.Lock()
	s.inflight[h] = struct{}{}
	if id := msg.Headers().Get(pinHeader); id != "" {
		s.pinID = id
	}
	s.mu.Unlock()
	rec := &sources.Record{
		ID:         strconv.FormatUint(meta.Sequence.Stream, 10),
		Time:       meta.Timestamp,
		Deliveries: int(meta.NumDelivered),
		Size:       recordSize(msg),
		Handle:     h,
	}
	if len(s.cfg.Spec.Filters) > 0 {
		rec.Filter = filterView(msg, meta)
	}
	if !s.queue {
		rec.Partition = msg.Subject()
	}
	return rec, nil
}

// untrack removes records from the in-flight set and returns their handles.
func (s *Source) untrack(recs []*sources.Record) ([]*handle, error) {
	hs := make([]*handle, 0, len(recs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		h, ok := r.Handle.(*handle)
		if !ok {
			return nil, fmt.Errorf("record %s is not from a nats source", r.ID)
		}
		delete(s.inflight, h)
		hs = append(hs, h)
	}
	return hs, nil
}

// Done acks the records.
func (s *Source) Done(ctx context.Context, recs []*sources.Record) error {
	hs, err := s.untrack(recs)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hs {
		if err := h.msg.Ack(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			errs = append(errs, fmt.Errorf("acking nats message %d: %w", h.meta.Sequence.Stream, err))
		}
	}
	errs = append(errs, s.flush(ctx))
	return s.redact(errors.Join(errs...))
}

// Redeliver gives the records back to the server, to be delivered again
// (to any gateway) after delay.
func (q *QueueSource) Redeliver(ctx context.Context, recs []*sources.Record, delay time.Duration) error {
	hs, err := q.untrack(recs)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hs {
		if err := nak(h.msg, delay); err != nil {
			errs = append(errs, fmt.Errorf("naking nats message %d: %w", h.meta.Sequence.Stream, err))
		}
	}
	errs = append(errs, q.flush(ctx))
	return q.redact(errors.Join(errs...))
}

func nak(msg jetstream.Msg, delay time.Duration) error {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		return nil
	}
	return err
}

// release naks records at once (they go back to the durable).
func (s *Source) release(recs []*sources.Record) {
	hs, _ := s.untrack(recs)
	for _, h := range hs {
		_ = nak(h.msg, 0)
	}
}

// flush waits until the server has the acks sent so far.
func (s *Source) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	if err := s.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("flushing acks to nats: %w", err)
	}
	return nil
}

// progressLoop tells the server, every AckWait/3, that records not yet
// Done are still being worked on, so it does not hand them to another
// gateway while the engine retries them.
func (s *Source) progressLoop() {
	defer s.wg.Done()
	t := time.NewTicker(max(s.opts.AckWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		hs := make([]*handle, 0, len(s.inflight))
		for h := range s.inflight {
			hs = append(hs, h)
		}
		s.mu.Unlock()
		for _, h := range hs {
			if err := h.msg.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				s.log.Debug("reporting progress on a nats message", "error", s.redact(err))
			}
		}
	}
}

// Lag reports the durable's backlog: records not yet delivered plus
// records delivered and not yet acked.
func (s *Source) Lag(ctx context.Context) ([]sources.PartitionLag, error) {
	cons, err := s.consumer(ctx)
	if err != nil {
		return nil, s.redact(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		s.forgetConsumerOn(err)
		return nil, s.redact(fmt.Errorf("reading nats consumer %q: %w", s.cfg.Spec.Group, err))
	}
	part := s.cfg.Spec.Stream
	if s.cfg.Spec.Subject != "" {
		part = s.cfg.Spec.Subject
	}
	return []sources.PartitionLag{{Partition: part, Records: int64(info.NumPending) + int64(info.NumAckPending)}}, nil
}

// Close naks the records not yet Done (they are delivered again at once,
// to any gateway), gives up the ordered durable's pin when this gateway
// holds it, and closes the connection it opened.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.open != nil {
		go nakAll(s.open.Messages())
		s.open = nil
	}
	hs := make([]*handle, 0, len(s.inflight))
	for h := range s.inflight {
		hs = append(hs, h)
	}
	s.inflight = map[*handle]struct{}{}
	stream, cons, pinID := s.stream, s.cons, s.pinID
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()

	// In stream order, so an ordered subject resumes where it stopped.
	slices.SortFunc(hs, func(a, b *handle) int {
		return compareUint(a.meta.Sequence.Stream, b.meta.Sequence.Stream)
	})
	var errs []error
	for _, h := range hs {
		if err := nak(h.msg, 0); err != nil {
			errs = append(errs, fmt.Errorf("naking nats message %d: %w", h.meta.Sequence.Stream, err))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if len(hs) > 0 {
		errs = append(errs, s.flush(ctx))
	}
	if !s.queue && cons != nil && pinID != "" {
		if info, err := cons.Info(ctx); err == nil {
			for _, g := range info.PriorityGroups {
				if g.Group == PriorityGroup && g.PinnedClientID == pinID {
					if err := stream.UnpinConsumer(ctx, s.cfg.Spec.Group, PriorityGroup); err != nil {
						errs = append(errs, fmt.Errorf("unpinning nats consumer %q: %w", s.cfg.Spec.Group, err))
					}
				}
			}
		}
	}
	s.closeConn()
	return s.redact(errors.Join(errs...))
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Source) closeConn() {
	if s.ownConn {
		s.nc.Close()
	}
}

// secretsOf lists the credentials in a nats URL list (user, password or
// token), so errors can be scrubbed of them. User names with a password
// are not secret.
func secretsOf(urls string) []string {
	var out []string
	for _, raw := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.User == nil {
			continue
		}
		if p, ok := u.User.Password(); ok {
			if p != "" {
				out = append(out, p, url.QueryEscape(p))
			}
		} else if tok := u.User.Username(); tok != "" {
			// nats://token@host: the user part is the secret.
			out = append(out, tok, url.QueryEscape(tok))
		}
	}
	return out
}

// redactURL drops the credentials of every URL in a nats URL list.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, raw := range parts {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			parts[i] = "<unparsable url>"
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// redact scrubs credentials from an error's text, keeping it unwrappable.
func (s *Source) redact(err error) error {
	if err == nil || len(s.secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, sec := range s.secrets {
		msg = strings.ReplaceAll(msg, sec, "REDACTED")
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
