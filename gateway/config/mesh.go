package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ConnectConfig is the `connect { … }` block: the gateway as a
// Connect-native member of Consul's service mesh. With enabled = true the
// gateway fetches a leaf certificate for Service (and one per function URL
// service "<fn>-url") from the Consul agent of the consul block, serves
// function URLs and the Invoke API over mutual TLS on Listen, authorizes
// every request with Consul's intentions against the service the caller
// named, and registers each "<fn>-url" service Connect-native at Listen's
// port. Needs a consul block (in dev mode too).
type ConnectConfig struct {
	// Enabled turns the mesh listener on. Default false.
	Enabled bool `hcl:"enabled,optional"`
	// Listen is the mesh listener's address. Default ":9443".
	Listen string `hcl:"listen,optional"`
	// Service is the gateway's own mesh identity: callers of the Invoke
	// API over the mesh need an intention to it. Default "nimbus-gateway".
	Service string `hcl:"service,optional"`
	// Advertise is the host:port registered for the "<fn>-url" services.
	// Default: the consul advertise host (else the agent's address, as for
	// the plain listener) with Listen's bound port.
	Advertise string `hcl:"advertise,optional"`
	// PlainURLs lets a cluster gateway keep serving function URLs on its
	// plain (non-mesh) listener. With connect on, the plain listener
	// refuses function-URL requests (403 in the URL error shape), since
	// there no intention is checked: function URLs are then reached over
	// the mesh or, when a tls block opens it, over HTTPS. The Invoke API,
	// health, metrics and artifacts stay on the plain listener either way.
	// `nimbus dev` always serves URLs on its listener. Default false.
	PlainURLs bool `hcl:"plain_urls,optional"`
}

// TLSConfig is the `tls { … }` block: an HTTPS listener outside the mesh
// serving what the plain listener serves. The certificate and key files
// are read again whenever either changes on disk (checked at each
// handshake), so a renewed certificate needs no restart; a pair that does
// not load (half written, mismatched) leaves the previous one in use.
type TLSConfig struct {
	// Listen is the HTTPS listener's address. Required.
	Listen string `hcl:"listen"`
	// CertFile and KeyFile are PEM files (the certificate may carry its
	// chain). Required.
	CertFile string `hcl:"cert_file"`
	KeyFile  string `hcl:"key_file"`
}

// ConnectEnabled reports whether the mesh listener is on.
func (c *Config) ConnectEnabled() bool { return c.Connect != nil && c.Connect.Enabled }

func (c *Config) meshDefaults() {
	if c.Connect != nil && c.Connect.Enabled {
		if c.Connect.Listen == "" {
			c.Connect.Listen = ":9443"
		}
		if c.Connect.Service == "" {
			c.Connect.Service = "nimbus-gateway"
		}
	}
}

// validateMesh checks the connect and tls blocks (after Defaults).
func (c *Config) validateMesh() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if k := c.Connect; k != nil {
		switch {
		case !k.Enabled && (k.Listen != "" || k.Service != "" || k.Advertise != "" || k.PlainURLs):
			bad("connect: listen, service, advertise and plain_urls apply only with enabled = true")
		case k.Enabled:
			if _, _, err := net.SplitHostPort(k.Listen); err != nil {
				bad("connect listen %q: %w", k.Listen, err)
			}
			if !domainPattern.MatchString(strings.ToLower(k.Service)) || strings.Contains(k.Service, ".") {
				bad("connect service %q is not a DNS label", k.Service)
			}
			if k.Advertise != "" {
				if _, p, err := net.SplitHostPort(k.Advertise); err != nil || p == "0" || p == "" {
					bad("connect advertise %q must be host:port", k.Advertise)
				}
			}
			if c.Consul == nil {
				bad("connect needs a consul block: the leaf certificates and intentions come from the consul agent")
			}
		}
	}
	if t := c.TLS; t != nil {
		if _, _, err := net.SplitHostPort(t.Listen); err != nil {
			bad("tls listen %q: %w", t.Listen, err)
		}
		if t.CertFile == "" || t.KeyFile == "" {
			bad("tls needs cert_file and key_file")
		} else if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			bad("tls cert_file/key_file: %w", err)
		}
		if c.Connect != nil && c.Connect.Enabled && sameFixedAddr(t.Listen, c.Connect.Listen) {
			bad("tls listen and connect listen are both %q", t.Listen)
		}
	}
	if t := c.TLS; t != nil && sameFixedAddr(t.Listen, c.Listen) {
		errs = append(errs, errors.New("tls listen is the plain listen address"))
	}
	if k := c.Connect; k != nil && k.Enabled && sameFixedAddr(k.Listen, c.Listen) {
		errs = append(errs, errors.New("connect listen is the plain listen address"))
	}
	return errs
}

// sameFixedAddr reports whether two listen addresses are one fixed address
// (":0" picks a free port each time, so two of them never collide).
func sameFixedAddr(a, b string) bool {
	_, port, err := net.SplitHostPort(a)
	return err == nil && port != "0" && a == b
}
