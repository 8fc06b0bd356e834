package queue

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config configures the async queue: the `queue { … }` block of the gateway
// config. "Default:" notes give the value an empty field takes.
type Config struct {
	// URL of an external NATS (JetStream) cluster, shared by several
	// gateways. Empty runs an embedded nats-server in DataDir.
	URL string `hcl:"nats_url,optional"`
	// DataDir holds the embedded server's JetStream store. Default
	// "nimbus-data/queue" (relative to the working directory: the task
	// directory in a Nomad job); in dev mode an empty DataDir is a temporary
	// directory removed on shutdown (events do not survive a restart).
	DataDir string `hcl:"data_dir,optional"`
	// Listen is where the embedded server accepts NATS clients (loopback by
	// default; port 0 picks one). The gateway itself connects in-process.
	// Default "127.0.0.1:0".
	Listen string `hcl:"listen,optional"`
	// Workers bounds the async invocations this gateway runs at once: the
	// async share of capacity, so sync calls are never starved. Default 32.
	Workers int `hcl:"workers,optional"`
	// FunctionShare is the fraction of a function's concurrency limit
	// (reserved, or the unreserved pool) async workers may hold at once.
	// Default 0.5.
	FunctionShare float64 `hcl:"function_share,optional"`
	// BusyDelay is how long an event waits before it is offered again when
	// its function already runs its function_share of async invocations on
	// this gateway: the event goes back to the queue instead of holding a
	// worker, so other functions' events keep flowing. Grows with each
	// deferral (up to 10x). Default "250ms".
	BusyDelay string `hcl:"busy_delay,optional"`
	// MaxEvents bounds the queue; an Event invoke over it answers 429.
	// Default 1000000.
	MaxEvents int64 `hcl:"max_events,optional"`
	// AckWait is how long an event may stay taken without a sign of life
	// before JetStream hands it to another worker (a crashed gateway's
	// events come back after this). Workers extend it while they run.
	// Default "30s".
	AckWait string `hcl:"ack_wait,optional"`
	// RetryDelays are the waits before the 2nd and 3rd attempt after a
	// function error. Default ["1m", "2m"] (Lambda's).
	RetryDelays []string `hcl:"retry_delays,optional"`
	// ThrottleBackoffMin and ThrottleBackoffMax bound the exponential
	// backoff after a throttle or a system error. Default "1s" and "5m".
	ThrottleBackoffMin string `hcl:"throttle_backoff_min,optional"`
	ThrottleBackoffMax string `hcl:"throttle_backoff_max,optional"`
	// Retention is how long an invocation's status stays readable.
	// Default "24h".
	Retention string `hcl:"retention,optional"`
	// Replicas of the stream and status bucket on an external cluster.
	// Default 1.
	Replicas int `hcl:"replicas,optional"`

	// Parsed forms, filled by Validate.
	AckWaitD            time.Duration
	BusyDelayD          time.Duration
	RetryDelaysD        []time.Duration
	ThrottleBackoffMinD time.Duration
	ThrottleBackoffMaxD time.Duration
	RetentionD          time.Duration
}

// Defaults fills empty fields.
func (c *Config) Defaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.Listen, "127.0.0.1:0")
	set(&c.AckWait, "30s")
	set(&c.BusyDelay, "250ms")
	set(&c.ThrottleBackoffMin, "1s")
	set(&c.ThrottleBackoffMax, "5m")
	set(&c.Retention, "24h")
	if c.RetryDelays == nil {
		c.RetryDelays = []string{"1m", "2m"}
	}
	if c.Workers == 0 {
		c.Workers = 32
	}
	if c.FunctionShare == 0 {
		c.FunctionShare = 0.5
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = 1_000_000
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// Validate checks every field (after Defaults) and fills the parsed forms.
// dev allows an embedded server without a data dir.
func (c *Config) Validate(dev bool) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("queue: "+format, a...)) }
	dur := func(name, v string, min time.Duration) time.Duration {
		d, err := time.ParseDuration(v)
		if err != nil {
			bad("%s %q: %w", name, v, err)
			return 0
		}
		if d < min {
			bad("%s %s is below %s", name, d, min)
		}
		return d
	}
	if c.URL == "" && c.DataDir == "" && !dev {
		c.DataDir = "nimbus-data/queue"
	}
	if c.URL == "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen %q: %w", c.Listen, err)
		}
	}
	if c.Workers < 1 {
		bad("workers %d must be at least 1", c.Workers)
	}
	if c.FunctionShare <= 0 || c.FunctionShare > 1 {
		bad("function_share %g must be in (0, 1]", c.FunctionShare)
	}
	if c.MaxEvents < 1 {
		bad("max_events %d must be at least 1", c.MaxEvents)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("replicas %d must be between 1 and 5", c.Replicas)
	}
	c.AckWaitD = dur("ack_wait", c.AckWait, 100*time.Millisecond)
	c.BusyDelayD = dur("busy_delay", c.BusyDelay, time.Millisecond)
	c.ThrottleBackoffMinD = dur("throttle_backoff_min", c.ThrottleBackoffMin, time.Millisecond)
	c.ThrottleBackoffMaxD = dur("throttle_backoff_max", c.ThrottleBackoffMax, time.Millisecond)
	if c.ThrottleBackoffMaxD < c.ThrottleBackoffMinD {
		bad("throttle_backoff_max %s is below throttle_backoff_min %s", c.ThrottleBackoffMaxD, c.ThrottleBackoffMinD)
	}
	c.RetentionD = dur("retention", c.Retention, time.Second)
	if len(c.RetryDelays) == 0 {
		bad("retry_delays needs at least one delay")
	}
	c.RetryDelaysD = c.RetryDelaysD[:0]
	for i, s := range c.RetryDelays {
		c.RetryDelaysD = append(c.RetryDelaysD, dur(fmt.Sprintf("retry_delays[%d]", i), s, 0))
	}
	return errors.Join(errs...)
}
