package queue

import (
	"testing"
	"time"
)

// TestConfigCacheExpiresAndForgets: a worker's cached config (or its
// absence) answers until configTTL has passed, and a put or delete through
// this gateway forgets it at once.
func TestConfigCacheExpiresAndForgets(t *testing.T) {
	var c configCache
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	key := configKey("fn", "live")
	if _, ok := c.get(key, t0); ok {
		t.Fatal("an empty cache answered")
	}
	retries := 1
	c.put(key, cachedConfig{c: &EventConfig{Function: "fn", Qualifier: "live", MaxRetries: &retries}, at: t0})
	if e, ok := c.get(key, t0.Add(configTTL-time.Millisecond)); !ok || e.c == nil || *e.c.MaxRetries != 1 {
		t.Fatalf("fresh entry: %+v %v", e, ok)
	}
	if _, ok := c.get(key, t0.Add(configTTL)); ok {
		t.Error("an entry older than configTTL answered")
	}
	if _, ok := c.get(key, t0.Add(-time.Second)); ok {
		t.Error("an entry from the future answered (clock stepped back)")
	}
	c.put(key, cachedConfig{err: ErrNoEventConfig, at: t0})
	if e, ok := c.get(key, t0); !ok || e.err != ErrNoEventConfig || e.c != nil {
		t.Fatalf("cached absence: %+v %v", e, ok)
	}
	c.forget(key)
	if _, ok := c.get(key, t0); ok {
		t.Error("a forgotten entry answered")
	}
	for i := range 5000 {
		c.put(configKey("fn", string(rune('a'+i%26))+time.Duration(i).String()), cachedConfig{at: t0})
	}
	if n := len(c.entries); n > 4096 {
		t.Errorf("cache holds %d entries", n)
	}
}
