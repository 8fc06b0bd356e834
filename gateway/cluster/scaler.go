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
// set a version's on-demand count, and read the group's scale status.
type Capacity interface {
	OnDemand(ctx context.Context, function, version string, want int) error
	Status(ctx context.Context, function, version string) (*nomadapi.TaskGroupScaleStatus, error)
}

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
// sharing rule allows. A declined scale-in is not an error.
func (s *Scaler) OnDemand(ctx context.Context, function, version string, want int) error {
	if want < 0 {
		return fmt.Errorf("scaling %s:%s to %d: %w", function, version, want, nomad.ErrNegativeCount)
	}
	st, err := s.inner.Status(ctx, function, version)
	if err != nil {
		return fmt.Errorf("reading the on-demand count of %s:%s: %w", function, version, err)
	}
	key := [2]string{function, version}
	log := s.logger.With("function", function, "version", version)
	switch {
	case want == st.Desired:
		return nil
	case want > st.Desired:
		if err := s.inner.OnDemand(ctx, function, version, want); err != nil {
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
		last, mine = s.ownNewest(st.Events)
	}
	if !mine || last != st.Desired {
		log.Info("leaving an on-demand count another gateway set", "count", st.Desired, "want", want)
		s.forget(key)
		return nil
	}
	if err := s.inner.OnDemand(ctx, function, version, want); err != nil {
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
