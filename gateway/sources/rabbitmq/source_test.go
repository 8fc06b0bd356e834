package rabbitmq

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/rabbittest"
)

func TestPollReturnsMessagesAndDoneAcksThem(t *testing.T) {
	u := rabbittest.Start(t)
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	stamp := time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)
	rabbittest.Publish(t, u, q,
		amqp.Publishing{MessageId: "m-1", ContentType: "application/json", Timestamp: stamp,
			Headers: amqp.Table{"tenant": "acme"}, Body: []byte(`{"kind":"order","n":1}`)},
		amqp.Publishing{Body: []byte("plain text")},
		amqp.Publishing{MessageId: "m-3", Body: []byte{0xff, 0x00, 'a'}},
	)
	src := open(t, u, q)
	recs := collect(t, src, 3)

	if recs[0].ID != "m-1" || !regexp.MustCompile(`^dtag-\d+$`).MatchString(recs[1].ID) || recs[2].ID != "m-3" {
		t.Fatalf("ids %v, want [m-1 dtag-<n> m-3]", ids(recs))
	}
	if tag := recs[1].Handle.(*delivery).d.DeliveryTag; recs[1].ID != "dtag-"+strconv.FormatUint(tag, 10) {
		t.Fatalf("id %s for delivery tag %d", recs[1].ID, tag)
	}
	for i, want := range []struct {
		time time.Time
		size int
		data any
	}{
		{stamp, 22, map[string]any{"kind": "order", "n": 1.0}},
		{clock, 10, "plain text"},
		{clock, 3, "\xff\x00a"},
	} {
		r := recs[i]
		if !r.Time.Equal(want.time) || r.Size != want.size || r.Deliveries != 1 || r.Partition != "" {
			t.Errorf("record %s: time %v size %d deliveries %d partition %q; want time %v size %d deliveries 1",
				r.ID, r.Time, r.Size, r.Deliveries, r.Partition, want.time, want.size)
		}
		if !reflect.DeepEqual(r.Filter["data"], want.data) || r.Filter["redelivered"] != false {
			t.Errorf("record %s: filter %v", r.ID, r.Filter)
		}
	}
	props := recs[0].Filter["basicProperties"].(map[string]any)
	if props["messageId"] != "m-1" || props["contentType"] != "application/json" ||
		props["timestamp"] != "Jun 7, 2021, 8:09:10 AM" || props["bodySize"] != 22.0 || props["correlationId"] != nil {
		t.Errorf("filter basicProperties %v", props)
	}

	done(t, src, recs)
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		return rabbittest.Inspect(t, u, q).Messages == 0
	}, "queue empty after Done")
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing comes back once the acked messages' consumer is gone.
	again := open(t, u, q)
	empty(t, again, 500*time.Millisecond)
	if got := rabbittest.Inspect(t, u, q); got.Messages != 0 {
		t.Fatalf("%d messages back in the queue after Done and Close", got.Messages)
	}
}

func TestUnackedMessagesComeBackRedeliveredAfterClose(t *testing.T) {
	u := rabbittest.Start(t)
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	rabbittest.Publish(t, u, q,
		amqp.Publishing{MessageId: "a", Body: []byte("A")},
		amqp.Publishing{MessageId: "b", Body: []byte("B")})
	first := open(t, u, q)
	recs := collect(t, first, 2)
	if ids(recs)[0] != "a" || ids(recs)[1] != "b" || recs[0].Filter["redelivered"] != false {
		t.Fatalf("first delivery %v %v", ids(recs), recs[0].Filter)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Done after Close is dropped silently: the broker has requeued them.
	done(t, first, recs)

	second := open(t, u, q, member("gw-2"))
	recs = collect(t, second, 2)
	for i, want := range []string{"a", "b"} {
		r := recs[i]
		if r.ID != want || r.Filter["redelivered"] != true || r.Deliveries != 2 || string(r.Handle.(*delivery).d.Body) != strings.ToUpper(want) {
			t.Fatalf("redelivered record %d: id %s redelivered %v deliveries %d", i, r.ID, r.Filter["redelivered"], r.Deliveries)
		}
	}
	ev := decodeEvent(t, second, recs)
	if m := ev.MessagesByQueue[q+"::/"]; len(m) != 2 || !m[0].Redelivered || !m[1].Redelivered {
		t.Fatalf("event messages %+v", m)
	}
	done(t, second, recs)
}

func TestRedeliverBringsMessagesBackAndCountsDeliveries(t *testing.T) {
	u := rabbittest.Start(t)
	cases := []struct {
		name      string
		kind      rabbittest.QueueKind
		messageID string
	}{
		// Classic queues keep no count: the source counts per message id.
		{"classic counted per message id", rabbittest.Classic, "r-1"},
		// Quorum queues keep x-delivery-count; with no message id the
		// source could not count itself, so the header is what counts.
		{"quorum x-delivery-count", rabbittest.Quorum, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := queueName(t)
			rabbittest.DeclareQueue(t, u, q, tc.kind)
			rabbittest.Publish(t, u, q, amqp.Publishing{MessageId: tc.messageID, Body: []byte("retry me")})
			src := open(t, u, q)
			ctx := context.Background()

			recs := collect(t, src, 1)
			if recs[0].Deliveries != 1 {
				t.Fatalf("first delivery counts %d", recs[0].Deliveries)
			}
			if err := src.Redeliver(ctx, recs, 50*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			recs = collect(t, src, 1)
			if recs[0].Deliveries != 2 || recs[0].Filter["redelivered"] != true || recs[0].Filter["data"] != "retry me" {
				t.Fatalf("after one Redeliver: deliveries %d filter %v", recs[0].Deliveries, recs[0].Filter)
			}
			if err := src.Redeliver(ctx, recs, 0); err != nil {
				t.Fatal(err)
			}
			recs = collect(t, src, 1)
			if recs[0].Deliveries != 3 {
				t.Fatalf("after two Redelivers: deliveries %d", recs[0].Deliveries)
			}
			if tc.kind == rabbittest.Quorum {
				if n, ok := deliveryCount(recs[0].Handle.(*delivery).d.Headers); !ok || n != 2 {
					t.Fatalf("x-delivery-count %d (present %v), want 2", n, ok)
				}
			}
			// Settling twice does nothing (a second ack would close the channel).
			done(t, src, recs)
			done(t, src, recs)
			if err := src.Redeliver(ctx, recs, 0); err != nil {
				t.Fatal(err)
			}
			empty(t, src, 300*time.Millisecond)
			gatewaytest.Eventually(t, 10*time.Second, func() bool {
				return rabbittest.Inspect(t, u, q).Messages == 0
			}, "queue empty after Done")
		})
	}
}

func TestCloseCancelsPendingRedeliveries(t *testing.T) {
	u := rabbittest.Start(t)
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	rabbittest.Publish(t, u, q, amqp.Publishing{MessageId: "held", Body: []byte("x")})
	src := open(t, u, q)
	recs := collect(t, src, 1)
	if err := src.Redeliver(context.Background(), recs, time.Hour); err != nil {
		t.Fatal(err)
	}
	// Held unacked for the delay: not back in the queue, not polled again.
	empty(t, src, 300*time.Millisecond)
	if got := rabbittest.Inspect(t, u, q); got.Messages != 0 {
		t.Fatalf("%d ready while the redelivery is pending", got.Messages)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(src.timers); n != 0 {
		t.Fatalf("%d timers left after Close", n)
	}
	other := open(t, u, q, member("gw-2"))
	back := collect(t, other, 1)
	if back[0].ID != "held" || back[0].Filter["redelivered"] != true {
		t.Fatalf("after Close: %s %v", back[0].ID, back[0].Filter)
	}
	done(t, other, back)
}

func TestTwoSourcesCompeteForOneQueue(t *testing.T) {
	u := rabbittest.Start(t)
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	a := open(t, u, q, batch(5, 1), member("gw-a"))
	b := open(t, u, q, batch(5, 1), member("gw-b"))
	for _, src := range []*Source{a, b} {
		empty(t, src, 0) // subscribes
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		return rabbittest.Inspect(t, u, q).Consumers == 2
	}, "both sources consuming")

	const n = 40
	msgs := make([]amqp.Publishing, n)
	for i := range msgs {
		msgs[i] = amqp.Publishing{MessageId: "c-" + strconv.Itoa(i), Body: []byte(strconv.Itoa(i))}
	}
	rabbittest.Publish(t, u, q, msgs...)

	var mu sync.Mutex
	seen := map[string][]string{} // message id → sources that got it
	total := 0
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for name, src := range map[string]*Source{"a": a, "b": b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				recs, err := src.Poll(ctx, 5, 100*time.Millisecond)
				if err != nil {
					continue
				}
				mu.Lock()
				for _, r := range recs {
					seen[r.ID] = append(seen[r.ID], name)
					if r.Filter["redelivered"] != false {
						t.Errorf("%s got %s redelivered", name, r.ID)
					}
				}
				total += len(recs)
				finished := total >= n
				mu.Unlock()
				// Ack from another goroutine, as the engine does.
				acked := make(chan error, 1)
				go func() { acked <- src.Done(context.Background(), recs) }()
				if err := <-acked; err != nil {
					t.Errorf("Done: %v", err)
				}
				if finished {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	per := map[string]int{}
	for i := 0; i < n; i++ {
		got := seen["c-"+strconv.Itoa(i)]
		if len(got) != 1 {
			t.Fatalf("message c-%d went to %v, want exactly one source", i, got)
		}
		per[got[0]]++
	}
	if len(seen) != n || per["a"] == 0 || per["b"] == 0 {
		t.Fatalf("%d distinct messages; split %v (both sources should have had some)", len(seen), per)
	}
}

func TestPrefetchBoundsUnackedDeliveriesAndLagCountsReady(t *testing.T) {
	u := rabbittest.Start(t)
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	msgs := make([]amqp.Publishing, 5)
	for i := range msgs {
		msgs[i] = amqp.Publishing{MessageId: "p-" + strconv.Itoa(i), Body: []byte("x")}
	}
	rabbittest.Publish(t, u, q, msgs...)
	// Batch size 2, maximum concurrency unset (RabbitMQ's Lambda default 1):
	// prefetch 2.
	src := open(t, u, q, batch(2, 0))
	ctx := context.Background()
	lag, err := src.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(lag) != 1 || lag[0].Partition != q || lag[0].Records != 5 {
		t.Fatalf("Lag before polling = %+v, want 5 for %s", lag, q)
	}
	first := collect(t, src, 2)
	empty(t, src, 300*time.Millisecond) // the prefetch window is full
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		lag, err := src.Lag(ctx)
		return err == nil && lag[0].Records == 3
	}, "lag 3 with 2 unacked")
	done(t, src, first)
	second := collect(t, src, 2)
	if ids(first)[0] != "p-0" || ids(first)[1] != "p-1" || ids(second)[0] != "p-2" || ids(second)[1] != "p-3" {
		t.Fatalf("batches %v then %v", ids(first), ids(second))
	}
	if src.prefetch != 2 || open(t, u, q, batch(3, 4)).prefetch != 12 || open(t, u, q, batch(10000, 1000)).prefetch != maxPrefetch {
		t.Fatal("prefetch is not batch size × maximum concurrency, capped at 65535")
	}
}

func TestMissingQueueIsAnErrorNamingIt(t *testing.T) {
	u := rabbittest.Start(t)
	q := queueName(t)
	src := open(t, u, q)
	ctx := context.Background()
	_, err := src.Poll(ctx, 10, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `"`+q+`"`) || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("Poll on a missing queue: %v", err)
	}
	if _, err := src.Lag(ctx); err == nil || !strings.Contains(err.Error(), q) {
		t.Fatalf("Lag on a missing queue: %v", err)
	}
	// Until the backoff has passed Poll answers with the last error at once.
	if _, err := src.Poll(ctx, 10, time.Second); err == nil || !strings.Contains(err.Error(), q) {
		t.Fatalf("second Poll: %v", err)
	}

	// Once the queue exists the source consumes it.
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	rabbittest.Publish(t, u, q, amqp.Publishing{MessageId: "late", Body: []byte("x")})
	recs := collect(t, src, 1)
	if recs[0].ID != "late" {
		t.Fatalf("got %s", recs[0].ID)
	}
	done(t, src, recs)

	// A queue deleted under the consumer is an error naming it too.
	rabbittest.DeleteQueue(t, u, q)
	var last error
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		_, last = src.Poll(ctx, 10, 100*time.Millisecond)
		return last != nil && strings.Contains(last.Error(), q)
	}, "Poll fails naming the deleted queue (last error %v)", last)
}

func TestCancelledConsumerKeepsItsChannelUntilDeliveriesAreSettled(t *testing.T) {
	u := rabbittest.Start(t)
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	rabbittest.Publish(t, u, q,
		amqp.Publishing{MessageId: "x-1", Body: []byte("1")},
		amqp.Publishing{MessageId: "x-2", Body: []byte("2")})
	src := open(t, u, q, batch(2, 1))
	first := collect(t, src, 1)
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		return rabbittest.Inspect(t, u, q).Messages == 0
	}, "both messages delivered to the source")
	done(t, src, first)
	// What the broker does when it cancels a consumer (queue deleted,
	// quorum leader moved): the deliveries channel closes, the AMQP
	// channel stays open.
	c := first[0].Handle.(*delivery).c
	if err := c.ch.Cancel(src.tag, false); err != nil {
		t.Fatal(err)
	}
	second, err := src.Poll(context.Background(), 10, 200*time.Millisecond)
	if err != nil || len(second) != 1 || second[0].ID != "x-2" {
		t.Fatalf("Poll after the cancel = %v, %v; want x-2 still delivered", ids(second), err)
	}
	if c.ch.IsClosed() {
		t.Fatal("the cancelled consumer's channel closed with a delivery outstanding")
	}
	done(t, src, second)
	gatewaytest.Eventually(t, 10*time.Second, c.ch.IsClosed, "the cancelled consumer's channel closes once idle")
	// The acks counted: nothing comes back, and the source consumes again.
	empty(t, src, 300*time.Millisecond)
	if got := rabbittest.Inspect(t, u, q); got.Messages != 0 || got.Consumers != 1 {
		t.Fatalf("queue after settling: %d ready, %d consumers; want 0 and 1", got.Messages, got.Consumers)
	}
}

func TestSourceReconnectsAfterBrokerRestart(t *testing.T) {
	srv := rabbittest.New(t)
	u := srv.URL()
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	rabbittest.Publish(t, u, q, amqp.Publishing{MessageId: "before", DeliveryMode: amqp.Persistent, Body: []byte("1")})
	src := open(t, u, q)
	ctx := context.Background()
	old := collect(t, src, 1)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// A broker that is down is an error from Poll, never a hang.
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	for i := 0; i < 3 && err == nil; i++ {
		_, err = src.Poll(pctx, 10, 2*time.Second)
	}
	if err == nil || pctx.Err() != nil {
		t.Fatalf("Poll with the broker down: %v (context %v)", err, pctx.Err())
	}
	if _, err := src.Poll(pctx, 10, 2*time.Second); err == nil || pctx.Err() != nil {
		t.Fatalf("second Poll with the broker down: %v (context %v)", err, pctx.Err())
	}
	// An ack for a delivery of the lost channel is dropped silently.
	done(t, src, old)

	srv.Boot(t)
	rabbittest.Publish(t, u, q, amqp.Publishing{MessageId: "after", DeliveryMode: amqp.Persistent, Body: []byte("2")})
	recs := collect(t, src, 2)
	got := map[string]bool{}
	for _, r := range recs {
		got[r.ID] = r.Filter["redelivered"].(bool)
	}
	if redelivered, ok := got["before"]; !ok || !redelivered {
		t.Fatalf("after restart got %v; want before (redelivered) and after", got)
	}
	if _, ok := got["after"]; !ok {
		t.Fatalf("after restart got %v; want before and after", got)
	}
	done(t, src, recs)
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		return rabbittest.Inspect(t, u, q).Messages == 0
	}, "queue empty after Done")
	lag, err := src.Lag(ctx)
	if err != nil || lag[0].Records != 0 {
		t.Fatalf("Lag after restart = %v, %v", lag, err)
	}
}

func TestPollHonoursContextAndClose(t *testing.T) {
	u := rabbittest.Start(t)
	q := queueName(t)
	rabbittest.DeclareQueue(t, u, q, rabbittest.Classic)
	src := open(t, u, q)
	empty(t, src, 0)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		gatewaytest.Eventually(t, 10*time.Second, func() bool {
			return rabbittest.Inspect(t, u, q).Consumers == 1
		}, "consumer registered")
		cancel()
	}()
	if _, err := src.Poll(ctx, 10, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll with a cancelled context: %v", err)
	}
	// Close ends a Poll that is waiting.
	polled := make(chan error, 1)
	go func() {
		_, err := src.Poll(context.Background(), 10, time.Hour)
		polled <- err
	}()
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		return rabbittest.Inspect(t, u, q).Consumers == 1
	}, "consumer registered again")
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-polled:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("waiting Poll ended by Close with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not end a waiting Poll")
	}
	if _, err := src.Poll(context.Background(), 10, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Poll after Close: %v", err)
	}
	if _, err := src.Lag(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lag after Close: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDownBrokerIsAQuickErrorThenBackoff(t *testing.T) {
	port := freePort(t)
	src := open(t, "amqp://nimbus:hunter2secret@127.0.0.1:"+strconv.Itoa(port)+"/", "q")
	_, err := src.Poll(context.Background(), 10, time.Hour)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) || strings.Contains(err.Error(), "hunter2secret") {
		t.Fatalf("Poll against a closed port: %v", err)
	}
	_, err = src.Poll(context.Background(), 10, time.Hour)
	if err == nil || !strings.Contains(err.Error(), "next attempt in") {
		t.Fatalf("Poll during backoff: %v", err)
	}
}
