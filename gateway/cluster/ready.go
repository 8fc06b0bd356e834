package cluster

import (
	"context"
	"errors"
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
//
// Over a source that runs checks (Consul with IncludeFailing), an instance
// whose checks pass is reported without a probe, and one whose checks do
// not pass is reported only while its own probe answers: that is how a
// starting instance is routed to before Consul's first check of it, while
// one Consul found failing later still drops out when it stops answering.
// A probe that timed out is not repeated for slowProbeBackoff, so a hung
// instance does not hold up every call.
type ReadySource struct {
	inner   discovery.Source
	client  *http.Client
	timeout time.Duration
	logger  hclog.Logger

	mu    sync.Mutex                      // guards ready and slow
	ready map[[2]string]map[string]string // function version → instance id → address that passed
	slow  map[string]time.Time            // address → when a timed-out probe may be repeated
}

// slowProbeBackoff is how long a probe that timed out is not repeated.
const slowProbeBackoff = 2 * time.Second

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
		ready: map[[2]string]map[string]string{}, slow: map[string]time.Time{},
	}
}

// Instances returns the inner source's instances that are ready (see the
// type's comment); the ones that need a probe are probed now, in parallel.
func (s *ReadySource) Instances(ctx context.Context, function, version string) ([]discovery.Instance, error) {
	all, err := s.inner.Instances(ctx, function, version)
	if err != nil {
		return nil, err
	}
	key := [2]string{function, version}
	now := time.Now()
	s.mu.Lock()
	known := s.ready[key]
	skip := make([]bool, len(all))
	for i, in := range all {
		if until, ok := s.slow[in.Address]; ok {
			if now.Before(until) {
				skip[i] = true
			} else {
				delete(s.slow, in.Address)
			}
		}
	}
	s.mu.Unlock()
	passed := make([]bool, len(all))
	var wg sync.WaitGroup
	for i, in := range all {
		switch {
		case in.Health == discovery.HealthPassing:
			passed[i] = true
			continue
		case in.Health == "" && known[in.ID] == in.Address:
			passed[i] = true
			continue
		case skip[i]:
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, timedOut := s.probe(ctx, in)
			passed[i] = ok
			if timedOut {
				s.mu.Lock()
				s.slow[in.Address] = time.Now().Add(slowProbeBackoff)
				s.mu.Unlock()
			}
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

// probe asks the instance's health endpoint once; timedOut is true when
// the probe ran out of time (as opposed to a refused connection or a
// non-200 answer, which come back at once).
func (s *ReadySource) probe(ctx context.Context, in discovery.Instance) (ok, timedOut bool) {
	pctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+in.Address+invokeapi.PathHealth, nil)
	if err != nil {
		return false, false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.logger.Debug("instance not ready yet", "function", in.Function, "version", in.Version, "instance", in.ID, "error", err)
		return false, ctx.Err() == nil && errors.Is(pctx.Err(), context.DeadlineExceeded)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, false
}
