package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/nomad"
)

// sharedGroup stands in for one on-demand group in Nomad: one count every
// gateway writes, and scaling events newest first, as Nomad keeps them.
type sharedGroup struct {
	mu        sync.Mutex
	desired   int
	events    []nomadapi.ScalingEvent
	clock     uint64
	writes    int
	statusErr error
	scaleErr  error
}

// gatewayView is one gateway's nomad.Scaler over the shared group.
type gatewayView struct {
	g  *sharedGroup
	id string
}

func (v gatewayView) Count(context.Context, string, string) (nomad.Count, error) {
	v.g.mu.Lock()
	defer v.g.mu.Unlock()
	if v.g.statusErr != nil {
		return nomad.Count{}, v.g.statusErr
	}
	return nomad.Count{Count: v.g.desired, JobModifyIndex: v.g.clock + 1}, nil
}

func (v gatewayView) SetIf(_ context.Context, _, _ string, want int, at nomad.Count) error {
	v.g.mu.Lock()
	defer v.g.mu.Unlock()
	if v.g.scaleErr != nil {
		return v.g.scaleErr
	}
	if at.JobModifyIndex != v.g.clock+1 {
		return nomad.ErrConflict
	}
	v.g.clock++
	n := int64(want)
	v.g.events = append([]nomadapi.ScalingEvent{{
		Count: &n, PreviousCount: int64(v.g.desired), Time: v.g.clock,
		Meta: map[string]any{nomad.ScaleMetaGateway: v.id},
	}}, v.g.events...)
	v.g.desired = want
	v.g.writes++
	return nil
}

func (v gatewayView) Status(context.Context, string, string) (*nomadapi.TaskGroupScaleStatus, error) {
	v.g.mu.Lock()
	defer v.g.mu.Unlock()
	if v.g.statusErr != nil {
		return nil, v.g.statusErr
	}
	return &nomadapi.TaskGroupScaleStatus{Desired: v.g.desired, Events: append([]nomadapi.ScalingEvent(nil), v.g.events...)}, nil
}

func (g *sharedGroup) state() (int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.desired, g.writes
}

func newGateway(t *testing.T, g *sharedGroup, id string) *Scaler {
	t.Helper()
	s, err := NewScaler(gatewayView{g: g, id: id}, ScalerConfig{GatewayID: id}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scale(t *testing.T, s *Scaler, want int) {
	t.Helper()
	if err := s.OnDemand(context.Background(), "fn", "$LATEST", want); err != nil {
		t.Fatalf("%s to %d: %v", s.cfg.GatewayID, want, err)
	}
}

func expect(t *testing.T, g *sharedGroup, desired, writes int) {
	t.Helper()
	if d, w := g.state(); d != desired || w != writes {
		t.Fatalf("count %d after %d writes, want %d after %d", d, w, desired, writes)
	}
}

func TestScalerNeverLowersAnotherGatewaysCount(t *testing.T) {
	g := &sharedGroup{}
	a, b := newGateway(t, g, "a"), newGateway(t, g, "b")

	scale(t, a, 1)
	expect(t, g, 1, 1)
	scale(t, b, 3) // B's traffic needs more
	expect(t, g, 3, 2)
	scale(t, a, 2) // A needs more than before, but less than Nomad has: nothing to write
	expect(t, g, 3, 2)
	scale(t, a, 0) // A idles: 3 is B's count
	expect(t, g, 3, 2)
	scale(t, b, 1) // B idles down to what its window needed: its own count
	expect(t, g, 1, 3)
	scale(t, a, 0) // A forgot its count when it declined
	expect(t, g, 1, 3)
	scale(t, b, 0)
	expect(t, g, 0, 4)
	scale(t, a, 0) // already there
	expect(t, g, 0, 4)
}

func TestScalerLowersOnlyTheCountItSetLast(t *testing.T) {
	g := &sharedGroup{}
	a, b := newGateway(t, g, "a"), newGateway(t, g, "b")
	scale(t, a, 2)
	scale(t, b, 3)
	scale(t, b, 0) // B lowers its own count, below A's earlier 2
	expect(t, g, 0, 3)
	scale(t, a, 0)
	expect(t, g, 0, 3)
	scale(t, a, 1) // a raise is always written
	expect(t, g, 1, 4)
	scale(t, a, 0)
	expect(t, g, 0, 5)
}

func TestScalerRecognisesItsCountAfterARestart(t *testing.T) {
	g := &sharedGroup{}
	scale(t, newGateway(t, g, "a"), 2)
	scale(t, newGateway(t, g, "b"), 0) // another gateway never set it
	expect(t, g, 2, 1)
	restarted := newGateway(t, g, "a") // same gateway id, no memory
	scale(t, restarted, 0)
	expect(t, g, 0, 2)
}

func TestScalerErrors(t *testing.T) {
	g := &sharedGroup{}
	a := newGateway(t, g, "a")
	if err := a.OnDemand(context.Background(), "fn", "1", -1); !errors.Is(err, nomad.ErrNegativeCount) {
		t.Fatalf("negative count: %v", err)
	}
	boom := errors.New("nomad unreachable")
	g.statusErr = boom
	if err := a.OnDemand(context.Background(), "fn", "1", 1); !errors.Is(err, boom) {
		t.Fatalf("status error: %v", err)
	}
	expect(t, g, 0, 0)
	g.statusErr, g.scaleErr = nil, boom
	if err := a.OnDemand(context.Background(), "fn", "1", 1); !errors.Is(err, boom) {
		t.Fatalf("scale error: %v", err)
	}
	g.scaleErr = nil
	// A failed write is not remembered as this gateway's count.
	g.desired = 1
	scale(t, a, 0)
	expect(t, g, 1, 0)
	if _, err := NewScaler(gatewayView{g: g}, ScalerConfig{}, nil); err == nil {
		t.Fatal("a scaler without a gateway id was accepted")
	}
}
