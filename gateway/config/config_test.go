package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/queue"
)

func TestLoadDefaultsValidate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.hcl")
	src := `
listen     = "0.0.0.0:8080"
region     = "eu-west-1"
account_id = "123456789012"
invoke_key = "0123456789abcdef0123"
cold_start_wait = "3s"
account_concurrency = 50
unreserved_min = 10
access_key "AKID1" {
  secret = "s1"
}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if c.ColdStartWaitD != 3*time.Second || c.IdleScaleInD != 5*time.Minute || c.WaitQueueSize != 100 ||
		c.URLDomain != "lambda-url.localhost" || c.Keys()["AKID1"] != "s1" || string(c.InvokeKeyBytes) != "0123456789abcdef0123" {
		t.Fatalf("decoded config: %+v", c)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := &config.Config{Listen: "nope", Region: "mars", AccountID: "12", ColdStartWait: "soon",
		AccountConcurrency: 5, UnreservedMin: 10, AccessKeys: []config.AccessKey{{ID: "a", Secret: "x"}, {ID: "a", Secret: "y"}}}
	c.Defaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"listen", "region", "account_id", "cold_start_wait", "unreserved_min", "invoke_key", "declared twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestDevModeNeedsNoKeys(t *testing.T) {
	c := &config.Config{Dev: true}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("dev config: %v", err)
	}
	if c.IdleScaleInD != 30*time.Second {
		t.Fatalf("dev idle scale-in = %s", c.IdleScaleInD)
	}
}

// The client-connection limits have documented defaults, decode from HCL
// and are checked.
func TestConnectionLimits(t *testing.T) {
	c := &config.Config{Dev: true}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ReadHeaderTimeoutD != 10*time.Second || c.ReadBodyTimeoutD != 30*time.Second || c.UploadTimeoutD != 5*time.Minute ||
		c.IdleTimeoutD != 2*time.Minute || c.MaxHeaderBytes != 65536 || c.MaxConnections != 4096 {
		t.Fatalf("defaults: header %s body %s upload %s idle %s max_header_bytes %d max_connections %d",
			c.ReadHeaderTimeoutD, c.ReadBodyTimeoutD, c.UploadTimeoutD, c.IdleTimeoutD, c.MaxHeaderBytes, c.MaxConnections)
	}

	path := filepath.Join(t.TempDir(), "gateway.hcl")
	src := `
dev                 = true
read_header_timeout = "2s"
read_body_timeout   = "750ms"
upload_timeout      = "1m"
idle_timeout        = "20s"
max_header_bytes    = 8192
max_connections     = 300
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ReadHeaderTimeoutD != 2*time.Second || c.ReadBodyTimeoutD != 750*time.Millisecond || c.UploadTimeoutD != time.Minute ||
		c.IdleTimeoutD != 20*time.Second || c.MaxHeaderBytes != 8192 || c.MaxConnections != 300 {
		t.Fatalf("decoded: %+v", c)
	}

	bad := &config.Config{Dev: true, ReadBodyTimeout: "never", IdleTimeout: "1ns", MaxHeaderBytes: 100, MaxConnections: -1}
	bad.Defaults()
	err = bad.Validate()
	for _, want := range []string{"read_body_timeout", "idle_timeout", "max_header_bytes", "max_connections"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

// TestClusterExampleIsValid loads examples/cluster/gateway.hcl, which the
// README shows, with its secret files in place.
func TestClusterExampleIsValid(t *testing.T) {
	example, err := filepath.Abs("../../examples/cluster/gateway.hcl")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if err := os.MkdirAll("secrets", 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"secrets/invoke-key": "0123456789abcdef0123456789abcdef", "secrets/nats.creds": "creds", "secrets/nats-ca.pem": "ca",
	} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := config.Load(example)
	if err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("examples/cluster/gateway.hcl: %v", err)
	}
	if c.Dev || c.Discovery != config.DiscoveryConsul || c.Queue.URL == "" || len(c.AccessKeys) != 1 || len(c.InvokeKeyBytes) == 0 {
		t.Fatalf("example decoded to %+v", c)
	}
}

// concurrency_lease applies only with an external NATS; it defaults there.
func TestConcurrencyLease(t *testing.T) {
	c := &config.Config{Dev: true}
	c.Defaults()
	if err := c.Validate(); err != nil || c.ConcurrencyLeaseD != 0 {
		t.Fatalf("embedded NATS: lease %s, %v", c.ConcurrencyLeaseD, err)
	}
	path := filepath.Join(t.TempDir(), "gateway.hcl")
	src := `
dev               = true
concurrency_lease = "5s"
queue {
  nats_url = "nats://127.0.0.1:4222"
}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil || c.ConcurrencyLeaseD != 5*time.Second {
		t.Fatalf("lease %s, %v", c.ConcurrencyLeaseD, err)
	}
	c = &config.Config{Dev: true}
	c.Defaults()
	c.Queue.URL = "nats://127.0.0.1:4222"
	c.Defaults()
	if err := c.Validate(); err != nil || c.ConcurrencyLeaseD != 30*time.Second {
		t.Fatalf("default lease %s, %v", c.ConcurrencyLeaseD, err)
	}
	for _, bad := range []*config.Config{
		{Dev: true, ConcurrencyLease: "5s"}, // no nats_url
		{Dev: true, ConcurrencyLease: "10ms", Queue: &queue.Config{URL: "nats://127.0.0.1:4222"}},
	} {
		bad.Defaults()
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "concurrency_lease") {
			t.Errorf("lease %q: %v", bad.ConcurrencyLease, err)
		}
	}
	bad := &config.Config{Dev: true, ShareAccountConcurrency: true}
	bad.Defaults()
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "share_account_concurrency") {
		t.Errorf("shared account without nats_url: %v", err)
	}
	good := &config.Config{Dev: true, ShareAccountConcurrency: true, Queue: &queue.Config{URL: "nats://127.0.0.1:4222"}}
	good.Defaults()
	if err := good.Validate(); err != nil {
		t.Errorf("shared account with nats_url: %v", err)
	}
}
