package queue_test

import (
	"context"
	"testing"
	"time"
)

// Depths splits the queue per function (names with dots included) and
// ages each function's oldest event by the queue's clock.
func TestDepthsPerFunction(t *testing.T) {
	h := newHarness(t, testConfig(), false) // no workers: events stay queued
	h.cat.add(fnSpec("a.b", nil))
	h.cat.add(fnSpec("c", nil))
	h.enqueue("a.b", `{}`)
	h.enqueue("a.b", `{}`)
	h.enqueue("c", `{}`)
	h.skew.Store(int64(90 * time.Second))
	d, err := h.q.Depths(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d["a.b"].Depth != 2 || d["c"].Depth != 1 {
		t.Fatalf("depths %+v", d)
	}
	for fn, fd := range d {
		if fd.Oldest < 90*time.Second || fd.Oldest > 5*time.Minute {
			t.Errorf("%s: oldest %v, want about 90s", fn, fd.Oldest)
		}
	}
}
