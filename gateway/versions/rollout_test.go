package versions

import (
	"context"
	"errors"
	"testing"

	"github.com/nimbus-fn/nimbus/rollout"
)

// testRollouts: a rollout record is created only where none is, replaced
// only at the revision read, refused when invalid or of another alias, and
// deleted only at its revision.
func testRollouts(t *testing.T, s *Store) {
	ctx := context.Background()
	rec := &rollout.Record{Function: "fn", Alias: "live", Original: rollout.Alias{Version: "1", Description: "prod"}, To: "2",
		Steps: []int{20, 50, 100}, IntervalMillis: 1000,
		Thresholds:  rollout.Thresholds{MaxErrorRate: 0.05, MaxThrottles: -1, MinInvocations: 10},
		MetricsURLs: []string{"http://127.0.0.1:9000/metrics"}, Step: -1, Status: rollout.Running}
	if _, _, err := s.Rollout(ctx, "fn", "live"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before any: %v", err)
	}
	idx, err := s.PutRollout(ctx, "fn", "live", rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutRollout(ctx, "fn", "live", rec, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second create: %v, want ErrConflict", err)
	}
	got, gotIdx, err := s.Rollout(ctx, "fn", "live")
	if err != nil || gotIdx != idx || got.To != "2" || got.Original.Description != "prod" || got.MinInvocations != 10 {
		t.Fatalf("read back: %+v %d %v", got, gotIdx, err)
	}
	got.Step = 1
	idx2, err := s.PutRollout(ctx, "fn", "live", got, idx)
	if err != nil || idx2 == idx {
		t.Fatalf("update at its revision: %d %v", idx2, err)
	}
	if _, err := s.PutRollout(ctx, "fn", "live", got, idx); !errors.Is(err, ErrConflict) {
		t.Fatalf("update at a stale revision: %v, want ErrConflict", err)
	}
	bad := *got
	bad.Status = "Paused"
	if _, err := s.PutRollout(ctx, "fn", "live", &bad, idx2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid record: %v, want ErrInvalid", err)
	}
	if _, err := s.PutRollout(ctx, "fn", "other", got, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a record of another alias: %v, want ErrInvalid", err)
	}
	if err := s.DeleteRollout(ctx, "fn", "live", idx); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete at a stale revision: %v", err)
	}
	if err := s.DeleteRollout(ctx, "fn", "live", idx2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Rollout(ctx, "fn", "live"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
