package images

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/nimbus-fn/nimbus/driver/oci"
)

// DockerConfig is a keychain reading the docker-style config.json that
// getenv points at: $DOCKER_CONFIG/config.json, else
// $HOME/.docker/config.json. A missing file means anonymous access. The
// file is read at each Resolve, so a `docker login` takes effect at once.
func DockerConfig(getenv func(string) string) authn.Keychain {
	dir := getenv("DOCKER_CONFIG")
	if dir == "" {
		if home := getenv("HOME"); home != "" {
			dir = filepath.Join(home, ".docker")
		}
	}
	if dir == "" {
		return authn.NewMultiKeychain() // anonymous
	}
	return dockerConfig{path: filepath.Join(dir, "config.json")}
}

type dockerConfig struct{ path string }

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

// Resolve implements authn.Keychain.
func (d dockerConfig) Resolve(res authn.Resource) (authn.Authenticator, error) {
	raw, err := os.ReadFile(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return authn.Anonymous, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials: %w", err)
	}
	var f dockerConfigFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("reading registry credentials from %s: %w", d.path, err)
	}
	reg := res.RegistryStr()
	for key, a := range f.Auths {
		if !sameRegistry(key, reg) {
			continue
		}
		cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("%s: the auth of %s is not base64", d.path, key)
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("%s: the auth of %s is not user:password", d.path, key)
			}
			cfg.Username, cfg.Password = user, pass
		}
		return authn.FromConfig(cfg), nil
	}
	if h := f.CredHelpers[reg]; h != "" {
		return nil, fmt.Errorf("%s: registry %s uses credential helper %q, which Nimbus does not run; add an auths entry (docker login writes one when no helper is set)", d.path, reg, h)
	}
	if f.CredsStore != "" {
		return nil, fmt.Errorf("%s: credentials are kept in credential store %q, which Nimbus does not run; add an auths entry for %s", d.path, f.CredsStore, reg)
	}
	return authn.Anonymous, nil
}

// sameRegistry matches a config key ("host", "https://host/v1/") with a
// registry host, Docker Hub's historical keys included.
func sameRegistry(key, reg string) bool { return oci.SameRegistry(key, reg) }
