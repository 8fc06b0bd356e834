package natsembed

import (
	"context"
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
	for _, c := range []Config{{}, {Dir: "x", Listen: "nope"}, {Dir: "x", Listen: "127.0.0.1:99999"}} {
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
