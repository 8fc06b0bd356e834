package rabbitmq

// Lock rules: Source.dialMu serialises connecting (Poll and Lag may both
// need a connection) and is held across a dial; Source.mu guards the
// connection state, the timers and the consumers' counters and is never
// held across a network call. dialMu may be taken before mu, never after.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

const (
	// dialTimeout bounds a connection attempt: TCP connect plus the TLS and
	// AMQP handshakes.
	dialTimeout = 5 * time.Second
	// heartbeat detects a dead broker on an idle connection.
	heartbeat = 10 * time.Second
	// closeTimeout bounds the connection.close handshake in Close.
	closeTimeout = 5 * time.Second
	// minBackoff and maxBackoff space reconnection (and re-subscription)
	// attempts after consecutive failures; meanwhile Poll returns the last
	// error at once.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// maxPrefetch is AMQP's largest prefetch count (a short).
	maxPrefetch = 65535
	// defaultBatchSize applies when the spec has none (Parse fills it).
	defaultBatchSize = 10
	// reasonWait is how long Poll waits for a closed channel's reason.
	reasonWait = 100 * time.Millisecond
)

// ErrClosed is returned by Poll and Lag after Close.
var ErrClosed = errors.New("rabbitmq: source closed")

var (
	_ sources.Source      = (*Source)(nil)
	_ sources.Redeliverer = (*Source)(nil)
	_ sources.Lagger      = (*Source)(nil)
	_ sources.Opener      = Open
)

// Source consumes one mapping's queue. Create it with Open.
type Source struct {
	log      hclog.Logger
	now      func() time.Time
	url      string // with credentials: only ever passed to amqp.DialConfig
	password string // to scrub from library errors, should one carry it
	broker   string // "host:port", what errors and logs name
	queue    string
	vhost    string
	arn      string
	tag      string // consumer tag prefix
	name     string // connection name shown by the broker
	prefetch int

	dialMu sync.Mutex

	mu       sync.Mutex
	closed   bool
	conn     *amqp.Connection
	cons     *consumer // nil when not consuming
	failures int       // consecutive connect/subscribe failures
	retryAt  time.Time // no new attempt before this after a failure
	lastErr  error
	timers   map[*time.Timer]struct{} // pending Redeliver delays
	counts   *deliveryCounter
}

// consumer is one channel consuming the queue. Deliveries are acked on the
// channel they came from; once it has closed, the broker has requeued
// them and acks are dropped.
type consumer struct {
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
	done       chan struct{} // closed once the channel has closed and err is set

	// Guarded by Source.mu.
	err         error // why the channel closed (nil: closed by us)
	outstanding int   // deliveries handed out and not yet acked or nacked
	retired     bool  // no longer consuming; closed once outstanding is 0
}

// delivery is a Record's Handle.
type delivery struct {
	d       amqp.Delivery
	c       *consumer
	props   *basicProperties // as the event and filters show them
	key     string           // message id (the delivery counter's key), or ""
	settled atomic.Bool
}

// Open validates the mapping's URL and queue and returns a source that
// connects on first Poll (a broker that is down is an error from Poll).
func Open(_ context.Context, cfg sources.Config) (sources.Source, error) {
	spec := cfg.Spec
	if spec == nil {
		return nil, errors.New("rabbitmq: mapping has no spec")
	}
	if spec.URL == "" {
		return nil, errors.New("rabbitmq: url is required (amqp://user:password@host:5672/vhost or amqps://…)")
	}
	if spec.Queue == "" {
		return nil, errors.New("rabbitmq: queue is required")
	}
	uri, err := amqp.ParseURI(spec.URL)
	if err != nil {
		// url.Parse's errors quote the URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) || strings.Contains(err.Error(), spec.URL) {
			err = errors.New("malformed URL (percent-encode reserved characters in the user name and password)")
		}
		return nil, fmt.Errorf("rabbitmq: url must be amqp://user:password@host:port/vhost or amqps://…: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	batch := spec.BatchSize
	if batch <= 0 {
		batch = defaultBatchSize
	}
	conc := spec.MaximumConcurrency
	if conc <= 0 {
		conc = 1
	}
	broker := net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
	s := &Source{
		log:      log.Named("rabbitmq"),
		now:      now,
		url:      spec.URL,
		password: uri.Password,
		broker:   broker,
		queue:    spec.Queue,
		vhost:    uri.Vhost,
		arn:      "arn:nimbus:mq:" + cfg.Region + ":" + cfg.AccountID + ":broker:" + broker,
		tag:      consumerTag(cfg),
		name:     "nimbus " + cfg.Function + " " + cfg.UUID,
		prefetch: min(batch*conc, maxPrefetch),
		timers:   map[*time.Timer]struct{}{},
		counts:   newDeliveryCounter(maxCounted),
	}
	return s, nil
}

func consumerTag(cfg sources.Config) string {
	tag := "nimbus"
	for _, p := range []string{cfg.UUID, cfg.Member} {
		if p != "" {
			tag += ":" + p
		}
	}
	if len(tag) > 200 {
		tag = tag[:200]
	}
	return tag
}

// Poll returns up to max deliveries: it waits up to wait for the first,
// then gathers more for at most wait after it (wait 0: only what has
// arrived). A lost connection or channel is an error (the next Poll
// reconnects, after a backoff when attempts keep failing).
func (s *Source) Poll(ctx context.Context, max int, wait time.Duration) ([]*sources.Record, error) {
	if max <= 0 {
		return nil, nil
	}
	c, err := s.consumer(ctx)
	if err != nil {
		return nil, err
	}
	var ds []amqp.Delivery
	var timer *time.Timer
	if wait > 0 {
		timer = time.NewTimer(wait)
		defer timer.Stop()
	}
	gone := false // the deliveries channel closed
gather:
	for len(ds) < max {
		if timer == nil {
			select {
			case d, ok := <-c.deliveries:
				if !ok {
					gone = true
					break gather
				}
				ds = append(ds, d)
				continue
			default:
				break gather
			}
		}
		select {
		case d, ok := <-c.deliveries:
			if !ok {
				gone = true
				break gather
			}
			if len(ds) == 0 {
				timer.Reset(wait) // the window runs from the first delivery
			}
			ds = append(ds, d)
		case <-timer.C:
			break gather
		case <-ctx.Done():
			// Hand them back rather than strand them unacked.
			for _, d := range ds {
				_ = d.Nack(false, true)
			}
			return nil, ctx.Err()
		}
	}
	if c.ch.IsClosed() {
		// Whatever was gathered has been requeued by the broker.
		return nil, s.channelLost(c)
	}
	recs := s.records(c, ds)
	if gone {
		// The broker cancelled the consumer (queue deleted, leader moved):
		// the channel stays open for what was gathered until it is
		// settled; the next Poll subscribes again.
		s.retire(c)
		if len(recs) == 0 {
			return nil, fmt.Errorf("rabbitmq: broker cancelled the consumer of queue %q in vhost %q on %s (queue deleted?)",
				s.queue, s.vhost, s.broker)
		}
	}
	return recs, nil
}

// records turns deliveries into records and counts them as outstanding.
func (s *Source) records(c *consumer, ds []amqp.Delivery) []*sources.Record {
	if len(ds) == 0 {
		return nil
	}
	received := s.now()
	recs := make([]*sources.Record, 0, len(ds))
	ids := make(map[string]bool, len(ds))
	s.mu.Lock()
	defer s.mu.Unlock()
	c.outstanding += len(ds)
	for _, d := range ds {
		h := &delivery{d: d, c: c, props: properties(d)}
		id := d.MessageId
		if id == "" || ids[id] {
			id = "dtag-" + strconv.FormatUint(d.DeliveryTag, 10)
		}
		ids[id] = true
		h.key = d.MessageId
		n, ok := deliveryCount(d.Headers)
		switch {
		case ok:
			n++
		case d.MessageId != "":
			n = s.counts.observe(d.MessageId, d.Redelivered)
		case d.Redelivered:
			n = 2
		default:
			n = 1
		}
		t := d.Timestamp
		if t.IsZero() {
			t = received
		}
		recs = append(recs, &sources.Record{
			ID:         id,
			Time:       t,
			Deliveries: n,
			Size:       len(d.Body),
			Filter:     filterView(h.props, d),
			Handle:     h,
		})
	}
	return recs
}

// deliveryCount reads the x-delivery-count header quorum queues set on
// redeliveries (the number of earlier deliveries).
func deliveryCount(h amqp.Table) (int, bool) {
	switch v := h["x-delivery-count"].(type) {
	case int64:
		return int(v), true
	case int32:
		return int(v), true
	case int16:
		return int(v), true
	case int8:
		return int(v), true
	case int:
		return v, true
	case uint8:
		return int(v), true
	case uint16:
		return int(v), true
	case uint32:
		return int(v), true
	default:
		return 0, false
	}
}

// Done acks records. Records already settled (by Done or Redeliver) are
// skipped; acks of deliveries from a channel that has since closed are
// dropped, since the broker has requeued those.
func (s *Source) Done(_ context.Context, recs []*sources.Record) error {
	var errs []error
	for _, r := range recs {
		h, err := handle(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !h.settled.CompareAndSwap(false, true) {
			continue
		}
		if err := h.d.Ack(false); err != nil && !errors.Is(err, amqp.ErrClosed) {
			errs = append(errs, fmt.Errorf("rabbitmq: acking %s: %w", r.ID, s.scrub(err)))
		}
		s.release(h, true)
	}
	return errors.Join(errs...)
}

// Redeliver returns records to the queue after delay: each delivery stays
// unacked (holding its place in the prefetch window) until a timer nacks
// it with requeue. Close cancels pending timers; the broker then requeues
// those deliveries itself.
func (s *Source) Redeliver(_ context.Context, recs []*sources.Record, delay time.Duration) error {
	var errs []error
	for _, r := range recs {
		h, err := handle(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !h.settled.CompareAndSwap(false, true) {
			continue
		}
		if delay <= 0 {
			if err := s.nack(h); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			continue
		}
		var t *time.Timer
		t = time.AfterFunc(delay, func() {
			s.mu.Lock()
			_, live := s.timers[t]
			delete(s.timers, t)
			s.mu.Unlock()
			if !live {
				return
			}
			if err := s.nack(h); err != nil {
				s.log.Warn("returning a message to the queue", "error", err)
			}
		})
		s.timers[t] = struct{}{}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (s *Source) nack(h *delivery) error {
	defer s.release(h, false)
	if err := h.d.Nack(false, true); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("rabbitmq: returning delivery %d to queue %q: %w", h.d.DeliveryTag, s.queue, s.scrub(err))
	}
	return nil
}

// release ends a delivery's life in this source; acked ones are forgotten
// by the delivery counter.
func (s *Source) release(h *delivery, acked bool) {
	s.mu.Lock()
	if acked && h.key != "" {
		s.counts.forget(h.key)
	}
	c := h.c
	c.outstanding--
	idle := c.retired && c.outstanding == 0
	s.mu.Unlock()
	if idle {
		_ = c.ch.Close()
	}
}

func handle(r *sources.Record) (*delivery, error) {
	h, ok := r.Handle.(*delivery)
	if !ok {
		return nil, fmt.Errorf("rabbitmq: record %q is not from a rabbitmq source", r.ID)
	}
	return h, nil
}

// Lag reports the queue's ready messages (those no consumer holds).
func (s *Source) Lag(ctx context.Context) ([]sources.PartitionLag, error) {
	conn, err := s.connection(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: opening a channel on %s: %w", s.broker, s.scrub(err))
	}
	// A missing queue closes the channel, so it gets one of its own.
	defer func() { _ = ch.Close() }()
	q, err := ch.QueueDeclarePassive(s.queue, false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: inspecting queue %q in vhost %q on %s: %w", s.queue, s.vhost, s.broker, s.scrub(err))
	}
	return []sources.PartitionLag{{Partition: s.queue, Records: int64(q.Messages)}}, nil
}

// Close stops consuming and closes the connection; the broker requeues
// every delivery not yet acked. Pending Redeliver timers are cancelled.
func (s *Source) Close() error {
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	s.timers = map[*time.Timer]struct{}{}
	conn := s.conn
	s.conn, s.cons = nil, nil
	s.mu.Unlock()
	if conn == nil || conn.IsClosed() {
		return nil
	}
	if err := conn.CloseDeadline(time.Now().Add(closeTimeout)); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("rabbitmq: closing the connection to %s: %w", s.broker, s.scrub(err))
	}
	return nil
}

// consumer returns the live consumer, subscribing (and connecting) when
// there is none.
func (s *Source) consumer(ctx context.Context) (*consumer, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if c := s.cons; c != nil && !c.ch.IsClosed() {
		s.mu.Unlock()
		return c, nil
	}
	if err := s.backingOffLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()

	conn, err := s.connection(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.subscribe(conn)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if c != nil {
			_ = c.ch.Close()
		}
		return nil, ErrClosed
	}
	if err != nil {
		s.failedLocked(err)
		return nil, err
	}
	s.failures, s.lastErr = 0, nil
	s.cons = c
	return c, nil
}

// connection returns the open connection, dialling when there is none.
func (s *Source) connection(ctx context.Context) (*amqp.Connection, error) {
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if s.conn != nil && !s.conn.IsClosed() {
		conn := s.conn
		s.mu.Unlock()
		return conn, nil
	}
	if err := s.backingOffLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()

	conn, err := s.dial(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.failedLocked(err)
		}
		return nil, err
	}
	if s.closed { // cannot happen while dialMu is held, but cheap to honour
		_ = conn.Close()
		return nil, ErrClosed
	}
	s.conn = conn
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	go s.watchConnection(conn, closed)
	s.log.Info("connected to broker", "broker", s.broker)
	return conn, nil
}

// backingOffLocked returns the last failure while the backoff after it
// lasts.
func (s *Source) backingOffLocked() error {
	if s.lastErr == nil {
		return nil
	}
	left := time.Until(s.retryAt)
	if left <= 0 {
		return nil
	}
	return fmt.Errorf("%w (next attempt in %s)", s.lastErr, left.Round(time.Millisecond))
}

func (s *Source) failedLocked(err error) {
	s.failures++
	backoff := minBackoff << min(s.failures-1, 10)
	s.retryAt = time.Now().Add(min(backoff, maxBackoff))
	s.lastErr = err
}

func (s *Source) dial(ctx context.Context) (*amqp.Connection, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var stop func() bool
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(s.name)
	conn, err := amqp.DialConfig(s.url, amqp.Config{
		Heartbeat:  heartbeat,
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The handshakes end by dctx too (the library clears the
			// deadline once the connection is open).
			deadline, _ := dctx.Deadline()
			if err := nc.SetDeadline(deadline); err != nil {
				_ = nc.Close()
				return nil, err
			}
			stop = context.AfterFunc(dctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
			return nc, nil
		},
	})
	if stop != nil && !stop() && err == nil {
		// dctx ended just as the handshake finished: the deadline may
		// have been set on the open connection.
		_ = conn.Close()
		err = dctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: connecting to %s: %w", s.broker, s.scrub(err))
	}
	return conn, nil
}

// subscribe opens a channel on conn and consumes the queue.
func (s *Source) subscribe(conn *amqp.Connection) (*consumer, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: opening a channel on %s: %w", s.broker, s.scrub(err))
	}
	if err := ch.Qos(s.prefetch, 0, false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("rabbitmq: setting prefetch %d on %s: %w", s.prefetch, s.broker, s.scrub(err))
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	deliveries, err := ch.Consume(s.queue, s.tag, false, false, false, false, nil)
	if err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("rabbitmq: consuming queue %q in vhost %q on %s: %w", s.queue, s.vhost, s.broker, s.scrub(err))
	}
	c := &consumer{ch: ch, deliveries: deliveries, done: make(chan struct{})}
	go s.watchChannel(c, closed)
	return c, nil
}

// watchChannel records why a consumer's channel closed and drops it as
// the current consumer, so the next Poll subscribes again.
func (s *Source) watchChannel(c *consumer, closed <-chan *amqp.Error) {
	e, ok := <-closed
	s.mu.Lock()
	if ok && e != nil {
		c.err = s.scrub(e)
	}
	if s.cons == c {
		s.cons = nil
	}
	quiet := s.closed || c.retired
	s.mu.Unlock()
	close(c.done)
	if ok && e != nil && !quiet {
		s.log.Warn("channel closed; will subscribe again", "error", c.err)
	}
}

func (s *Source) watchConnection(conn *amqp.Connection, closed <-chan *amqp.Error) {
	e, ok := <-closed
	s.mu.Lock()
	if s.conn == conn {
		s.conn = nil
	}
	quiet := s.closed
	s.mu.Unlock()
	if ok && e != nil && !quiet {
		s.log.Warn("connection to broker lost; will reconnect", "broker", s.broker, "error", s.scrub(e))
	}
}

// channelLost is Poll's error for a consumer whose channel has closed.
func (s *Source) channelLost(c *consumer) error {
	select {
	case <-c.done:
	case <-time.After(reasonWait):
	}
	s.mu.Lock()
	if s.cons == c {
		s.cons = nil
	}
	reason, closed := c.err, s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if reason == nil {
		reason = amqp.ErrClosed
	}
	return fmt.Errorf("rabbitmq: lost the channel consuming queue %q in vhost %q on %s: %w", s.queue, s.vhost, s.broker, reason)
}

// retire stops using a consumer whose subscription the broker cancelled;
// its channel stays open until its outstanding deliveries are settled.
func (s *Source) retire(c *consumer) {
	s.mu.Lock()
	if s.cons == c {
		s.cons = nil
	}
	c.retired = true
	idle := c.outstanding == 0
	s.mu.Unlock()
	if idle {
		_ = c.ch.Close()
	}
}

// scrub keeps the URL's password out of an error's text, should the
// library ever put it there.
func (s *Source) scrub(err error) error {
	if err == nil || s.password == "" || !strings.Contains(err.Error(), s.password) {
		return err
	}
	return &scrubbed{err: err, msg: strings.ReplaceAll(err.Error(), s.password, "xxxxx")}
}

type scrubbed struct {
	err error
	msg string
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
