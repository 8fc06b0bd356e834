package provisionedbench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/server"
)

// Burst shape: burstClients concurrent clients each send burstPerClient
// requests back to back.
const (
	burstClients    = 16
	burstPerClient  = 8
	envsPerInstance = 4
)

type burstResult struct {
	name        string
	provisioned int // provisioned environments
	calls       int
	cold        int // invocations whose REPORT carried an Init Duration
	coldMetric  float64
	spill       float64
	failures    int
	p50, p99    time.Duration
	// first is the median of the clients' first requests (the burst's
	// leading edge, where scale from zero hurts).
	first time.Duration
}

// burst sends the burst at fn through the gateway and measures it.
func burst(tb testing.TB, r *rig, name, fn string, provisioned int) burstResult {
	coldBefore := r.counter(tb, "nimbus_cold_starts_total", fn)
	spillBefore := r.counter(tb, "nimbus_provisioned_spillover_invocations_total", fn)
	lat := make([][]time.Duration, burstClients)
	cold := make([]int, burstClients)
	fails := make([]int, burstClients)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < burstClients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < burstPerClient; i++ {
				t0 := time.Now()
				a, err := r.invoke(fn, map[string]any{})
				lat[c] = append(lat[c], time.Since(t0))
				if err != nil {
					fails[c]++
					continue
				}
				if hasInitDuration(a.logTail) {
					cold[c]++
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	res := burstResult{name: name, provisioned: provisioned}
	var all []time.Duration
	for c := range lat {
		all = append(all, lat[c]...)
		res.cold += cold[c]
		res.failures += fails[c]
	}
	firsts := make([]time.Duration, 0, len(lat))
	for c := range lat {
		firsts = append(firsts, lat[c][0])
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	res.first = firsts[len(firsts)/2]
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.calls = len(all)
	res.p50 = all[len(all)/2]
	res.p99 = all[len(all)*99/100]
	res.coldMetric = r.counter(tb, "nimbus_cold_starts_total", fn) - coldBefore
	res.spill = r.counter(tb, "nimbus_provisioned_spillover_invocations_total", fn) - spillBefore
	return res
}

// BenchmarkProvisionedVsOnDemand sends the same burst at slowinit (200 ms
// init) with provisioned concurrency covering the burst and without any
// (scale from zero), through one dev-mode gateway, and prints cold-start
// rate and latency; a third row provisions a quarter of the burst. It measures a fixed burst (not b.N), so `-benchtime=1x`
// is the intended setting.
func BenchmarkProvisionedVsOnDemand(b *testing.B) {
	r := newRig(b, slowFn("provisioned", envsPerInstance, burstClients), slowFn("ondemand", envsPerInstance, 0),
		slowFn("partial", envsPerInstance, burstClients/4))
	warmConnections(b, r)
	rows := []burstResult{
		burst(b, r, fmt.Sprintf("provisioned concurrency %d", burstClients), "provisioned", burstClients),
		burst(b, r, "on demand, scale from zero", "ondemand", 0),
		burst(b, r, fmt.Sprintf("provisioned %d, rest spills", burstClients/4), "partial", burstClients/4),
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "\nburst of %d clients × %d requests, slowinit (200 ms init), %d environments per instance, dev-mode gateway\n",
		burstClients, burstPerClient, envsPerInstance)
	fmt.Fprintf(&out, "provisioning %d environments at load took %s (before the gateway served)\n",
		burstClients+burstClients/4, r.provisionTook.Round(time.Millisecond))
	fmt.Fprintf(&out, "%-30s %6s %6s %6s %6s %10s %10s %10s %6s\n", "function", "calls", "cold", "cold%", "spill", "1st p50", "p50", "p99", "errors")
	for _, row := range rows {
		fmt.Fprintf(&out, "%-30s %6d %6d %5.1f%% %6.0f %10s %10s %10s %6d\n", row.name, row.calls, row.cold,
			100*float64(row.cold)/float64(row.calls), row.spill, round(row.first), round(row.p50), round(row.p99), row.failures)
	}
	p, o := rows[0], rows[1]
	fmt.Fprintf(&out, "on demand / provisioned: first requests %.1fx, p50 %.1fx, p99 %.1fx\n",
		float64(o.first)/float64(p.first), float64(o.p50)/float64(p.p50), float64(o.p99)/float64(p.p99))
	fmt.Fprint(os.Stdout, out.String())

	for _, row := range rows {
		if row.failures > 0 {
			b.Errorf("%s: %d failed invocations", row.name, row.failures)
		}
		// The REPORT lines and the gateway's metric must agree.
		if float64(row.cold) != row.coldMetric {
			b.Errorf("%s: %d REPORT lines with Init Duration, nimbus_cold_starts_total rose by %v", row.name, row.cold, row.coldMetric)
		}
	}
	// The comparison's premise: provisioned capacity covers the burst.
	if p.cold != 0 || p.spill != 0 {
		b.Errorf("provisioned run had %d cold starts and %v spill-overs; its capacity covers the burst", p.cold, p.spill)
	}
	if o.cold == 0 {
		b.Errorf("scale-from-zero run had no cold start")
	}
	// Part provisioned: whatever ran cold ran on demand, so it spilled over.
	// (With invocations this short, requests parked in the wait queue mostly
	// get provisioned environments back before an on-demand one finishes
	// its init, so few or none spill.)
	if part := rows[2]; part.spill < float64(part.cold) {
		b.Errorf("partly provisioned run: %d cold starts but %v spill-overs", part.cold, part.spill)
	}
}

// warmConnections opens burstClients keep-alive connections to the gateway
// (concurrent scrapes of its metrics), so that no row pays for TCP set-up
// the rows after it reuse.
func warmConnections(tb testing.TB, r *rig) {
	var wg sync.WaitGroup
	errs := make(chan error, burstClients)
	for c := 0; c < burstClients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := r.httpc.Get(r.base + server.MetricsPath)
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
