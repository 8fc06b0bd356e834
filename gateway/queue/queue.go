package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/specs"
)

// Event headers on the stream.
const (
	hdrFunction  = "Nimbus-Function"
	hdrQualifier = "Nimbus-Qualifier"
	hdrTraceID   = "Nimbus-Trace-Id"
	hdrTenantID  = "Nimbus-Tenant-Id"
)

// Errors Enqueue returns.
var (
	// ErrQueueFull: the queue holds max_events; the API answers 429.
	ErrQueueFull = errors.New("the async queue is full")
	// ErrEventTooLarge: the payload is over MaxEventSize.
	ErrEventTooLarge = errors.New("event payload is over the async limit")
	// ErrNotOpen: Open has not run (or Close has).
	ErrNotOpen = errors.New("the async queue is not open")
)

// Event is one asynchronous invocation to queue. The caller validated it.
type Event struct {
	RequestID string
	Function  string
	// Qualifier as asked ("" = unqualified); resolved when the event runs.
	Qualifier string
	Payload   []byte
	TraceID   string
	TenantID  string
}

// Invoker runs an invocation (the router).
type Invoker interface {
	Invoke(ctx context.Context, t router.Target, req *invokeapi.Request) (*invokeapi.Response, error)
}

// Catalog finds deployed functions.
type Catalog interface {
	Function(ctx context.Context, name string) (*catalog.Function, error)
}

// Limits reports the unreserved concurrency pool (the router).
type Limits interface {
	UnreservedLimit() int
}

// Deps are what the queue works with.
type Deps struct {
	Invoker Invoker
	Catalog Catalog
	Limits  Limits
	// Metrics, when set, gets the queue's metrics registered on its
	// registry and the async invocations' accounting.
	Metrics *metrics.Metrics
	Logger  hclog.Logger
	// Region and AccountID make function ARNs in records.
	Region, AccountID string
	// Now is the clock event ages are measured with (nil: time.Now).
	Now func() time.Time
	// Sender overrides destination delivery (nil: a destinations.Sender
	// over this queue and its NATS connection).
	Sender Sender
	// Kafka publishes to Kafka destinations when Sender is nil (nil: they
	// are refused).
	Kafka destinations.Publisher
}

// Sender delivers records and dead-lettered events.
type Sender interface {
	Send(ctx context.Context, d *specs.Destination, m destinations.Message) error
}

// Queue is the async invocation queue: enqueue side, workers and status.
type Queue struct {
	cfg     Config
	dev     bool
	deps    Deps
	logger  hclog.Logger
	sender  Sender
	metrics *queueMetrics

	nats    *NATS
	conn    *conn
	configs configCache // event invoke configs as workers last read them

	mu       sync.Mutex
	inflight map[string]int // async invocations running per function

	stopping   atomic.Bool // Stop began: no invocation starts any more
	stopFetch  context.CancelFunc
	stopInvoke context.CancelFunc
	workers    sync.WaitGroup
}

// New checks cfg (after Defaults) and builds the queue; it opens nothing.
func New(cfg Config, dev bool, deps Deps) (*Queue, error) {
	cfg.Defaults()
	if err := cfg.Validate(dev); err != nil {
		return nil, err
	}
	if deps.Invoker == nil || deps.Catalog == nil || deps.Limits == nil {
		return nil, errors.New("queue needs an invoker, a catalog and limits")
	}
	logger := deps.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	q := &Queue{cfg: cfg, dev: dev, deps: deps, logger: logger.Named("queue"), inflight: map[string]int{}}
	q.sender = deps.Sender
	if q.sender == nil {
		q.sender = &destinations.Sender{Functions: q, NATS: q, Kafka: deps.Kafka}
	}
	q.metrics = newQueueMetrics(q)
	if deps.Metrics != nil {
		q.metrics.register(deps.Metrics.Registry)
	}
	return q, nil
}

// Open sets up the stream, consumer and status bucket on n (from
// ConnectNATS; the caller closes it after Close).
func (q *Queue) Open(ctx context.Context, n *NATS) error {
	c, err := open(ctx, &q.cfg, n.Conn)
	if err != nil {
		return err
	}
	q.nats = n
	q.conn = c
	return nil
}

// Config is the queue's configuration with defaults filled.
func (q *Queue) Config() *Config { return &q.cfg }

// ClientURL is the embedded server's NATS URL with its token ("" with an
// external cluster): see NATS.ClientURL. It carries a secret: never log it.
func (q *Queue) ClientURL() string {
	if q.nats == nil {
		return ""
	}
	return q.nats.ClientURL()
}

// JetStream exposes the JetStream handle (benchmarks, tests).
func (q *Queue) JetStream() jetstream.JetStream { return q.conn.js }

// Enqueue stores ev durably (the publish is acknowledged by JetStream) and
// returns once it is safe to answer 202.
func (q *Queue) Enqueue(ctx context.Context, ev Event) error {
	if q.conn == nil {
		return ErrNotOpen
	}
	if len(ev.Payload) > MaxEventSize {
		return fmt.Errorf("%d bytes: %w", len(ev.Payload), ErrEventTooLarge)
	}
	m := nats.NewMsg(eventSubject(ev.Function, ev.RequestID))
	m.Data = ev.Payload
	m.Header.Set(hdrFunction, ev.Function)
	if ev.Qualifier != "" {
		m.Header.Set(hdrQualifier, ev.Qualifier)
	}
	if ev.TraceID != "" {
		m.Header.Set(hdrTraceID, ev.TraceID)
	}
	if ev.TenantID != "" {
		m.Header.Set(hdrTenantID, ev.TenantID)
	}
	hdr := headerBytes(m.Header) + len(jetstream.MsgIDHeader+": \r\n") + len(ev.RequestID) +
		len(jetstream.ExpectedStreamHeader+": \r\n") + len(StreamName)
	if hdr > MaxEventHeaders {
		return fmt.Errorf("%d bytes of headers (trace and tenant ids): %w", hdr, ErrEventTooLarge)
	}
	if mp := q.conn.nc.MaxPayload(); int64(hdr+len(m.Data)) > mp {
		return fmt.Errorf("event of %d bytes with its headers is over the NATS servers' max_payload %d (needs %d)",
			hdr+len(m.Data), mp, MaxMessageSize)
	}
	_, err := q.conn.js.PublishMsg(ctx, m, jetstream.WithMsgID(ev.RequestID), jetstream.WithExpectStream(StreamName))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.ErrorCode(10077) { // JSStreamStoreFailedF: limits
			q.metrics.rejected.Inc()
			return fmt.Errorf("%w: %s", ErrQueueFull, apiErr.Description)
		}
		return fmt.Errorf("storing event %s: %w", ev.RequestID, err)
	}
	q.metrics.enqueued.WithLabelValues(ev.Function).Inc()
	return nil
}

// EnqueueFunction queues payload for ref ("name[:qualifier]") after checking
// that the function and qualifier exist: function destinations use it.
func (q *Queue) EnqueueFunction(ctx context.Context, ref string, payload []byte) (string, error) {
	name, qual, _ := strings.Cut(ref, ":")
	fn, err := q.deps.Catalog.Function(ctx, name)
	if err != nil {
		return "", err
	}
	if _, err := fn.Resolve(qual, nil); err != nil {
		return "", err
	}
	rid := uuid.NewString()
	return rid, q.Enqueue(ctx, Event{RequestID: rid, Function: name, Qualifier: qual, Payload: payload})
}

// Publish sends body to a NATS subject: through JetStream (acknowledged)
// when a stream captures it, as a core publish otherwise.
func (q *Queue) Publish(ctx context.Context, subject string, body []byte, headers map[string]string) error {
	if q.conn == nil {
		return ErrNotOpen
	}
	m := nats.NewMsg(subject)
	m.Data = body
	for k, v := range headers {
		m.Header.Set(k, v)
	}
	if _, err := q.conn.js.StreamNameBySubject(ctx, subject); err == nil {
		_, err = q.conn.js.PublishMsg(ctx, m)
		return err
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("looking up a stream for %s: %w", subject, err)
	}
	if err := q.conn.nc.PublishMsg(m); err != nil {
		return err
	}
	return q.conn.nc.FlushWithContext(ctx)
}

// Run starts the workers; they take events until Stop.
func (q *Queue) Run() error {
	if q.conn == nil {
		return ErrNotOpen
	}
	fetchCtx, stopFetch := context.WithCancel(context.Background())
	invokeCtx, stopInvoke := context.WithCancel(context.Background())
	q.stopFetch, q.stopInvoke = stopFetch, stopInvoke
	for i := 0; i < q.cfg.Workers; i++ {
		q.workers.Add(1)
		go func() {
			defer q.workers.Done()
			q.work(fetchCtx, invokeCtx)
		}()
	}
	return nil
}

// Stop stops taking events and waits for running ones until ctx ends; then
// it cancels them (their events come back to the queue).
func (q *Queue) Stop(ctx context.Context) error {
	if q.stopFetch == nil {
		return nil
	}
	q.stopFetch()
	q.stopping.Store(true)
	done := make(chan struct{})
	go func() { q.workers.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("async workers still running at the shutdown deadline: %w", ctx.Err())
		q.stopInvoke()
		<-done
	}
	q.stopInvoke()
	return err
}

// Stopping reports whether Stop began; from then on workers start no
// invocation.
func (q *Queue) Stopping() bool { return q.stopping.Load() }

func (q *Queue) now() time.Time {
	if q.deps.Now != nil {
		return q.deps.Now()
	}
	return time.Now()
}

func (q *Queue) work(fetchCtx, invokeCtx context.Context) {
	stopping := fetchCtx.Done()
	var p *puller
	defer func() {
		if p != nil {
			p.close()
		}
	}()
	for fetchCtx.Err() == nil {
		var msg jetstream.Msg
		var err error
		if p == nil {
			p, err = q.conn.newPuller()
		}
		if err == nil {
			msg, err = p.next(fetchCtx)
		}
		if err != nil {
			if fetchCtx.Err() != nil {
				return
			}
			if errors.Is(err, errPullExpired) {
				continue
			}
			q.logger.Warn("taking an event", "error", err)
			t := time.NewTimer(time.Second)
			select {
			case <-fetchCtx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		q.handle(invokeCtx, stopping, msg)
	}
}

// headerBytes is the size of h in NATS's wire form: the version line,
// "Key: value" lines and the blank line.
func headerBytes(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}
