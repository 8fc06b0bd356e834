package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A worker takes events one at a time with JetStream pull requests on an
// inbox subscription it keeps for its whole life. The client's
// Consumer.Next subscribed a fresh inbox for every event and dropped it
// after, which cost the server an interest change per event on the drain
// path. One request is outstanding at a time, for one message, so a worker
// never holds an event it is not working on (nothing waits in a buffer
// while its ack_wait runs out).

// pullExpires is how long one pull request waits at the server for an
// event; the server then answers 408 and the worker asks again.
const pullExpires = 5 * time.Second

// errPullExpired: the request ended without an event (408 or 404).
var errPullExpired = errors.New("pull request expired")

type puller struct {
	nc   *nats.Conn
	sub  *nats.Subscription
	subj string // the consumer's next-message API subject
	req  []byte
	// open is true while a request is outstanding: its answer (an event
	// or a status) is still to come on the inbox.
	open bool
}

func (c *conn) newPuller() (*puller, error) {
	sub, err := c.nc.SubscribeSync(c.nc.NewInbox())
	if err != nil {
		return nil, fmt.Errorf("subscribing a worker's inbox: %w", err)
	}
	return &puller{
		nc:   c.nc,
		sub:  sub,
		subj: "$JS.API.CONSUMER.MSG.NEXT." + StreamName + "." + ConsumerName,
		req:  []byte(`{"batch":1,"expires":` + strconv.FormatInt(int64(pullExpires), 10) + `}`),
	}, nil
}

// next returns the next event, errPullExpired when none came within
// pullExpires, or the error that ended the wait. An event that arrives
// after ctx ended stays unacknowledged and is redelivered after ack_wait.
func (p *puller) next(ctx context.Context) (jetstream.Msg, error) {
	if !p.open {
		if err := p.nc.PublishRequest(p.subj, p.sub.Subject, p.req); err != nil {
			return nil, fmt.Errorf("requesting an event: %w", err)
		}
		p.open = true
	}
	// The server answers every request (an event or a 408 at expiry), so
	// waiting a little past pullExpires never strands a request.
	wctx, cancel := context.WithTimeout(ctx, pullExpires+2*time.Second)
	defer cancel()
	m, err := p.sub.NextMsgWithContext(wctx)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			p.open = false // the answer was lost (a reconnect): ask again
			return nil, errPullExpired
		}
		return nil, err
	}
	if m.Reply == "" && len(m.Data) == 0 && m.Header.Get("Status") != "" {
		p.open = false
		switch code := m.Header.Get("Status"); code {
		case "408", "404":
			return nil, errPullExpired
		default:
			return nil, fmt.Errorf("pull request refused: %s %s", code, m.Header.Get("Description"))
		}
	}
	p.open = false
	return pulledMsg{m}, nil
}

func (p *puller) close() { _ = p.sub.Unsubscribe() }

// pulledMsg is an event taken by a puller, as a jetstream.Msg.
type pulledMsg struct{ m *nats.Msg }

func (p pulledMsg) Metadata() (*jetstream.MsgMetadata, error) {
	md, err := p.m.Metadata()
	if err != nil {
		return nil, err
	}
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Consumer: md.Sequence.Consumer, Stream: md.Sequence.Stream},
		NumDelivered: md.NumDelivered,
		NumPending:   md.NumPending,
		Timestamp:    md.Timestamp,
		Stream:       md.Stream,
		Consumer:     md.Consumer,
		Domain:       md.Domain,
	}, nil
}

func (p pulledMsg) Data() []byte                           { return p.m.Data }
func (p pulledMsg) Headers() nats.Header                   { return p.m.Header }
func (p pulledMsg) Subject() string                        { return p.m.Subject }
func (p pulledMsg) Reply() string                          { return p.m.Reply }
func (p pulledMsg) Ack() error                             { return p.m.Ack() }
func (p pulledMsg) DoubleAck(ctx context.Context) error    { return p.m.AckSync(nats.Context(ctx)) }
func (p pulledMsg) Nak() error                             { return p.m.Nak() }
func (p pulledMsg) NakWithDelay(delay time.Duration) error { return p.m.NakWithDelay(delay) }
func (p pulledMsg) InProgress() error                      { return p.m.InProgress() }
func (p pulledMsg) Term() error                            { return p.m.Term() }

// TermWithReason ends redelivery; the reason is sent as JetStream's
// +TERM body takes it.
func (p pulledMsg) TermWithReason(reason string) error {
	if p.m.Reply == "" {
		return nats.ErrMsgNoReply
	}
	return p.m.Respond([]byte("+TERM " + reason))
}
