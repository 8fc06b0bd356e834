package natsembed

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Two clients — one in-process, one over the loopback listener — see the
// same JetStream state, and the store survives a restart on the same dir.
func TestSharedJetStreamSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := s.Connect("in-process")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(in)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	tcp, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js2, _ := jetstream.New(tcp)
	kv2, err := js2.KeyValue(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv2.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v1" {
		t.Fatalf("tcp client read %v, %v", e, err)
	}
	tcp.Close()
	in.Close()
	s.Shutdown()

	s, err = Start(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	in, err = s.Connect("again")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	js, _ = jetstream.New(in)
	kv, err = js.KeyValue(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v1" {
		t.Fatalf("after restart: %v, %v", e, err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, {Dir: "x", Listen: "nope"}, {Dir: "x", Listen: "127.0.0.1:99999"},
		{Dir: "x", Listen: "0.0.0.0:0"}, {Dir: "x", Listen: "10.1.2.3:4222"}, {Dir: "x", Listen: ":4222"},
		{Dir: "x", Token: "short"}} {
		c.Defaults()
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: want an error", c)
		}
	}
}

// MaxPayload sets the largest message clients may publish (default: nats-server's 1 MiB).
func TestMaxPayload(t *testing.T) {
	for _, tc := range []struct {
		set, want int32
	}{{0, 1 << 20}, {2 << 20, 2 << 20}} {
		s, err := Start(Config{Dir: t.TempDir(), MaxPayload: tc.set})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := s.Connect("t")
		if err != nil {
			t.Fatal(err)
		}
		if got := nc.MaxPayload(); got != int64(tc.want) {
			t.Errorf("MaxPayload %d: the server announced %d, want %d", tc.set, got, tc.want)
		}
		if err := nc.Publish("x", make([]byte, tc.want)); err != nil {
			t.Errorf("publishing %d bytes: %v", tc.want, err)
		}
		if err := nc.Publish("x", make([]byte, tc.want+1)); err == nil {
			t.Errorf("publishing %d bytes over max payload %d was accepted", tc.want+1, tc.want)
		}
		nc.Close()
		s.Shutdown()
	}
	if _, err := Start(Config{Dir: t.TempDir(), MaxPayload: 65 << 20}); err == nil {
		t.Fatal("a 65 MiB max payload was accepted")
	}
}

// Every connection must present the token: a client on the listener
// without it (or with a wrong one) is refused; with it, it
// reads what the gateway's own connection wrote.
func TestClientsMustAuthenticate(t *testing.T) {
	const token = "0123456789abcdef-test-token"
	s, err := Start(Config{Dir: t.TempDir(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	if strings.Contains(s.Addr(), token) {
		t.Fatalf("Addr %q carries the token", s.Addr())
	}
	if _, err := nats.Connect(s.Addr(), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a client without credentials: err %v, want %v", err, nats.ErrAuthorization)
	}
	if _, err := nats.Connect(s.Addr(), nats.Token("0123456789abcdef-wrong-token"), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a client with a wrong token: err %v, want %v", err, nats.ErrAuthorization)
	}
	in, err := s.Connect("gateway")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sub, err := in.SubscribeSync("probe")
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]nats.Option{
		"ClientURL":  nil,
		"Addr+Token": {nats.Token(token)},
	} {
		u := s.ClientURL()
		if opts != nil {
			u = s.Addr()
		}
		nc, err := nats.Connect(u, opts...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := nc.Publish("probe", []byte(name)); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil || string(m.Data) != name {
			t.Fatalf("%s: the gateway's connection got %v, %v", name, m, err)
		}
		nc.Close()
	}
}

// Two servers without a configured token make different random ones, and
// the derived token is stable, label-bound and not the key.
func TestTokens(t *testing.T) {
	a, err := Start(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	b, err := Start(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	if len(a.Token()) != 64 || a.Token() == b.Token() {
		t.Fatalf("random tokens %q and %q", a.Token(), b.Token())
	}
	if _, err := nats.Connect(b.Addr(), nats.Token(a.Token()), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("one server's token opened the other: %v", err)
	}
	key := []byte("0123456789abcdef0123")
	d := DeriveToken(key)
	if d != DeriveToken(key) || d == DeriveToken([]byte("0123456789abcdef0124")) || strings.Contains(d, string(key)) || len(d) != 64 {
		t.Fatalf("DeriveToken(%q) = %q", key, d)
	}
}
