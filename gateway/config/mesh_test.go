package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/config"
)

func TestConnectAndTLSBlocks(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, cert, key)
	path := filepath.Join(dir, "gateway.hcl")
	src := `
dev = true
connect {
  enabled = true
}
tls {
  listen    = "127.0.0.1:9444"
  cert_file = "` + cert + `"
  key_file  = "` + key + `"
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
	if !c.ConnectEnabled() || c.Connect.Listen != ":9443" || c.Connect.Service != "nimbus-gateway" {
		t.Fatalf("connect block after defaults: %+v", c.Connect)
	}
	if c.TLS.Listen != "127.0.0.1:9444" {
		t.Fatalf("tls block: %+v", c.TLS)
	}
}

func TestConnectAndTLSBlocksRefuseBadValues(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, cert, key)
	for _, c := range []struct {
		name string
		cfg  config.Config
		want string
	}{
		{"settings of a disabled connect", config.Config{Connect: &config.ConnectConfig{Listen: ":1"}}, "apply only with enabled = true"},
		{"plain_urls of a disabled connect", config.Config{Connect: &config.ConnectConfig{PlainURLs: true}}, "apply only with enabled = true"},
		{"bad connect listen", config.Config{Connect: &config.ConnectConfig{Enabled: true, Listen: "nope"}}, "connect listen"},
		{"bad connect service", config.Config{Connect: &config.ConnectConfig{Enabled: true, Service: "a.b"}}, "connect service"},
		{"bad connect advertise", config.Config{Connect: &config.ConnectConfig{Enabled: true, Advertise: "host"}}, "connect advertise"},
		{"connect on the plain port", config.Config{Listen: "127.0.0.1:9000", Connect: &config.ConnectConfig{Enabled: true, Listen: "127.0.0.1:9000"}}, "connect listen is the plain listen"},
		{"tls without files", config.Config{TLS: &config.TLSConfig{Listen: ":8443"}}, "cert_file and key_file"},
		{"tls with a missing file", config.Config{TLS: &config.TLSConfig{Listen: ":8443", CertFile: cert, KeyFile: filepath.Join(dir, "none")}}, "tls cert_file/key_file"},
		{"tls with a swapped pair", config.Config{TLS: &config.TLSConfig{Listen: ":8443", CertFile: key, KeyFile: cert}}, "tls cert_file/key_file"},
		{"tls on the connect port", config.Config{TLS: &config.TLSConfig{Listen: ":9443", CertFile: cert, KeyFile: key}, Connect: &config.ConnectConfig{Enabled: true}}, "tls listen and connect listen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Dev = true
			cfg.Defaults()
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

func writePair(t *testing.T, certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
}
