package queue

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/natsembed"
)

// Config configures the async queue: the `queue { … }` block of the gateway
// config. "Default:" notes give the value an empty field takes.
type Config struct {
	// URL of an external NATS (JetStream) cluster, shared by several
	// gateways. Empty runs an embedded nats-server in DataDir.
	URL string `hcl:"nats_url,optional"`

	// Credentials and TLS for an external NATS (nats_url); refused without
	// one. At most one credential kind: a user:password (or token) in the
	// URL's user part, Token, TokenFile, NKeySeedFile or CredsFile. Outside
	// dev mode the gateway refuses a nats_url without any credential
	// (credentials above or a client certificate) unless Insecure is set.
	// Credentials are never logged.

	// Token is the NATS auth token. Default: none.
	Token string `hcl:"nats_token,optional"`
	// TokenFile reads Token from a file (surrounding space trimmed).
	// Default: none.
	TokenFile string `hcl:"nats_token_file,optional"`
	// NKeySeedFile is a file holding an NKey user seed ("SU…"); the
	// gateway signs the server's nonce with it. Default: none.
	NKeySeedFile string `hcl:"nats_nkey_seed_file,optional"`
	// CredsFile is a decentralized-auth .creds file (user JWT and NKey
	// seed). Default: none.
	CredsFile string `hcl:"nats_creds_file,optional"`
	// CAFile is a PEM bundle of the CAs that sign the NATS servers'
	// certificates; setting it (or CertFile or ServerName) requires TLS.
	// Default: the system's roots when TLS is on.
	CAFile string `hcl:"nats_ca_file,optional"`
	// CertFile and KeyFile are the gateway's client certificate and key
	// (PEM) for servers that verify clients (mutual TLS). Both or neither.
	// Default: none.
	CertFile string `hcl:"nats_cert_file,optional"`
	KeyFile  string `hcl:"nats_key_file,optional"`
	// ServerName is the name the servers' certificates must carry.
	// Default: the host of the URL the gateway connects to.
	ServerName string `hcl:"nats_tls_server_name,optional"`
	// Insecure lets a cluster gateway (not dev mode) connect to a nats_url
	// without credentials; anyone who can reach that NATS can then read
	// and forge async events and replace artifacts. Default false.
	Insecure bool `hcl:"nats_insecure,optional"`

	// ClusterKey is the gateway's invoke key, set by the gateway (not
	// HCL): the embedded server's token derives from it
	// (natsembed.DeriveToken). Empty: a random token per process.
	ClusterKey []byte
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
		host, _, err := net.SplitHostPort(c.Listen)
		switch {
		case err != nil:
			bad("listen %q: %w", c.Listen, err)
		case !natsembed.IsLoopback(host):
			bad("listen %q: the embedded NATS listens on loopback only (127.0.0.1, ::1 or localhost); set nats_url to share a NATS cluster between hosts", c.Listen)
		}
	}
	errs = append(errs, c.validateExternal(dev)...)
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

// validateExternal checks the credential and TLS fields: they need
// nats_url, at most one credential kind, readable files, and outside dev
// mode some credential (or Insecure).
func (c *Config) validateExternal(dev bool) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("queue: "+format, a...)) }
	set := map[string]string{
		"nats_token": c.Token, "nats_token_file": c.TokenFile, "nats_nkey_seed_file": c.NKeySeedFile,
		"nats_creds_file": c.CredsFile, "nats_ca_file": c.CAFile, "nats_cert_file": c.CertFile,
		"nats_key_file": c.KeyFile, "nats_tls_server_name": c.ServerName,
	}
	if c.URL == "" {
		for _, name := range sortedKeys(set) {
			if set[name] != "" {
				bad("%s applies to an external NATS: set nats_url too", name)
			}
		}
		if c.Insecure {
			bad("nats_insecure applies to an external NATS: set nats_url too")
		}
		return errs
	}
	var kinds []string
	if urlHasUser(c.URL) {
		kinds = append(kinds, "a user in nats_url")
	}
	for _, name := range []string{"nats_token", "nats_token_file", "nats_nkey_seed_file", "nats_creds_file"} {
		if set[name] != "" {
			kinds = append(kinds, name)
		}
	}
	if len(kinds) > 1 {
		bad("NATS credentials: set only one of %s", strings.Join(kinds, ", "))
	}
	for _, name := range []string{"nats_token_file", "nats_nkey_seed_file", "nats_creds_file", "nats_ca_file", "nats_cert_file", "nats_key_file"} {
		if f := set[name]; f != "" {
			if _, err := os.Stat(f); err != nil {
				bad("%s: %w", name, err)
			}
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("nats_cert_file and nats_key_file go together")
	}
	if len(kinds) == 0 && c.CertFile == "" && !dev && !c.Insecure {
		bad("nats_url %s carries no credentials: anyone who reaches that NATS could read and forge async events and replace artifacts; set nats_token, nats_token_file, nats_nkey_seed_file, nats_creds_file, a user:password in the URL or a client certificate (nats_cert_file), or nats_insecure = true to run without", RedactURL(c.URL))
	}
	return errs
}

// HasCredentials reports whether the external NATS connection presents
// credentials of any kind (a user in the URL, a token, an NKey, a .creds
// file or a client certificate).
func (c *Config) HasCredentials() bool {
	return urlHasUser(c.URL) || c.Token != "" || c.TokenFile != "" || c.NKeySeedFile != "" || c.CredsFile != "" || c.CertFile != ""
}

// urlHasUser reports whether any of the comma-separated URLs has a user
// part (user:password or a token).
func urlHasUser(urls string) bool {
	for _, s := range strings.Split(urls, ",") {
		if u, err := parseNATSURL(s); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// RedactURL returns the comma-separated NATS URLs with any user part
// replaced, so they can be logged and put in errors.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, s := range parts {
		u, err := parseNATSURL(s)
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		if u.User != nil {
			u.User = url.User("REDACTED")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// parseNATSURL parses one server URL the way nats.go reads it: without a
// scheme, nats:// is assumed.
func parseNATSURL(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	return url.Parse(s)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
