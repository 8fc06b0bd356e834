package oci

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
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
// zero value is anonymous HTTPS (plain HTTP for loopback registries). It is
// also an authn.Keychain, for go-containerregistry calls of others (nimbus
// build --push).
type Auth struct {
	// Credentials are tried first, by registry host.
	Credentials []Credential `json:"credentials,omitempty"`
	// ConfigFile is a docker-style config.json ({"auths": {"host":
	// {"auth": base64("user:pass")}}}, also "username"/"password",
	// "identitytoken", "registrytoken"), read at each pull or resolve, so a
	// `docker login` takes effect at once. A registry the file hands to a
	// credential helper ("credHelpers", "credsStore") is refused with an
	// error naming the helper, which Nimbus does not run.
	ConfigFile string `json:"config_file,omitempty"`
	// ConfigFileOptional makes a missing ConfigFile mean anonymous access
	// instead of an error (the user's docker config, which may not exist
	// yet; see DockerConfig).
	ConfigFileOptional bool `json:"config_file_optional,omitempty"`
	// InsecureRegistries are registry hosts reached over plain HTTP.
	// Loopback registries (localhost, 127.0.0.0/8, ::1) always are.
	InsecureRegistries []string `json:"insecure_registries,omitempty"`
}

var _ authn.Keychain = Auth{}

// DockerConfig is the Auth of the docker-style config that getenv points
// at: $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json, which
// need not exist (then access is anonymous). Without either variable it is
// anonymous.
func DockerConfig(getenv func(string) string) Auth {
	dir := getenv("DOCKER_CONFIG")
	if dir == "" {
		if home := getenv("HOME"); home != "" {
			dir = filepath.Join(home, ".docker")
		}
	}
	if dir == "" {
		return Auth{}
	}
	return Auth{ConfigFile: filepath.Join(dir, "config.json"), ConfigFileOptional: true}
}

// Validate reports a credential that names no registry or carries both a
// password and a token, or neither, and a config file that cannot be read.
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

// insecure reports whether registry host reg (host or host:port) is
// reached over plain HTTP: loopback registries always, others only when
// listed in InsecureRegistries (by host or host:port).
func (a Auth) insecure(reg string) bool {
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
	for _, r := range a.InsecureRegistries {
		if r == reg || r == host {
			return true
		}
	}
	return false
}

// Resolve implements authn.Keychain: the credentials for res's registry.
func (a Auth) Resolve(res authn.Resource) (authn.Authenticator, error) {
	return a.authenticator(res.RegistryStr())
}

// parse parses ref with the scheme a allows for its registry; unless
// strict it takes the short forms docker accepts ("alpine:3", "team/fn").
func (a Auth) parse(ref string, strict bool) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil && !strict {
		r, err = name.ParseReference(ref)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidReference, ref, err)
	}
	if a.insecure(r.Context().RegistryStr()) {
		if r, err = name.ParseReference(r.String(), name.Insecure); err != nil {
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
	if a.ConfigFile == "" {
		return authn.Anonymous, nil
	}
	dc, err := a.readConfigFile()
	if err != nil {
		return nil, err
	}
	for host, e := range dc.auths {
		if sameRegistry(host, reg) {
			return authn.FromConfig(e), nil
		}
	}
	if h := dc.credHelpers[reg]; h != "" {
		return nil, fmt.Errorf("registry credentials %s: registry %s uses credential helper %q, which Nimbus does not run; add an auths entry (docker login writes one when no helper is set)", a.ConfigFile, reg, h)
	}
	if dc.credsStore != "" {
		return nil, fmt.Errorf("registry credentials %s: credentials are kept in credential store %q, which Nimbus does not run; add an auths entry for %s", a.ConfigFile, dc.credsStore, reg)
	}
	return authn.Anonymous, nil
}

// sameRegistry compares a configured registry name (possibly a URL, as
// docker writes "https://index.docker.io/v1/") with a reference's host,
// Docker Hub's historical names included.
func sameRegistry(configured, reg string) bool {
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

// dockerConfigFile is the part of a docker-style config.json Nimbus reads.
type dockerConfigFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// dockerConfig is a decoded config file: per-host auth and the helpers
// it names.
type dockerConfig struct {
	auths       map[string]authn.AuthConfig
	credsStore  string
	credHelpers map[string]string
}

// readConfigFile decodes the docker-style config file; a missing optional
// file is an empty one.
func (a Auth) readConfigFile() (dockerConfig, error) {
	b, err := os.ReadFile(a.ConfigFile)
	if a.ConfigFileOptional && errors.Is(err, fs.ErrNotExist) {
		return dockerConfig{}, nil
	}
	if err != nil {
		return dockerConfig{}, fmt.Errorf("registry credentials: %w", err)
	}
	var f dockerConfigFile
	if err := json.Unmarshal(b, &f); err != nil {
		return dockerConfig{}, fmt.Errorf("registry credentials %s: %w", a.ConfigFile, err)
	}
	out := dockerConfig{auths: make(map[string]authn.AuthConfig, len(f.Auths)), credsStore: f.CredsStore, credHelpers: f.CredHelpers}
	for host, e := range f.Auths {
		ac := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return dockerConfig{}, fmt.Errorf("registry credentials %s: auths[%q].auth is not base64", a.ConfigFile, host)
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return dockerConfig{}, fmt.Errorf("registry credentials %s: auths[%q].auth is not user:password", a.ConfigFile, host)
			}
			ac.Username, ac.Password = u, p
		}
		out.auths[host] = ac
	}
	return out, nil
}
