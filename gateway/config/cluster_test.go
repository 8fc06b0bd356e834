package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/config"
)

const clusterBase = `
invoke_key = "0123456789abcdef0123"
access_key "AKID1" {
  secret = "s1"
}
`

func loadCluster(t *testing.T, extra string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.hcl")
	if err := os.WriteFile(path, []byte(clusterBase+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClusterSettingsFromFileAndEnvironment(t *testing.T) {
	c := loadCluster(t, `
discovery  = "nomad"
gateway_id = "gw-a"
nomad {
  address   = "https://nomad.service.consul:4646"
  namespace = "functions"
}
consul {
  token          = "file-token"
  advertise      = "10.0.0.5:9000"
  check_interval = "3s"
  register       = false
  tags           = ["edge"]
}
`)
	env := map[string]string{
		"NOMAD_ADDR": "http://ignored:4646", "NOMAD_TOKEN": "nomad-env-token", "NOMAD_REGION": "eu",
		"NOMAD_NAMESPACE": "ignored", "CONSUL_HTTP_ADDR": "10.0.0.1:8500", "CONSUL_HTTP_TOKEN": "ignored",
	}
	c.Environment(func(k string) string { return env[k] })
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	n, s := c.Nomad, c.Consul
	// The file wins; the environment fills only what it left empty.
	if n.Address != "https://nomad.service.consul:4646" || n.Namespace != "functions" || n.Token != "nomad-env-token" ||
		n.Region != "eu" || n.JobPrefix != "nimbus-" {
		t.Errorf("nomad settings %+v", n)
	}
	if s.Address != "10.0.0.1:8500" || s.Token != "file-token" || s.Advertise != "10.0.0.5:9000" || s.CheckIntervalD != 3*time.Second ||
		s.Registers() || s.ServiceName != "nimbus-gateway" || len(s.Tags) != 1 {
		t.Errorf("consul settings %+v", s)
	}
	if c.Discovery != config.DiscoveryNomad || c.GatewayID != "gw-a" {
		t.Errorf("discovery %q, gateway id %q", c.Discovery, c.GatewayID)
	}
}

func TestClusterDefaultsWithoutEnvironment(t *testing.T) {
	c := loadCluster(t, "")
	c.Environment(func(string) string { return "" })
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Discovery != config.DiscoveryConsul || c.Nomad.Address != "http://127.0.0.1:4646" || c.Consul.Address != "127.0.0.1:8500" ||
		!c.Consul.Registers() || c.Consul.CheckIntervalD != 10*time.Second || c.Nomad.Token != "" || c.Consul.Token != "" {
		t.Fatalf("defaults: discovery %q nomad %+v consul %+v", c.Discovery, c.Nomad, c.Consul)
	}
}

func TestClusterValidation(t *testing.T) {
	c := loadCluster(t, `
discovery = "etcd"
nomad {
  address = "127.0.0.1:4646"
}
consul {
  service_name   = "nimbus.gateway"
  advertise      = "10.0.0.5"
  check_interval = "500ms"
}
`)
	c.Defaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid cluster settings accepted")
	}
	for _, want := range []string{`discovery "etcd"`, `nomad address "127.0.0.1:4646"`, `service_name "nimbus.gateway"`,
		`consul advertise "10.0.0.5"`, "check_interval 500ms is below 1s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}

	// Dev mode does not use the cluster settings, so it does not check them.
	dev := loadCluster(t, "dev = true\ndiscovery = \"etcd\"\n")
	dev.Defaults()
	if err := dev.Validate(); err != nil {
		t.Fatalf("dev mode: %v", err)
	}
}

// The consul block's token comes from token, token_file or, when the file
// sets neither, CONSUL_HTTP_TOKEN_FILE before CONSUL_HTTP_TOKEN (as
// consul/api ranks them); a token file must hold a token.
func TestClusterConsulTokenFile(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "consul.token")
	if err := os.WriteFile(tokFile, []byte("  file-secret\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "env.token")
	if err := os.WriteFile(envFile, []byte("env-file-secret"), 0o400); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty.token")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, block string
		env         map[string]string
		want        string
	}{
		{"token_file in the file", fmt.Sprintf("consul {\n  token_file = %q\n}\n", tokFile),
			map[string]string{"CONSUL_HTTP_TOKEN": "env-token", "CONSUL_HTTP_TOKEN_FILE": envFile}, "file-secret"},
		{"token in the file", "consul {\n  token = \"file-token\"\n}\n",
			map[string]string{"CONSUL_HTTP_TOKEN_FILE": envFile}, "file-token"},
		{"token file from the environment", "",
			map[string]string{"CONSUL_HTTP_TOKEN": "env-token", "CONSUL_HTTP_TOKEN_FILE": envFile}, "env-file-secret"},
		{"token from the environment", "", map[string]string{"CONSUL_HTTP_TOKEN": "env-token"}, "env-token"},
		{"no token", "", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := loadCluster(t, c.block)
			cfg.Environment(func(k string) string { return c.env[k] })
			cfg.Defaults()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if got, err := cfg.Consul.ReadToken(); err != nil || got != c.want {
				t.Fatalf("token %q, %v; want %q", got, err, c.want)
			}
		})
	}
	for _, c := range []struct{ name, block, want string }{
		{"both", fmt.Sprintf("consul {\n  token = \"t\"\n  token_file = %q\n}\n", tokFile), "token and token_file are both set"},
		{"missing", fmt.Sprintf("consul {\n  token_file = %q\n}\n", filepath.Join(dir, "none")), "consul token_file"},
		{"empty", fmt.Sprintf("consul {\n  token_file = %q\n}\n", emptyFile), "is empty"},
	} {
		t.Run("refuses "+c.name, func(t *testing.T) {
			cfg := loadCluster(t, c.block)
			cfg.Environment(func(string) string { return "" })
			cfg.Defaults()
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

// A gateway run by Nomad reaches the agent through its task's Task API
// socket; a relative socket path or a unix URL with a host is refused.
func TestClusterNomadUnixSocket(t *testing.T) {
	for addr, ok := range map[string]bool{
		"unix:///alloc/secrets/api.sock": true,
		"unix://secrets/api.sock":        false,
		"unix:relative/api.sock":         false,
		"ftp://127.0.0.1:4646":           false,
	} {
		c := loadCluster(t, fmt.Sprintf("nomad {\n  address = %q\n}\n", addr))
		c.Defaults()
		err := c.Validate()
		if ok && err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "nomad address")) {
			t.Errorf("%s: error %v, want the nomad address refused", addr, err)
		}
	}
}
