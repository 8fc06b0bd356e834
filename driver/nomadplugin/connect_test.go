package nomadplugin

import (
	"strings"
	"testing"
)

func TestConnectNativeEnv(t *testing.T) {
	env := map[string]string{
		"CONSUL_HTTP_ADDR":       "127.0.0.1:8501",
		"CONSUL_HTTP_TOKEN":      " si-token\n",
		"CONSUL_HTTP_SSL":        "true",
		"CONSUL_HTTP_SSL_VERIFY": "false",
		"CONSUL_CACERT":          "/secrets/consul_ca_file.pem",
		"CONSUL_CLIENT_CERT":     "/secrets/consul_cert_file.pem",
		"CONSUL_CLIENT_KEY":      "/secrets/consul_key_file.pem",
		"CONSUL_TLS_SERVER_NAME": "localhost",
		"GREETING":               "hi",
	}
	m, fnEnv, err := connectNative("/alloc", "/alloc/function", "nimbus-echo", env)
	if err != nil {
		t.Fatal(err)
	}
	if m.Service != "nimbus-echo" || m.Address != "127.0.0.1:8501" || m.Token != "si-token" || !m.SSL || !m.InsecureSkipVerify || m.TLSServerName != "localhost" {
		t.Fatalf("mesh config %+v", m)
	}
	if m.CAFile != "/alloc/function/secrets/consul_ca_file.pem" || m.KeyFile != "/alloc/function/secrets/consul_key_file.pem" {
		t.Fatalf("task paths not mapped onto the task dir: %+v", m)
	}
	for _, k := range []string{"CONSUL_HTTP_TOKEN", "CONSUL_CLIENT_KEY", "CONSUL_CLIENT_CERT", "CONSUL_CACERT"} {
		if _, ok := fnEnv[k]; ok {
			t.Errorf("the function's environment keeps %s", k)
		}
	}
	if fnEnv["GREETING"] != "hi" || env["CONSUL_HTTP_TOKEN"] == "" {
		t.Fatalf("function env %v; task env changed: %v", fnEnv, env)
	}

	m, _, err = connectNative("/alloc", "/alloc/function", "nimbus-echo", map[string]string{"CONSUL_HTTP_ADDR": "unix:///alloc/tmp/consul_http.sock"})
	if err != nil || m.Address != "unix:///alloc/alloc/tmp/consul_http.sock" {
		t.Fatalf("bridge socket: %+v, %v", m, err)
	}
	if _, _, err := connectNative("/alloc", "/alloc/function", "nimbus-echo", map[string]string{}); err == nil || !strings.Contains(err.Error(), "CONSUL_HTTP_ADDR") {
		t.Fatalf("no agent address: %v", err)
	}
	if _, _, err := connectNative("/alloc", "/alloc/function", "nimbus-echo", map[string]string{"CONSUL_HTTP_ADDR": "x:1", "CONSUL_CACERT": "/secrets/../../../etc/passwd"}); err == nil {
		t.Fatal("a CA path leaving the task dir was accepted")
	}
}
