package nomadplugin

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nimbus-fn/nimbus/driver/instance"
)

// The environment Nomad gives a task whose service is Connect-native
// (`connect { native = true }`): how to reach the local Consul agent and,
// with ACLs, the task's service identity token. Nomad writes the TLS files
// into the task's secrets dir and names them as the task sees its own
// directory ("/secrets/…"); the bridge-mode agent socket is under the
// alloc dir ("unix:///alloc/tmp/consul_http.sock").
const (
	envConsulAddr          = "CONSUL_HTTP_ADDR"
	envConsulToken         = "CONSUL_HTTP_TOKEN"
	envConsulSSL           = "CONSUL_HTTP_SSL"
	envConsulSSLVerify     = "CONSUL_HTTP_SSL_VERIFY"
	envConsulCACert        = "CONSUL_CACERT"
	envConsulClientCert    = "CONSUL_CLIENT_CERT"
	envConsulClientKey     = "CONSUL_CLIENT_KEY"
	envConsulTLSServerName = "CONSUL_TLS_SERVER_NAME"
)

// connectNative builds the instance's mesh config for service from the
// task environment, and returns the environment without the agent's
// credentials: they are the instance's, not the function's, whose code
// could otherwise fetch the service's leaf and speak as the instance.
func connectNative(allocDir, taskDir, service string, env map[string]string) (*instance.MeshConfig, map[string]string, error) {
	addr := env[envConsulAddr]
	if addr == "" {
		return nil, nil, errors.New("connect_service is set but the task has no CONSUL_HTTP_ADDR: the job's service must say connect { native = true } and the Nomad client must have a consul block")
	}
	if rest, ok := strings.CutPrefix(addr, "unix:///alloc/"); ok {
		addr = "unix://" + filepath.Join(allocDir, "alloc", rest)
	}
	m := &instance.MeshConfig{
		Service:            service,
		Address:            addr,
		Token:              strings.TrimSpace(env[envConsulToken]),
		SSL:                isTrue(env[envConsulSSL]),
		TLSServerName:      env[envConsulTLSServerName],
		InsecureSkipVerify: env[envConsulSSLVerify] != "" && !isTrue(env[envConsulSSLVerify]),
	}
	for _, f := range []struct {
		dst *string
		key string
	}{{&m.CAFile, envConsulCACert}, {&m.CertFile, envConsulClientCert}, {&m.KeyFile, envConsulClientKey}} {
		p, err := taskPath(taskDir, env[f.key])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.key, err)
		}
		*f.dst = p
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		switch k {
		case envConsulToken, envConsulClientKey, envConsulClientCert, envConsulCACert:
			continue
		}
		out[k] = v
	}
	return m, out, nil
}

// taskPath maps a path as the task sees it ("/secrets/x", inside its
// directory) onto the host; other absolute paths are host paths already.
func taskPath(taskDir, p string) (string, error) {
	switch {
	case p == "":
		return "", nil
	case strings.HasPrefix(p, "/secrets/"), strings.HasPrefix(p, "/local/"):
		return within(taskDir, strings.TrimPrefix(p, "/"))
	case filepath.IsAbs(p):
		return p, nil
	default:
		return within(taskDir, p)
	}
}

func isTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "yes":
		return true
	}
	return false
}
