package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/specs"
)

// ConfigBucket is the KV bucket of event-invoke configs set through the
// API (PutFunctionEventInvokeConfig); they override the spec's async block
// for one function qualifier.
const ConfigBucket = "nimbus_event_invoke_config"

// ErrNoEventConfig: no config was put for that function qualifier.
var ErrNoEventConfig = errors.New("no event invoke config")

// EventConfig is an event-invoke config set through the API. Nil fields
// leave the spec's value in force.
type EventConfig struct {
	Function  string `json:"function"`
	Qualifier string `json:"qualifier"` // "$LATEST", a version or an alias
	// MaxRetries 0–2.
	MaxRetries *int `json:"maxRetries,omitempty"`
	// MaxEventAgeSeconds 60–21600.
	MaxEventAgeSeconds *int               `json:"maxEventAgeSeconds,omitempty"`
	OnSuccess          *specs.Destination `json:"onSuccess,omitempty"`
	OnFailure          *specs.Destination `json:"onFailure,omitempty"`
	LastModified       time.Time          `json:"lastModified"`
}

// qualifierToken writes a qualifier as a KV key token ("$" is not a key
// character).
func qualifierToken(q string) string {
	if q == "" {
		q = "$LATEST"
	}
	return strings.ReplaceAll(q, "$", "=")
}

func configKey(fn, qualifier string) string { return keyFunction(fn) + "." + qualifierToken(qualifier) }

// PutEventConfig stores c (replacing any config of its function qualifier).
func (q *Queue) PutEventConfig(ctx context.Context, c *EventConfig) error {
	if q.conn == nil {
		return ErrNotOpen
	}
	if c.Qualifier == "" {
		c.Qualifier = "$LATEST"
	}
	c.LastModified = time.Now().UTC()
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if _, err := q.conn.configs.Put(ctx, configKey(c.Function, c.Qualifier), b); err != nil {
		return fmt.Errorf("storing event invoke config of %s:%s: %w", c.Function, c.Qualifier, err)
	}
	q.configs.forget(configKey(c.Function, c.Qualifier))
	return nil
}

// EventConfig returns the config put for fn's qualifier, or
// ErrNoEventConfig.
func (q *Queue) EventConfig(ctx context.Context, fn, qualifier string) (*EventConfig, error) {
	if q.conn == nil {
		return nil, ErrNotOpen
	}
	e, err := q.conn.configs.Get(ctx, configKey(fn, qualifier))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNoEventConfig
	}
	if err != nil {
		return nil, fmt.Errorf("reading event invoke config of %s: %w", fn, err)
	}
	c := &EventConfig{}
	if err := json.Unmarshal(e.Value(), c); err != nil {
		return nil, fmt.Errorf("decoding event invoke config of %s: %w", fn, err)
	}
	return c, nil
}

// DeleteEventConfig removes the config of fn's qualifier (ErrNoEventConfig
// when there is none).
func (q *Queue) DeleteEventConfig(ctx context.Context, fn, qualifier string) error {
	if _, err := q.EventConfig(ctx, fn, qualifier); err != nil {
		return err
	}
	if err := q.conn.configs.Purge(ctx, configKey(fn, qualifier)); err != nil {
		return fmt.Errorf("deleting event invoke config of %s: %w", fn, err)
	}
	q.configs.forget(configKey(fn, qualifier))
	return nil
}

// configTTL is how long a worker trusts an event invoke config (or its
// absence) it read. Reading the KV bucket for every event was a JetStream
// request per event on the drain path; a config put through another
// gateway now takes effect there within configTTL, one put through this
// gateway at once.
const configTTL = time.Second

// configCache holds the event invoke configs workers read, for configTTL.
type configCache struct {
	mu      sync.Mutex
	entries map[string]cachedConfig
}

type cachedConfig struct {
	c   *EventConfig // nil: none was put
	err error        // ErrNoEventConfig or nil
	at  time.Time
}

func (c *configCache) get(key string, now time.Time) (cachedConfig, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.Sub(e.at) >= configTTL || now.Before(e.at) {
		return cachedConfig{}, false
	}
	return e, true
}

func (c *configCache) put(key string, e cachedConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]cachedConfig{}
	}
	if len(c.entries) >= 4096 {
		clear(c.entries) // bounded; the next reads refill it
	}
	c.entries[key] = e
}

func (c *configCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// workerEventConfig is EventConfig for a worker: answered from the cache
// while fresh. The API's reads stay uncached.
func (q *Queue) workerEventConfig(ctx context.Context, fn, qualifier string) (*EventConfig, error) {
	key := configKey(fn, qualifier)
	now := time.Now()
	if e, ok := q.configs.get(key, now); ok {
		return e.c, e.err
	}
	c, err := q.EventConfig(ctx, fn, qualifier)
	if err == nil || errors.Is(err, ErrNoEventConfig) {
		q.configs.put(key, cachedConfig{c: c, err: err, at: now})
	}
	return c, err
}

// EventConfigs lists the configs of every qualifier of fn.
func (q *Queue) EventConfigs(ctx context.Context, fn string) ([]*EventConfig, error) {
	if q.conn == nil {
		return nil, ErrNotOpen
	}
	keys, err := q.conn.configs.ListKeysFiltered(ctx, keyFunction(fn)+".*")
	if err != nil {
		return nil, fmt.Errorf("listing event invoke configs: %w", err)
	}
	var quals []string
	for k := range keys.Keys() {
		_, tok, _ := strings.Cut(k, ".")
		quals = append(quals, strings.ReplaceAll(tok, "=", "$"))
	}
	_ = keys.Stop()
	sort.Strings(quals)
	var out []*EventConfig
	for _, qual := range quals {
		c, err := q.EventConfig(ctx, fn, qual)
		if errors.Is(err, ErrNoEventConfig) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// apply lays an API-set config over the spec's settings.
func (c *EventConfig) apply(s asyncSettings) asyncSettings {
	if c == nil {
		return s
	}
	if c.MaxRetries != nil {
		s.maxRetries = *c.MaxRetries
	}
	if c.MaxEventAgeSeconds != nil {
		s.maxAge = time.Duration(*c.MaxEventAgeSeconds) * time.Second
	}
	if c.OnSuccess != nil {
		s.onSuccess = nonEmpty(c.OnSuccess)
	}
	if c.OnFailure != nil {
		s.onFailure = nonEmpty(c.OnFailure)
	}
	return s
}
