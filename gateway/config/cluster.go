package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Discovery sources (Config.Discovery).
const (
	DiscoveryConsul = "consul"
	DiscoveryNomad  = "nomad"
)

// NomadConfig is the `nomad { … }` block: the Nomad API the cluster
// catalog and the on-demand scaler talk to.
type NomadConfig struct {
	// Address of the Nomad HTTP API: an http(s) URL, or unix:///path of a
	// Unix socket such as a Nomad task's Task API
	// (${NOMAD_SECRETS_DIR}/api.sock, which takes the task's workload
	// identity as its token). Default $NOMAD_ADDR, else
	// "http://127.0.0.1:4646".
	Address string `hcl:"address,optional"`
	// Token is the ACL token (read jobs and variables, scale jobs).
	// Default $NOMAD_TOKEN.
	Token string `hcl:"token,optional"`
	// Region and Namespace of the function jobs. Defaults $NOMAD_REGION
	// and $NOMAD_NAMESPACE, else the agent's.
	Region    string `hcl:"region,optional"`
	Namespace string `hcl:"namespace,optional"`
	// JobPrefix selects the function jobs. Default "nimbus-".
	JobPrefix string `hcl:"job_prefix,optional"`
}

// ConsulConfig is the `consul { … }` block: the agent this gateway
// registers with (and discovers instances through, with discovery =
// "consul").
type ConsulConfig struct {
	// Address of the Consul agent's HTTP API (host:port or a URL). Default
	// $CONSUL_HTTP_ADDR, else "127.0.0.1:8500".
	Address string `hcl:"address,optional"`
	// Token is the ACL token. Default $CONSUL_HTTP_TOKEN. Set at most one
	// of Token and TokenFile.
	Token string `hcl:"token,optional"`
	// TokenFile is a file holding the ACL token (read at start; surrounding
	// space is ignored), e.g. a token a Nomad template renders into the
	// task's secrets dir. Default $CONSUL_HTTP_TOKEN_FILE when the file sets
	// no token.
	TokenFile string `hcl:"token_file,optional"`
	// Datacenter to query. Default: the agent's.
	Datacenter string `hcl:"datacenter,optional"`
	// Register announces the gateway (service ServiceName with an HTTP
	// check on its health path) and every function URL ("<fn>-url").
	// Default true.
	Register *bool `hcl:"register,optional"`
	// ServiceName of the gateway. Default "nimbus-gateway".
	ServiceName string `hcl:"service_name,optional"`
	// Advertise is the host:port registered, which Consul's check and
	// other machines dial. Default: the listen address once bound; a
	// wildcard host (0.0.0.0, ::) is replaced by the Consul agent's own
	// advertise address, since the gateway runs beside its agent.
	Advertise string `hcl:"advertise,optional"`
	// Tags are added to the gateway service.
	Tags []string `hcl:"tags,optional"`
	// CheckInterval of the gateway's HTTP check. Default "10s".
	CheckInterval string `hcl:"check_interval,optional"`

	// CheckIntervalD is CheckInterval parsed, filled by Validate.
	CheckIntervalD time.Duration
}

// Environment fills the cluster settings the file left empty from the
// standard variables (NOMAD_ADDR, NOMAD_TOKEN, NOMAD_REGION,
// NOMAD_NAMESPACE, CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN_FILE,
// CONSUL_HTTP_TOKEN), read through getenv. Call it before Defaults.
func (c *Config) Environment(getenv func(string) string) {
	if c.Nomad == nil {
		c.Nomad = &NomadConfig{}
	}
	if c.Consul == nil {
		c.Consul = &ConsulConfig{}
	}
	if getenv == nil {
		return
	}
	from := func(p *string, name string) {
		if *p == "" {
			*p = getenv(name)
		}
	}
	from(&c.Nomad.Address, "NOMAD_ADDR")
	from(&c.Nomad.Token, "NOMAD_TOKEN")
	from(&c.Nomad.Region, "NOMAD_REGION")
	from(&c.Nomad.Namespace, "NOMAD_NAMESPACE")
	from(&c.Consul.Address, "CONSUL_HTTP_ADDR")
	// A token the file gives wins over both variables; otherwise the token
	// file wins over the token, as consul/api ranks them.
	if c.Consul.Token == "" && c.Consul.TokenFile == "" {
		if c.Consul.TokenFile = getenv("CONSUL_HTTP_TOKEN_FILE"); c.Consul.TokenFile == "" {
			c.Consul.Token = getenv("CONSUL_HTTP_TOKEN")
		}
	}
}

// Registers reports whether the gateway registers itself in Consul.
func (c *ConsulConfig) Registers() bool { return c.Register == nil || *c.Register }

func (c *Config) clusterDefaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.Discovery, DiscoveryConsul)
	if c.Nomad == nil {
		c.Nomad = &NomadConfig{}
	}
	set(&c.Nomad.Address, "http://127.0.0.1:4646")
	set(&c.Nomad.JobPrefix, "nimbus-")
	if c.Consul == nil {
		c.Consul = &ConsulConfig{}
	}
	set(&c.Consul.Address, "127.0.0.1:8500")
	set(&c.Consul.ServiceName, "nimbus-gateway")
	set(&c.Consul.CheckInterval, "10s")
}

// validateCluster checks the cluster settings (after Defaults).
func (c *Config) validateCluster() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Discovery {
	case DiscoveryConsul, DiscoveryNomad:
	default:
		bad("discovery %q must be %q or %q", c.Discovery, DiscoveryConsul, DiscoveryNomad)
	}
	if c.Nomad == nil || c.Consul == nil {
		bad("nomad and consul blocks are missing (call Defaults first)")
		return errs
	}
	if u, err := url.Parse(c.Nomad.Address); err != nil || !nomadAddressOK(u) {
		bad("nomad address %q must be an http or https URL, or unix:///path of a socket (the Task API)", c.Nomad.Address)
	}
	if err := c.Consul.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// nomadAddressOK accepts http(s)://host[:port] and unix:///absolute/path
// (a Nomad task's Task API socket, ${NOMAD_SECRETS_DIR}/api.sock).
func nomadAddressOK(u *url.URL) bool {
	switch u.Scheme {
	case "http", "https":
		return u.Host != ""
	case "unix":
		return u.Host == "" && strings.HasPrefix(u.Path, "/")
	}
	return false
}

// Validate checks the consul block (after Defaults) and fills
// CheckIntervalD. The cluster checks it in Config.Validate; `nimbus dev`,
// which registers in Consul only when its config has the block, checks it
// itself.
func (c *ConsulConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Address == "" {
		bad("consul address is empty")
	}
	if c.Token != "" && c.TokenFile != "" {
		bad("consul token and token_file are both set: give one")
	}
	if c.TokenFile != "" {
		if _, err := c.ReadToken(); err != nil {
			errs = append(errs, err)
		}
	}
	if !domainPattern.MatchString(strings.ToLower(c.ServiceName)) || strings.Contains(c.ServiceName, ".") {
		bad("consul service_name %q is not a DNS label", c.ServiceName)
	}
	d, err := time.ParseDuration(c.CheckInterval)
	switch {
	case err != nil:
		bad("consul check_interval %q: %w", c.CheckInterval, err)
	case d < time.Second:
		bad("consul check_interval %s is below 1s (Consul's least interval)", d)
	}
	c.CheckIntervalD = d
	if adv := c.Advertise; adv != "" {
		_, port, err := net.SplitHostPort(adv)
		switch {
		case err != nil:
			bad("consul advertise %q: %w", adv, err)
		case port == "0":
			bad("consul advertise %q needs a port", adv)
		}
	}
	return errors.Join(errs...)
}

// ReadToken is the ACL token: Token, or the contents of TokenFile with
// surrounding space trimmed. A token file that cannot be read or holds
// no token is an error: a configured token that silently became the
// agent's default token would look like a Consul permission problem.
func (c *ConsulConfig) ReadToken() (string, error) {
	if c.TokenFile == "" {
		return c.Token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("consul token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("consul token_file %s is empty", c.TokenFile)
	}
	return tok, nil
}
