package usage

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func open(t *testing.T, srv *natsembed.Server, owner string, c *clock) *Ledger {
	t.Helper()
	nc, err := srv.Connect(owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(context.Background(), js, Config{Owner: owner}, gatewaytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.now = c.now
	return l
}

// Two gateways meter the same functions: a query sums their requests and
// GB-seconds, takes the larger provisioned figure per hour (both saw the
// same provisioned environments), keeps versions apart, and leaves out the
// hours before since.
func TestTwoGatewaysAddUp(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	c := &clock{t: time.Date(2026, 12, 3, 9, 15, 0, 0, time.UTC)}
	a, b := open(t, srv, "10.0.0.1:8080", c), open(t, srv, "10.0.0.2:8080", c)
	ctx := context.Background()

	// An hour before the query's start: left out.
	c.set(time.Date(2026, 12, 3, 7, 59, 0, 0, time.UTC))
	a.Billed("orders", "$LATEST", 1024, 60_000)
	// In the window.
	c.set(time.Date(2026, 12, 3, 9, 15, 0, 0, time.UTC))
	for range 3 {
		a.Billed("orders", "$LATEST", 512, 101) // 0.5 GB × 0.101 s each
	}
	b.Billed("orders", "$LATEST", 512, 2000)
	b.Billed("orders", "2", 2048, 1)
	a.Provisioned("orders", "2", 2048*3_600_000) // 2 GB for an hour: 7200 GB-s
	b.Provisioned("orders", "2", 2048*3_000_000) // the same environments, seen for less
	c.set(time.Date(2026, 12, 3, 10, 5, 0, 0, time.UTC))
	a.Billed("orders", "2", 2048, 1000)
	a.Provisioned("orders", "2", 1024*1000)
	for _, l := range []*Ledger{a, b} {
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A second flush adds to the keys written by the first.
	a.Billed("orders", "$LATEST", 512, 100)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	rows, err := a.Query(ctx, "orders", time.Date(2026, 12, 3, 8, 30, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Version != "$LATEST" || rows[1].Version != "2" {
		t.Fatalf("rows %+v", rows)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	latest, v2 := rows[0], rows[1]
	if latest.Requests != 5 || !near(latest.GBSeconds(), 0.5*(3*0.101+2+0.1)) || latest.ProvisionedMBms != 0 {
		t.Fatalf("$LATEST: %+v (%.6f GB-s)", latest, latest.GBSeconds())
	}
	if v2.Requests != 2 || !near(v2.GBSeconds(), 2*0.001+2*1) || !near(v2.ProvisionedGBSeconds(), 7200+1) {
		t.Fatalf("version 2: %+v (%.6f GB-s, %.6f provisioned GB-s)", v2, v2.GBSeconds(), v2.ProvisionedGBSeconds())
	}
	all, err := b.Query(ctx, "", time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	if err != nil || len(all) != 2 || all[0].Requests != 6 {
		t.Fatalf("every function since midnight: %+v %v", all, err)
	}
	if none, err := b.Query(ctx, "nobody", c.now().Add(-time.Hour)); err != nil || len(none) != 0 {
		t.Fatalf("an unknown function: %+v %v", none, err)
	}
}

// Counts a flush could not write stay pending and reach the bucket on the
// next flush; the metrics hand each billed invocation to the ledger.
func TestFlushKeepsWhatItCouldNotWrite(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	c := &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	l := open(t, srv, "gw", c)
	m := metrics.New()
	m.SetUsageSink(l)
	m.Billed("fn", "$LATEST", 128, 250)
	m.Billed("fn", "$LATEST", 0, 250) // no memory size: billed nothing
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Flush(ctx); err == nil {
		t.Fatal("a flush with a cancelled context reported success")
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(Handler(func() *Ledger { return l }))
	defer h.Close()
	resp, err := http.Get(h.URL + Path + "?function=fn&since=1h")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET usage: %d %v", resp.StatusCode, err)
	}
	if len(rep.Usage) != 1 || rep.Usage[0].Requests != 1 || math.Abs(rep.Usage[0].GBSeconds-0.125*0.25) > 1e-9 || rep.Total.Requests != 1 {
		t.Fatalf("report %+v", rep)
	}
	bad, err := http.Get(h.URL + Path + "?since=yesterday")
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("since=yesterday: status %d", bad.StatusCode)
	}
}
