package consul

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/consultest"
)

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	gatewaytest.Eventually(t, timeout, cond, "%s", what)
}

// checkWait is how long a Consul check flip may take: checks run at most
// once a second, the first one after a random stagger up to the interval.
const checkWait = 20 * time.Second

// healthServer is a loopback HTTP server answering path with 200 while
// healthy and 503 otherwise.
type healthServer struct {
	*httptest.Server
	healthy atomic.Bool
	hits    atomic.Int64
}

func newHealthServer(t *testing.T, path string) *healthServer {
	t.Helper()
	h := &healthServer{}
	h.healthy.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
		h.hits.Add(1)
		if !h.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	h.Server = httptest.NewServer(mux)
	t.Cleanup(h.Close)
	return h
}

func (h *healthServer) hostPort(t *testing.T) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(h.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// resolver sends DNS queries to the agent's DNS interface.
func resolver(a *consultest.Agent) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, a.DNSAddr)
	}}
}
