package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// busy sums the running invocations over the instances of both gateways,
// as the instances report them.
func busy(gs ...*gateway) (running int, ran uint64) {
	for _, g := range gs {
		for _, h := range g.launcher.local.List() {
			st := h.Status()
			running += st.Busy
			ran += st.Invocations
		}
	}
	return running, ran
}

// gatedEvent is the stream function's event: it answers once gate exists.
func gatedEvent(t *testing.T, gate string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]string{"gate": gate})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Item 12 of issue 11: two gateways on one NATS admit a function's
// reserved concurrency together (counted by the instances that ran it, not
// by timings), the rest get TooManyRequestsException; and the slot of a
// gateway that dies holding it comes back within the lease.
func TestReservedConcurrencyAcrossTwoGateways(t *testing.T) {
	nsrv, err := natsembed.Start(natsembed.Config{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nsrv.Shutdown)
	spec := `
function "held" {
  runtime              = "provided.al2023"
  timeout              = "60s"
  reserved_concurrency = 2
  code { dir = "` + testfn.Dir(t, "stream") + `" }
}
`
	const lease = 3 * time.Second
	shared := func(c *config.Config) {
		c.Queue = &queue.Config{URL: nsrv.ClientURL()}
		c.ConcurrencyLease = lease.String()
	}
	a := startGateway(t, spec, shared)
	b := startGateway(t, spec, shared)
	gws := []*gateway{a, b}
	ctx := context.Background()
	gate := newGate(t)
	t.Cleanup(func() { openGate(t, gate) }) // never leave invocations hanging

	// Ten at once, five through each gateway.
	type outcome struct {
		ok        bool
		throttled bool
		err       error
	}
	outcomes := make(chan outcome, 10)
	var wg sync.WaitGroup
	for i := range 10 {
		c := lambdaFor(gws[i%2])
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("held"), Payload: gatedEvent(t, gate)})
			var tooMany *types.TooManyRequestsException
			switch {
			case err == nil:
				outcomes <- outcome{ok: true}
			case errors.As(err, &tooMany) && tooMany.Reason == types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded:
				outcomes <- outcome{throttled: true}
			default:
				outcomes <- outcome{err: err}
			}
		}()
	}
	// Eight refused while the admitted ones wait at the gate, and the
	// instances run exactly two.
	throttled := 0
	eventually(t, 60*time.Second, func() bool {
		for {
			select {
			case o := <-outcomes:
				if !o.throttled {
					t.Fatalf("an invocation ended before the gate opened: %+v", o)
				}
				throttled++
				continue
			default:
			}
			break
		}
		running, _ := busy(a, b)
		if running > 2 {
			t.Fatalf("%d invocations running in the instances, reserved concurrency 2", running)
		}
		return throttled == 8 && running == 2
	}, "8 throttled and 2 running")
	openGate(t, gate)
	wg.Wait()
	close(outcomes)
	for o := range outcomes {
		if !o.ok {
			t.Fatalf("an admitted invocation failed: %+v", o)
		}
	}
	if _, ran := busy(a, b); ran != 2 {
		t.Fatalf("the instances ran %d invocations, want 2", ran)
	}
	t.Logf("two gateways, reserved concurrency 2, 10 concurrent invokes: 2 ran, %d got 429", throttled)

	// Gateway a dies holding a slot: its NATS connection ends (no renewal,
	// no release) while its invocation runs; then that invocation ends.
	gateA, gateB := newGate(t), newGate(t)
	t.Cleanup(func() { openGate(t, gateA); openGate(t, gateB) })
	done := make(chan error, 2)
	go func() {
		_, err := lambdaFor(a).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("held"), Payload: gatedEvent(t, gateA)})
		done <- err
	}()
	go func() {
		_, err := lambdaFor(b).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("held"), Payload: gatedEvent(t, gateB)})
		done <- err
	}()
	eventually(t, 60*time.Second, func() bool { r, _ := busy(a, b); return r == 2 }, "one invocation running through each gateway")
	died := time.Now()
	a.srv.NATS().Conn.Close()
	openGate(t, gateA)
	<-done // a's invocation ended; a could not release its slot
	eventually(t, 30*time.Second, func() bool { r, _ := busy(a, b); return r == 1 }, "a's invocation to end")

	// b holds one slot, a's lapses within the lease: until then b is
	// refused, afterwards it runs a second invocation alongside its first.
	var tooMany *types.TooManyRequestsException
	_, err = lambdaFor(b).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("held"), Payload: gatedEvent(t, "")})
	if !errors.As(err, &tooMany) {
		t.Fatalf("b's second invocation while a's slot is still leased: %v, want TooManyRequestsException", err)
	}
	eventually(t, 5*lease, func() bool {
		_, err := lambdaFor(b).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("held"), Payload: gatedEvent(t, "")})
		if err != nil && !errors.As(err, &tooMany) {
			t.Fatalf("b's second invocation: %v", err)
		}
		return err == nil
	}, "a's slot to lapse and come back to b")
	t.Logf("a's slot came back %s after it died (lease %s)", time.Since(died).Round(100*time.Millisecond), lease)
	openGate(t, gateB)
	if err := <-done; err != nil {
		t.Fatalf("b's first invocation: %v", err)
	}
}
