package rabbittest

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// get takes one message from a queue (basic.get, auto-ack).
func get(t *testing.T, amqpURL, queue string) (amqp.Delivery, bool) {
	t.Helper()
	var d amqp.Delivery
	var ok bool
	withChannel(t, amqpURL, func(ch *amqp.Channel) (err error) {
		d, ok, err = ch.Get(queue, true)
		return err
	})
	return d, ok
}

func TestSharedNodeServesBothVhosts(t *testing.T) {
	s := Shared(t)
	if Start(t) != s.URL() {
		t.Fatal("Start and Shared disagree on the shared node")
	}
	for _, vhost := range []string{"/", ExtraVhost} {
		for _, kind := range []QueueKind{Classic, Quorum} {
			u := s.VhostURL(vhost)
			q := "probe-" + string(kind)
			DeclareQueue(t, u, q, kind)
			Publish(t, u, q,
				amqp.Publishing{MessageId: "m1", ContentType: "text/plain", Body: []byte("one"),
					Headers: amqp.Table{"k": "v"}},
				amqp.Publishing{MessageId: "m2", Body: []byte("two")})
			if got := Inspect(t, u, q); got.Messages != 2 || got.Name != q {
				t.Fatalf("%s %s: Inspect = %+v, want 2 ready", vhost, kind, got)
			}
			d, ok := get(t, u, q)
			if !ok || d.MessageId != "m1" || string(d.Body) != "one" || d.ContentType != "text/plain" || d.Headers["k"] != "v" {
				t.Fatalf("%s %s: first message %+v (ok %v)", vhost, kind, d, ok)
			}
			d, ok = get(t, u, q)
			if !ok || d.MessageId != "m2" || string(d.Body) != "two" {
				t.Fatalf("%s %s: second message %+v (ok %v)", vhost, kind, d, ok)
			}
			DeleteQueue(t, u, q)
		}
	}
	// The queues of one vhost are not visible from the other.
	DeclareQueue(t, s.URL(), "only-root", Classic)
	Publish(t, s.URL(), "only-root", amqp.Publishing{Body: []byte("x")})
	if got := Inspect(t, s.URL(), "only-root"); got.Messages != 1 {
		t.Fatalf("only-root has %d messages", got.Messages)
	}
	conn, err := amqp.Dial(s.VhostURL(ExtraVhost))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclarePassive("only-root", true, false, false, false, nil); err == nil {
		t.Fatal("queue of vhost / visible in " + ExtraVhost)
	}
}

func TestWrongPasswordIsRefused(t *testing.T) {
	s := Shared(t)
	u := "amqp://" + User + ":wrong@" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) + "/"
	if conn, err := amqp.Dial(u); err == nil {
		_ = conn.Close()
		t.Fatal("a wrong password was accepted")
	}
}

func TestRestartKeepsDurableDataAndStopLeavesNothing(t *testing.T) {
	s := New(t)
	DeclareQueue(t, s.URL(), "durable", Quorum)
	Publish(t, s.URL(), "durable", amqp.Publishing{MessageId: "keep", DeliveryMode: amqp.Persistent, Body: []byte("kept")})

	conn, err := amqp.Dial(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	s.Restart(t)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("a connection survived the restart")
	}
	d, ok := get(t, s.URL(), "durable")
	if !ok || d.MessageId != "keep" || !bytes.Equal(d.Body, []byte("kept")) {
		t.Fatalf("after restart: %+v (ok %v)", d, ok)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("AMQP port still open after Stop")
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.epmdPort)), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("the node's epmd still listens after Stop")
	}
	if left := processesOf(t, s); len(left) > 0 {
		t.Fatalf("processes of node %s left after Stop: %v", s.Node, left)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// processesOf lists processes whose environment names the node (beam.smp,
// erl_child_setup, epmd and the start script all inherit it).
func processesOf(t *testing.T, s *Server) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("RABBITMQ_NODENAME=" + s.Node + "\x00")
	var out []string
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		out = append(out, filepath.Base(d)+" "+string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
	}
	return out
}
