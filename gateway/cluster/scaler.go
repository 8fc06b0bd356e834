package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/nomad"
	"github.com/nimbus-fn/nimbus/gateway/router"
)

// Capacity is what the Scaler needs of the Nomad scaler (*nomad.Scaler):
// read a version's on-demand count with its check-and-set index, write a
// count only at that index, and read the group's scaling events.
type Capacity interface {
	Count(ctx context.Context, function, version string) (nomad.Count, error)
	SetIf(ctx context.Context, function, version string, want int, at nomad.Count) error
	Status(ctx context.Context, function, version string) (*nomadapi.TaskGroupScaleStatus, error)
}

// casAttempts bounds the read-decide-write rounds of one OnDemand call
// while other writers keep changing the job.
const casAttempts = 8

var (
	_ Capacity      = (*nomad.Scaler)(nil)
	_ router.Scaler = (*Scaler)(nil)
)

// ScalerConfig configures a Scaler.
type ScalerConfig struct {
	// GatewayID is this gateway's name in scaling events (the inner
	// scaler's nomad.ScalerConfig.GatewayID). Required.
	GatewayID string
}

// Scaler is a router.Scaler that shares a version's on-demand count with
// other gateways (the rule is in the package doc): it raises only above
// Nomad's count and lowers only the count it set itself. Safe for
// concurrent use.
type Scaler struct {
	inner  Capacity
	cfg    ScalerConfig
	logger hclog.Logger

	mu   sync.Mutex        // guards last
	last map[[2]string]int // count this gateway last set, per function version
}

// NewScaler returns a Scaler over inner.
func NewScaler(inner Capacity, cfg ScalerConfig, logger hclog.Logger) (*Scaler, error) {
	if inner == nil {
		return nil, errors.New("shared scaler needs a nomad scaler")
	}
	if cfg.GatewayID == "" {
		return nil, errors.New("shared scaler needs this gateway's id")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Scaler{inner: inner, cfg: cfg, logger: logger.Named("shared-scaler"), last: map[[2]string]int{}}, nil
}

// OnDemand moves the version's on-demand count towards want as far as the
// sharing rule allows. A declined scale-in is not an error. Each write is a
// check-and-set on the job: when another gateway (or a registration)
// changed the job since the count was read, the count is read again and
// the rule applied to it again, so concurrent raises end at the highest
// and a scale-in never undoes a raise it did not see.
func (s *Scaler) OnDemand(ctx context.Context, function, version string, want int) error {
	if want < 0 {
		return fmt.Errorf("scaling %s:%s to %d: %w", function, version, want, nomad.ErrNegativeCount)
	}
	var err error
	for attempt := 0; attempt < casAttempts; attempt++ {
		err = s.once(ctx, function, version, want)
		if !errors.Is(err, nomad.ErrConflict) {
			return err
		}
		s.logger.Debug("on-demand count changed while scaling; reading it again",
			"function", function, "version", version, "want", want)
	}
	return fmt.Errorf("scaling %s:%s to %d: the job kept changing under %d check-and-set attempts: %w",
		function, version, want, casAttempts, err)
}

// once is one read-decide-write round; a lost check-and-set returns
// nomad.ErrConflict.
func (s *Scaler) once(ctx context.Context, function, version string, want int) error {
	cur, err := s.inner.Count(ctx, function, version)
	if err != nil {
		return fmt.Errorf("reading the on-demand count of %s:%s: %w", function, version, err)
	}
	key := [2]string{function, version}
	switch {
	case want == cur.Count:
		return nil
	case want > cur.Count:
		if err := s.inner.SetIf(ctx, function, version, want, cur); err != nil {
			return err
		}
		s.setLast(key, want)
		return nil
	}
	// A scale-in.
	s.mu.Lock()
	last, mine := s.last[key]
	s.mu.Unlock()
	if !mine {
		// After a restart: the newest count-setting event says who set it.
		st, err := s.inner.Status(ctx, function, version)
		if err != nil {
			return fmt.Errorf("reading the scaling events of %s:%s: %w", function, version, err)
		}
		last, mine = s.ownNewest(st.Events)
	}
	if !mine || last != cur.Count {
		s.logger.Info("leaving an on-demand count another gateway set", "function", function, "version", version,
			"count", cur.Count, "want", want)
		s.forget(key)
		return nil
	}
	if err := s.inner.SetIf(ctx, function, version, want, cur); err != nil {
		return err
	}
	s.setLast(key, want)
	return nil
}

// ownNewest returns the count of the newest count-setting event when this
// gateway wrote it.
func (s *Scaler) ownNewest(events []nomadapi.ScalingEvent) (int, bool) {
	var newest *nomadapi.ScalingEvent
	for i := range events {
		e := &events[i]
		if e.Error || e.Count == nil {
			continue
		}
		if newest == nil || e.Time > newest.Time {
			newest = e
		}
	}
	if newest == nil {
		return 0, false
	}
	if by, _ := newest.Meta[nomad.ScaleMetaGateway].(string); by != s.cfg.GatewayID {
		return 0, false
	}
	return int(*newest.Count), true
}

func (s *Scaler) setLast(key [2]string, n int) {
	s.mu.Lock()
	s.last[key] = n
	s.mu.Unlock()
}

func (s *Scaler) forget(key [2]string) {
	s.mu.Lock()
	delete(s.last, key)
	s.mu.Unlock()
}
