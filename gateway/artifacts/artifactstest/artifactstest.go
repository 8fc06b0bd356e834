package artifactstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
)

// openTimeout bounds creating the store's bucket.
const openTimeout = 30 * time.Second

// Open starts an embedded JetStream server and opens an artifact store on
// it with the default configuration; both stop when the test ends.
func Open(tb testing.TB) *artifacts.Store {
	tb.Helper()
	ns, err := natsembed.Start(natsembed.Config{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("starting embedded nats: %v", err)
	}
	tb.Cleanup(ns.Shutdown)
	nc, err := ns.Connect("artifactstest")
	if err != nil {
		tb.Fatalf("connecting to embedded nats: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	store, err := artifacts.Open(ctx, js, artifacts.Config{}, nil)
	if err != nil {
		tb.Fatalf("opening the artifact store: %v", err)
	}
	return store
}
