package cluster

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// listed is a discovery source that lists whatever the test sets.
type listed struct {
	mu  sync.Mutex
	ins []discovery.Instance
}

func (l *listed) Instances(context.Context, string, string) ([]discovery.Instance, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]discovery.Instance(nil), l.ins...), nil
}

func TestReadySourceReportsInstancesOnceHealthy(t *testing.T) {
	var mu sync.Mutex
	status, probes := http.StatusServiceUnavailable, 0
	inst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != invokeapi.PathHealth {
			t.Errorf("probe of %s", r.URL.Path)
		}
		mu.Lock()
		defer mu.Unlock()
		probes++
		w.WriteHeader(status)
	}))
	defer inst.Close()
	// A registered address nothing listens on yet (placed, not started).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	src := &listed{ins: []discovery.Instance{
		{ID: "up", Address: inst.Listener.Addr().String()},
		{ID: "placed", Address: refused},
	}}
	rs := NewReadySource(src, 0, nil)
	ids := func() []string {
		ins, err := rs.Instances(context.Background(), "fn", "$LATEST")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range ins {
			out = append(out, in.ID)
		}
		return out
	}
	if got := ids(); len(got) != 0 {
		t.Fatalf("reported %v while one instance answers 503 and the other refuses", got)
	}
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	if got := ids(); len(got) != 1 || got[0] != "up" {
		t.Fatalf("reported %v, want [up]", got)
	}
	// Once healthy, an instance is not probed again while it stays listed.
	mu.Lock()
	before := probes
	mu.Unlock()
	if got := ids(); len(got) != 1 {
		t.Fatalf("reported %v", got)
	}
	mu.Lock()
	if probes != before {
		t.Errorf("a ready instance was probed again (%d → %d)", before, probes)
	}
	mu.Unlock()
	// Dropped by the inner source: forgotten, probed again if it returns.
	src.mu.Lock()
	src.ins = src.ins[1:]
	src.mu.Unlock()
	if got := ids(); len(got) != 0 {
		t.Fatalf("reported %v after the inner source dropped it", got)
	}
	src.mu.Lock()
	src.ins = []discovery.Instance{{ID: "up", Address: inst.Listener.Addr().String()}}
	src.mu.Unlock()
	ids()
	mu.Lock()
	if probes != before+1 {
		t.Errorf("a returning instance was not probed again (%d probes, want %d)", probes, before+1)
	}
	mu.Unlock()
}

// Over a source with checks: passing instances are reported without a
// probe; failing ones (a starting instance Consul has not checked yet)
// only while they answer their own probe, every time; and a probe that
// times out is not repeated at once.
func TestReadySourceOverCheckedInstances(t *testing.T) {
	var mu sync.Mutex
	status, probes := http.StatusOK, 0
	inst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		probes++
		w.WriteHeader(status)
	}))
	defer inst.Close()
	hung := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	}))
	defer stuck.Close()
	defer close(hung)
	// Nothing listens here: its probe would be refused; it passes Consul's
	// check, so it must be reported without one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	passingAddr := l.Addr().String()
	l.Close()
	src := &listed{ins: []discovery.Instance{
		{ID: "checked", Address: passingAddr, Health: discovery.HealthPassing},
		{ID: "starting", Address: inst.Listener.Addr().String(), Health: discovery.HealthFailing},
		{ID: "hung", Address: stuck.Listener.Addr().String(), Health: discovery.HealthFailing},
	}}
	rs := NewReadySource(src, 200*time.Millisecond, nil)
	ids := func() []string {
		ins, err := rs.Instances(context.Background(), "fn", "$LATEST")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range ins {
			out = append(out, in.ID)
		}
		return out
	}
	if got := ids(); !slices.Equal(got, []string{"checked", "starting"}) {
		t.Fatalf("reported %v, want [checked starting]", got)
	}
	if got := ids(); !slices.Equal(got, []string{"checked", "starting"}) {
		t.Fatalf("second call reported %v", got)
	}
	mu.Lock()
	if probes != 2 {
		t.Errorf("a failing-check instance was probed %d times in two calls, want every call", probes)
	}
	status = http.StatusServiceUnavailable
	mu.Unlock()
	if got := ids(); !slices.Equal(got, []string{"checked"}) {
		t.Fatalf("reported %v once the failing-check instance stopped answering, want [checked]", got)
	}
	// The hung instance timed out on the first call and was not probed on
	// the next ones (slowProbeBackoff): the calls after it did not wait.
	rs.mu.Lock()
	_, backedOff := rs.slow[stuck.Listener.Addr().String()]
	rs.mu.Unlock()
	if !backedOff {
		t.Fatal("a probe that timed out is not backed off")
	}
}
