package usage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/metrics"
)

// Config configures a Ledger. Zero values take the defaults noted.
type Config struct {
	// Bucket is the JetStream KV bucket. Default "nimbus_usage".
	Bucket string
	// Owner names this gateway (its key suffix is a hash of it). Required.
	Owner string
	// FlushInterval is how often counts reach the bucket. Default 10s.
	FlushInterval time.Duration
	// Retention is the bucket's max age. Default 35 days.
	Retention time.Duration
	// Replicas of the bucket on a NATS cluster. Default 1.
	Replicas int
}

func (c *Config) defaults() {
	if c.Bucket == "" {
		c.Bucket = "nimbus_usage"
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 10 * time.Second
	}
	if c.Retention <= 0 {
		c.Retention = 35 * 24 * time.Hour
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
}

// Counts is one function version's usage over a span.
type Counts struct {
	Requests int64 `json:"requests"`
	// BilledMBms is memory MB × billed ms; GBSeconds converts it.
	BilledMBms int64 `json:"billed_mb_ms"`
	// ProvisionedMBms is memory MB × ms of provisioned environments.
	ProvisionedMBms int64 `json:"provisioned_mb_ms"`
}

func (c *Counts) add(o Counts) {
	c.Requests += o.Requests
	c.BilledMBms += o.BilledMBms
	c.ProvisionedMBms += o.ProvisionedMBms
}

// GBSeconds is the billed duration in GB-seconds.
func (c Counts) GBSeconds() float64 { return float64(c.BilledMBms) / 1024 / 1000 }

// ProvisionedGBSeconds is the provisioned time in GB-seconds.
func (c Counts) ProvisionedGBSeconds() float64 { return float64(c.ProvisionedMBms) / 1024 / 1000 }

// Row is one function version's usage in a query's span.
type Row struct {
	Function string `json:"function"`
	Version  string `json:"version"`
	Counts
}

type hourKey struct {
	function, version string
	hour              int64 // unix seconds of the hour's start
}

// Ledger meters usage into the bucket. It implements metrics.UsageSink.
type Ledger struct {
	kv     jetstream.KeyValue
	cfg    Config
	owner  string // key-safe hash of cfg.Owner
	now    func() time.Time
	logger hclog.Logger

	mu      sync.Mutex
	pending map[hourKey]*Counts
}

var _ metrics.UsageSink = (*Ledger)(nil)

// Open opens (or creates) the bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, logger hclog.Logger) (*Ledger, error) {
	cfg.defaults()
	if cfg.Owner == "" {
		return nil, errors.New("usage ledger: an owner is required")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: cfg.Bucket, Description: "Nimbus metered usage by function, version, hour and gateway",
			History: 1, TTL: cfg.Retention, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening usage bucket %s: %w", cfg.Bucket, err)
	}
	sum := sha256.Sum256([]byte(cfg.Owner))
	return &Ledger{kv: kv, cfg: cfg, owner: hex.EncodeToString(sum[:6]), now: time.Now,
		logger: logger.Named("usage"), pending: map[hourKey]*Counts{}}, nil
}

func (l *Ledger) pendingLocked(fn, version string, at time.Time) *Counts {
	k := hourKey{fn, version, at.UTC().Truncate(time.Hour).Unix()}
	c := l.pending[k]
	if c == nil {
		c = &Counts{}
		l.pending[k] = c
	}
	return c
}

// Billed implements metrics.UsageSink: one request billed at memoryMB for
// billedMs.
func (l *Ledger) Billed(function, version string, memoryMB, billedMs int64) {
	l.mu.Lock()
	c := l.pendingLocked(function, version, l.now())
	c.Requests++
	c.BilledMBms += memoryMB * billedMs
	l.mu.Unlock()
}

// Provisioned adds mbMs of provisioned environments now.
func (l *Ledger) Provisioned(function, version string, mbMs int64) {
	if mbMs <= 0 {
		return
	}
	l.mu.Lock()
	l.pendingLocked(function, version, l.now()).ProvisionedMBms += mbMs
	l.mu.Unlock()
}

// Run flushes every FlushInterval until ctx ends, then once more.
func (l *Ledger) Run(ctx context.Context) {
	t := time.NewTicker(l.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := l.Flush(fctx); err != nil {
				l.logger.Warn("flushing usage at shutdown", "error", err)
			}
			cancel()
			return
		case <-t.C:
			if err := l.Flush(ctx); err != nil && ctx.Err() == nil {
				l.logger.Warn("flushing usage", "error", err)
			}
		}
	}
}

// Flush adds the pending counts to this gateway's keys; counts it could
// not write stay pending for the next flush.
func (l *Ledger) Flush(ctx context.Context) error {
	l.mu.Lock()
	batch := l.pending
	l.pending = map[hourKey]*Counts{}
	l.mu.Unlock()
	var errs []error
	for k, c := range batch {
		if err := l.addTo(ctx, k, *c); err != nil {
			errs = append(errs, err)
			l.mu.Lock()
			p := l.pending[k]
			if p == nil {
				p = &Counts{}
				l.pending[k] = p
			}
			p.add(*c)
			l.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// key is the bucket key of k for this gateway. KV keys allow
// [-/_=.a-zA-Z0-9]: "$LATEST" is written "LATEST" (no version is a word
// otherwise: the rest are numbers).
func (l *Ledger) key(k hourKey) string {
	return keyPrefix(k.function) + keyVersion(k.version) + "." + time.Unix(k.hour, 0).UTC().Format("2006010215") + "." + l.owner
}

func keyPrefix(fn string) string { return fn + "." }

func keyVersion(v string) string { return strings.TrimPrefix(v, "$") }

func (l *Ledger) addTo(ctx context.Context, k hourKey, c Counts) error {
	key := l.key(k)
	for range 8 {
		cur := Counts{}
		var rev uint64
		e, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("reading %s: %w", key, err)
		default:
			if err := json.Unmarshal(e.Value(), &cur); err != nil {
				return fmt.Errorf("decoding %s: %w", key, err)
			}
			rev = e.Revision()
		}
		cur.add(c)
		b, _ := json.Marshal(cur)
		if rev == 0 {
			_, err = l.kv.Create(ctx, key, b)
		} else {
			_, err = l.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("writing %s: %w", key, err)
		}
	}
	return fmt.Errorf("writing %s: still contended after 8 attempts", key)
}

// Query sums the usage of function (every function when empty) in the
// hours that overlap [since, now]: requests and GB-seconds over gateways,
// provisioned time as the largest any gateway recorded per hour.
func (l *Ledger) Query(ctx context.Context, function string, since time.Time) ([]Row, error) {
	filter := ">"
	if function != "" {
		filter = keyPrefix(function) + ">"
	}
	lister, err := l.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return []Row{}, nil
		}
		return nil, fmt.Errorf("listing usage: %w", err)
	}
	first := since.UTC().Truncate(time.Hour)
	type fv struct{ function, version string }
	sums := map[fv]*Counts{}
	provisioned := map[hourKey]int64{}
	for key := range lister.Keys() {
		parts := strings.Split(key, ".")
		if len(parts) != 4 {
			continue
		}
		hour, err := time.Parse("2006010215", parts[2])
		if err != nil || hour.Before(first) {
			continue
		}
		e, err := l.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", key, err)
		}
		var c Counts
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", key, err)
		}
		version := parts[1]
		if version == "LATEST" {
			version = "$LATEST"
		}
		k := fv{parts[0], version}
		if sums[k] == nil {
			sums[k] = &Counts{}
		}
		sums[k].Requests += c.Requests
		sums[k].BilledMBms += c.BilledMBms
		hk := hourKey{k.function, k.version, hour.Unix()}
		provisioned[hk] = max(provisioned[hk], c.ProvisionedMBms)
	}
	for hk, v := range provisioned {
		sums[fv{hk.function, hk.version}].ProvisionedMBms += v
	}
	rows := make([]Row, 0, len(sums))
	for k, c := range sums {
		rows = append(rows, Row{Function: k.function, Version: k.version, Counts: *c})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Function != rows[j].Function {
			return rows[i].Function < rows[j].Function
		}
		return rows[i].Version < rows[j].Version
	})
	return rows, nil
}
