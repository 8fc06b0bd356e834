package cluster

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// ReadySource reports an instance only once its health endpoint
// (invokeapi.PathHealth) has answered 200. Nomad's native service catalog
// lists a group's service from the moment the allocation is placed —
// before the artifact is fetched and the instance listens — and carries no
// check status, so without this the router would pick an instance that
// refuses the connection (found against a real Nomad 1.6.1 agent). An
// instance that passed once stays reported until the inner source drops
// it; failures after that are the router's to handle.
type ReadySource struct {
	inner   discovery.Source
	client  *http.Client
	timeout time.Duration
	logger  hclog.Logger

	mu    sync.Mutex                      // guards ready
	ready map[[2]string]map[string]string // function version → instance id → address that passed
}

var _ discovery.Source = (*ReadySource)(nil)

// NewReadySource wraps inner; each probe is bounded by timeout (default 1s).
func NewReadySource(inner discovery.Source, timeout time.Duration, logger hclog.Logger) *ReadySource {
	if timeout <= 0 {
		timeout = time.Second
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &ReadySource{
		inner: inner, client: &http.Client{}, timeout: timeout, logger: logger.Named("ready-source"),
		ready: map[[2]string]map[string]string{},
	}
}

// Instances returns the inner source's instances that have answered their
// health check; the ones not yet seen healthy are probed now, in parallel.
func (s *ReadySource) Instances(ctx context.Context, function, version string) ([]discovery.Instance, error) {
	all, err := s.inner.Instances(ctx, function, version)
	if err != nil {
		return nil, err
	}
	key := [2]string{function, version}
	s.mu.Lock()
	known := s.ready[key]
	s.mu.Unlock()
	passed := make([]bool, len(all))
	var wg sync.WaitGroup
	for i, in := range all {
		if known[in.ID] == in.Address {
			passed[i] = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			passed[i] = s.probe(ctx, in)
		}()
	}
	wg.Wait()
	next := make(map[string]string, len(all))
	out := make([]discovery.Instance, 0, len(all))
	for i, in := range all {
		if passed[i] {
			next[in.ID] = in.Address
			out = append(out, in)
		}
	}
	s.mu.Lock()
	s.ready[key] = next
	s.mu.Unlock()
	return out, nil
}

func (s *ReadySource) probe(ctx context.Context, in discovery.Instance) bool {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.Address+invokeapi.PathHealth, nil)
	if err != nil {
		return false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.logger.Debug("instance not ready yet", "function", in.Function, "version", in.Version, "instance", in.ID, "error", err)
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
