package oci

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Credential authenticates to one registry: Username and Password, or Token
// (an identity/refresh token the registry's token service accepts, or a
// registry bearer token).
type Credential struct {
	// Registry is the registry host (with port when not 443), e.g.
	// "registry.example:5000"; "docker.io" names Docker Hub.
	Registry string `json:"registry"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

// Auth is how a Store or Resolve authenticates and reaches registries. The
// zero value is anonymous HTTPS (plain HTTP for loopback registries).
type Auth struct {
	// Credentials are tried first, by registry host.
	Credentials []Credential `json:"credentials,omitempty"`
	// ConfigFile is a docker-style config.json ({"auths": {"host":
	// {"auth": base64("user:pass")}}}, also "username"/"password",
	// "identitytoken", "registrytoken"), read at each pull.
	ConfigFile string `json:"config_file,omitempty"`
	// InsecureRegistries are registry hosts reached over plain HTTP.
	// Loopback registries (localhost, 127.0.0.0/8, ::1) always are.
	InsecureRegistries []string `json:"insecure_registries,omitempty"`
}

// Validate reports a credential that names no registry or carries both a
// password and a token, or neither.
func (a Auth) Validate() error {
	for i, c := range a.Credentials {
		switch {
		case c.Registry == "":
			return fmt.Errorf("registry_auth[%d]: registry is required", i)
		case c.Token != "" && (c.Username != "" || c.Password != ""):
			return fmt.Errorf("registry_auth[%d] (%s): set username/password or token, not both", i, c.Registry)
		case c.Token == "" && (c.Username == "" || c.Password == ""):
			return fmt.Errorf("registry_auth[%d] (%s): username and password (or token) are required", i, c.Registry)
		}
	}
	for _, r := range a.InsecureRegistries {
		if r == "" || strings.ContainsAny(r, "/ ") {
			return fmt.Errorf("insecure_registries: %q is not a registry host", r)
		}
	}
	if a.ConfigFile != "" {
		if _, err := a.readConfigFile(); err != nil {
			return err
		}
	}
	return nil
}

// insecure reports whether registry host reg is reached over plain HTTP.
func (a Auth) insecure(reg string) bool { return PlainHTTP(reg, a.InsecureRegistries) }

// PlainHTTP reports whether registry host reg (host or host:port) is
// reached over plain HTTP: loopback registries always, others only when
// listed in insecure (by host or host:port).
func PlainHTTP(reg string, insecure []string) bool {
	host := reg
	if h, _, err := net.SplitHostPort(reg); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, r := range insecure {
		if r == reg || r == host {
			return true
		}
	}
	return false
}

// parse parses ref with the scheme auth allows for its registry.
func (a Auth) parse(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		// Allow the short forms ("alpine:3", "team/fn:v1") docker accepts.
		if r, err = name.ParseReference(ref); err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrInvalidReference, ref, err)
		}
	}
	if a.insecure(r.Context().RegistryStr()) {
		r, err = name.ParseReference(r.String(), name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrInvalidReference, ref, err)
		}
	}
	return r, nil
}

// authenticator returns the credentials for registry host reg.
func (a Auth) authenticator(reg string) (authn.Authenticator, error) {
	for _, c := range a.Credentials {
		if sameRegistry(c.Registry, reg) {
			if c.Token != "" {
				return authn.FromConfig(authn.AuthConfig{IdentityToken: c.Token, RegistryToken: c.Token}), nil
			}
			return &authn.Basic{Username: c.Username, Password: c.Password}, nil
		}
	}
	if a.ConfigFile != "" {
		auths, err := a.readConfigFile()
		if err != nil {
			return nil, err
		}
		for host, e := range auths {
			if sameRegistry(host, reg) {
				return authn.FromConfig(e), nil
			}
		}
	}
	return authn.Anonymous, nil
}

func sameRegistry(configured, reg string) bool { return SameRegistry(configured, reg) }

// SameRegistry compares a configured registry name (possibly a URL, as
// docker writes "https://index.docker.io/v1/") with a reference's host.
func SameRegistry(configured, reg string) bool {
	c := strings.TrimPrefix(strings.TrimPrefix(configured, "https://"), "http://")
	c, _, _ = strings.Cut(c, "/")
	norm := func(s string) string {
		switch s {
		case "docker.io", "index.docker.io", "registry-1.docker.io":
			return name.DefaultRegistry
		}
		return s
	}
	return norm(c) == norm(reg)
}

type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	} `json:"auths"`
}

// readConfigFile decodes the docker-style config file into per-host auth.
func (a Auth) readConfigFile() (map[string]authn.AuthConfig, error) {
	b, err := os.ReadFile(a.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("registry_auth_file: %w", err)
	}
	var dc dockerConfig
	if err := json.Unmarshal(b, &dc); err != nil {
		return nil, fmt.Errorf("registry_auth_file %s: %w", a.ConfigFile, err)
	}
	out := make(map[string]authn.AuthConfig, len(dc.Auths))
	for host, e := range dc.Auths {
		ac := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("registry_auth_file %s: auths[%q].auth is not base64", a.ConfigFile, host)
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("registry_auth_file %s: auths[%q].auth is not user:password", a.ConfigFile, host)
			}
			ac.Username, ac.Password = u, p
		}
		out[host] = ac
	}
	return out, nil
}
