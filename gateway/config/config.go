package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/queue"
)

// Config is the gateway's configuration. HCL attribute names are given in
// the struct tags; "Default:" notes give the value an empty field takes.
type Config struct {
	// Listen is the HTTP address for the Invoke API, function URLs, health
	// and metrics. Default "127.0.0.1:9000".
	Listen string `hcl:"listen,optional"`
	// URLDomain: function URLs answer on <function>.<url_domain>.
	// Default "lambda-url.localhost" (resolves to loopback in most resolvers).
	URLDomain string `hcl:"url_domain,optional"`
	// AccountID is the 12-digit account in ARNs. Default "000000000000".
	AccountID string `hcl:"account_id,optional"`
	// Region in ARNs and the SigV4 scope. Default "us-east-1".
	Region string `hcl:"region,optional"`
	// InvokeKey is the cluster key instances' secrets derive from
	// (invokeapi.DeriveSecret). Required unless Dev. InvokeKeyFile reads it
	// from a file instead.
	InvokeKey     string `hcl:"invoke_key,optional"`
	InvokeKeyFile string `hcl:"invoke_key_file,optional"`
	// AccessKeys are the SigV4 credentials callers may sign with. Required
	// unless Dev (dev mode without keys accepts unsigned requests).
	AccessKeys []AccessKey `hcl:"access_key,block"`
	// AccountConcurrency caps all functions together. Default 1000.
	AccountConcurrency int `hcl:"account_concurrency,optional"`
	// UnreservedMin is the least concurrency kept for functions without a
	// reservation. Default 100.
	UnreservedMin int `hcl:"unreserved_min,optional"`
	// WaitQueueSize bounds the requests one function parks while capacity
	// starts. Default 100.
	WaitQueueSize int `hcl:"wait_queue_size,optional"`
	// ColdStartWait is how long a parked request waits for an environment.
	// Default "10s".
	ColdStartWait string `hcl:"cold_start_wait,optional"`
	// IdleScaleIn is how long on-demand capacity stays idle before it is
	// lowered. Default "5m" ("30s" in dev mode).
	IdleScaleIn string `hcl:"idle_scale_in,optional"`
	// ConcurrencyLease applies with queue nats_url (an external NATS that
	// several gateways share): reserved concurrency then holds across all of
	// them, each admitted invocation holding one of the function's slots in
	// a JetStream KV bucket (gateway/slots). A slot whose gateway died frees
	// itself this long after its last renewal. Refused without nats_url
	// (one gateway counts alone). Default "30s"; at least "1s".
	ConcurrencyLease string `hcl:"concurrency_lease,optional"`
	// ShareAccountConcurrency, with queue nats_url, makes the unreserved
	// pool (account_concurrency less the reservations) hold across the
	// gateways too: every invocation of a function without a reservation
	// then holds a slot in the same bucket, a KV write to take it and one
	// to free it. Off, each gateway admits the whole unreserved pool.
	// Refused without nats_url. Default false.
	ShareAccountConcurrency bool `hcl:"share_account_concurrency,optional"`
	// ShutdownGrace bounds draining in-flight invocations on shutdown.
	// Default "30s".
	ShutdownGrace string `hcl:"shutdown_grace,optional"`

	// Client connections (the HTTP listener). Slow or idle clients cannot
	// hold the gateway's connections, memory or file descriptors.

	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's headers. Default "10s".
	ReadHeaderTimeout string `hcl:"read_header_timeout,optional"`
	// ReadBodyTimeout bounds how long a request body may take to arrive,
	// counted from the end of its headers: a body still incomplete then is
	// refused and its connection closed. Only the request is bounded: the
	// response (a long invocation, a streamed function URL answer) may take
	// as long as the function's timeout. Artifact uploads get
	// UploadTimeout instead. Default "30s".
	ReadBodyTimeout string `hcl:"read_body_timeout,optional"`
	// UploadTimeout is ReadBodyTimeout for artifact uploads (bundles up to
	// artifacts max_bundle_bytes). Default "5m".
	UploadTimeout string `hcl:"upload_timeout,optional"`
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. Default "2m".
	IdleTimeout string `hcl:"idle_timeout,optional"`
	// MaxHeaderBytes bounds a request's header section (request line
	// included). Default 65536.
	MaxHeaderBytes int `hcl:"max_header_bytes,optional"`
	// MaxConnections is the most client connections the gateway holds at
	// once; a connection over it is closed as soon as it is accepted (and
	// counted in nimbus_http_connections_refused_total). Keep it below the
	// process's file descriptor limit, leaving room for instance, NATS,
	// Nomad and Consul connections. Default 4096.
	MaxConnections int `hcl:"max_connections,optional"`
	// Artifacts configures the artifact store (`artifacts { … }`, see
	// artifacts.Config): code and layer bundles by sha256 in a JetStream
	// object store on the gateway's NATS system (the one the async queue
	// uses), served at /nimbus/v1/artifacts/. Default: an empty block.
	Artifacts *artifacts.Config `hcl:"artifacts,block"`
	// KafkaBrokers are the bootstrap servers (host:port[,host:port]) Kafka
	// destinations publish to: async on_success/on_failure/dead_letter and
	// event-source on_failure. Default: none — Kafka destinations are
	// refused, except a kafka event source's on_failure, which publishes to
	// the mapping's own brokers.
	KafkaBrokers string `hcl:"kafka_brokers,optional"`
	// Dev runs the all-in-one dev mode (local catalog and launcher; auth
	// optional). Default false.
	Dev bool `hcl:"dev,optional"`

	// Cluster mode (ignored when Dev is set, but for the consul block:
	// `nimbus dev` with one registers itself and its function URLs there).

	// Discovery is where the gateway finds function instances: "consul"
	// (passing instances in Consul health) or "nomad" (Nomad's native
	// service registrations). Default "consul".
	Discovery string `hcl:"discovery,optional"`
	// GatewayID names this gateway in Nomad scaling events; gateways must
	// not share one. Default "<advertise host>:<port>".
	GatewayID string `hcl:"gateway_id,optional"`
	// Nomad is where function jobs live (`nomad { … }`). Default: an empty
	// block (NOMAD_* environment, then Nomad's defaults).
	Nomad *NomadConfig `hcl:"nomad,block"`
	// Consul is the agent the gateway registers with and, with discovery =
	// "consul", discovers instances through (`consul { … }`). Default: an
	// empty block (CONSUL_HTTP_* environment, then Consul's defaults).
	Consul *ConsulConfig `hcl:"consul,block"`
	// Connect makes the gateway a Connect-native service of Consul's mesh
	// (`connect { … }`, see ConnectConfig). Default: off.
	Connect *ConnectConfig `hcl:"connect,block"`
	// TLS adds an HTTPS listener outside the mesh (`tls { … }`, see
	// TLSConfig). Default: none.
	TLS *TLSConfig `hcl:"tls,block"`
	// Queue configures asynchronous invocation (`queue { … }`, see
	// queue.Config): an embedded NATS JetStream in data_dir, or nats_url.
	// Default: an empty block.
	Queue *queue.Config `hcl:"queue,block"`

	// Parsed forms, filled by Validate.
	ColdStartWaitD time.Duration
	IdleScaleInD   time.Duration
	// ConcurrencyLeaseD is zero without queue nats_url.
	ConcurrencyLeaseD  time.Duration
	ShutdownGraceD     time.Duration
	ReadHeaderTimeoutD time.Duration
	ReadBodyTimeoutD   time.Duration
	UploadTimeoutD     time.Duration
	IdleTimeoutD       time.Duration
	InvokeKeyBytes     []byte
}

// AccessKey is one `access_key "AKID" { secret = "…" }` block.
type AccessKey struct {
	ID     string `hcl:"id,label"`
	Secret string `hcl:"secret"`
	// Scope is what the key may do: "admin" (default: invoke and manage
	// functions, mappings and bundles) or "invoke" (invoke functions and
	// read async invocation status only).
	Scope string `hcl:"scope,optional"`
}

// Access key scopes.
const (
	ScopeAdmin  = "admin"
	ScopeInvoke = "invoke"
)

// IsAdmin reports whether the access key may manage (an unknown key may
// not).
func (c *Config) IsAdmin(id string) bool {
	for _, k := range c.AccessKeys {
		if k.ID == id {
			return k.Scope == "" || k.Scope == ScopeAdmin
		}
	}
	return false
}

// Keys returns access key id → secret.
func (c *Config) Keys() map[string]string {
	m := make(map[string]string, len(c.AccessKeys))
	for _, k := range c.AccessKeys {
		m[k.ID] = k.Secret
	}
	return m
}

// Load decodes an HCL file (an empty path yields an empty config).
func Load(path string) (*Config, error) {
	c := &Config{}
	if path == "" {
		return c, nil
	}
	p := hclparse.NewParser()
	f, diags := p.ParseHCLFile(path)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parsing gateway config: %w", diags)
	}
	if diags := gohcl.DecodeBody(f.Body, nil, c); diags.HasErrors() {
		return nil, fmt.Errorf("decoding gateway config: %w", hcl.Diagnostics(diags))
	}
	return c, nil
}

// Defaults fills empty fields.
func (c *Config) Defaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.Listen, "127.0.0.1:9000")
	set(&c.URLDomain, "lambda-url.localhost")
	set(&c.AccountID, "000000000000")
	set(&c.Region, "us-east-1")
	set(&c.ColdStartWait, "10s")
	if c.Dev {
		set(&c.IdleScaleIn, "30s")
	} else {
		set(&c.IdleScaleIn, "5m")
	}
	set(&c.ShutdownGrace, "30s")
	set(&c.ReadHeaderTimeout, "10s")
	set(&c.ReadBodyTimeout, "30s")
	set(&c.UploadTimeout, "5m")
	set(&c.IdleTimeout, "2m")
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 4096
	}
	if c.Artifacts == nil {
		c.Artifacts = &artifacts.Config{}
	}
	c.Artifacts.Defaults()
	if c.AccountConcurrency == 0 {
		c.AccountConcurrency = 1000
	}
	if c.UnreservedMin == 0 {
		c.UnreservedMin = 100
	}
	if c.WaitQueueSize == 0 {
		c.WaitQueueSize = 100
	}
	if c.Queue == nil {
		c.Queue = &queue.Config{}
	}
	c.Queue.Defaults()
	if c.Queue.URL != "" {
		set(&c.ConcurrencyLease, "30s")
	}
	c.clusterDefaults()
	c.meshDefaults()
}

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`)
	domainPattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
)

// Validate checks every field (after Defaults) and fills the parsed forms.
// All problems are reported together.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen %q: %w", c.Listen, err)
	}
	if !domainPattern.MatchString(c.URLDomain) {
		bad("url_domain %q is not a DNS name", c.URLDomain)
	}
	if !accountPattern.MatchString(c.AccountID) {
		bad("account_id %q must be 12 digits", c.AccountID)
	}
	if !regionPattern.MatchString(c.Region) {
		bad("region %q is not a region name like us-east-1", c.Region)
	}
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
	c.ColdStartWaitD = dur("cold_start_wait", c.ColdStartWait, 10*time.Millisecond)
	c.IdleScaleInD = dur("idle_scale_in", c.IdleScaleIn, 10*time.Millisecond)
	c.ShutdownGraceD = dur("shutdown_grace", c.ShutdownGrace, 0)
	switch {
	case c.ConcurrencyLease != "" && (c.Queue == nil || c.Queue.URL == ""):
		bad("concurrency_lease %q needs queue nats_url: reserved concurrency is shared only between gateways on one external NATS", c.ConcurrencyLease)
	case c.ConcurrencyLease != "":
		c.ConcurrencyLeaseD = dur("concurrency_lease", c.ConcurrencyLease, time.Second)
	}
	if c.ShareAccountConcurrency && (c.Queue == nil || c.Queue.URL == "") {
		bad("share_account_concurrency needs queue nats_url: concurrency is shared only between gateways on one external NATS")
	}
	c.ReadHeaderTimeoutD = dur("read_header_timeout", c.ReadHeaderTimeout, 10*time.Millisecond)
	c.ReadBodyTimeoutD = dur("read_body_timeout", c.ReadBodyTimeout, 10*time.Millisecond)
	c.UploadTimeoutD = dur("upload_timeout", c.UploadTimeout, 10*time.Millisecond)
	c.IdleTimeoutD = dur("idle_timeout", c.IdleTimeout, 10*time.Millisecond)
	if c.MaxHeaderBytes < 4096 {
		bad("max_header_bytes %d must be at least 4096", c.MaxHeaderBytes)
	}
	if c.MaxConnections < 1 {
		bad("max_connections %d must be at least 1", c.MaxConnections)
	}
	if c.AccountConcurrency < 1 {
		bad("account_concurrency %d must be at least 1", c.AccountConcurrency)
	}
	if c.UnreservedMin < 0 || c.UnreservedMin > c.AccountConcurrency {
		bad("unreserved_min %d must be between 0 and account_concurrency (%d)", c.UnreservedMin, c.AccountConcurrency)
	}
	if c.WaitQueueSize < 1 {
		bad("wait_queue_size %d must be at least 1", c.WaitQueueSize)
	}
	if c.Artifacts != nil {
		if err := c.Artifacts.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.InvokeKey != "" && c.InvokeKeyFile != "" {
		bad("set invoke_key or invoke_key_file, not both")
	}
	key := c.InvokeKey
	if c.InvokeKeyFile != "" {
		b, err := os.ReadFile(c.InvokeKeyFile)
		if err != nil {
			bad("invoke_key_file: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key != "" && len(key) < 16 {
		bad("invoke key must be at least 16 characters")
	}
	if key == "" && !c.Dev {
		bad("invoke_key (or invoke_key_file) is required outside dev mode")
	}
	c.InvokeKeyBytes = []byte(key)
	if len(c.AccessKeys) == 0 && !c.Dev {
		bad("at least one access_key block is required outside dev mode (SigV4 authentication)")
	}
	seen := map[string]bool{}
	for _, k := range c.AccessKeys {
		if k.ID == "" || k.Secret == "" {
			bad("access_key %q needs an id and a secret", k.ID)
		}
		if seen[k.ID] {
			bad("access_key %q is declared twice", k.ID)
		}
		if k.Scope != "" && k.Scope != ScopeAdmin && k.Scope != ScopeInvoke {
			bad("access_key %q: scope %q is not %q or %q", k.ID, k.Scope, ScopeAdmin, ScopeInvoke)
		}
		seen[k.ID] = true
	}
	if c.Queue != nil {
		if err := c.Queue.Validate(c.Dev); err != nil {
			errs = append(errs, err)
		}
	}
	if !c.Dev {
		errs = append(errs, c.validateCluster()...)
	}
	errs = append(errs, c.validateMesh()...)
	return errors.Join(errs...)
}
