package queue_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/natsembed"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/router"
)

// roundTrip proves a and b talk to the same NATS: b receives what a sends.
func roundTrip(t *testing.T, a, b *nats.Conn, payload string) {
	t.Helper()
	sub, err := b.SubscribeSync("roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish("roundtrip", []byte(payload)); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != payload {
		t.Fatalf("round trip: got %v, %v; want %q", m, err, payload)
	}
}

func embeddedConfig(t *testing.T, clusterKey []byte) *queue.Config {
	t.Helper()
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.ClusterKey = clusterKey
	cfg.Defaults()
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// The embedded server refuses a client without the token; the token
// derives from the cluster key (or is random without one), ClientURL
// carries it, and the log names only the address.
func TestEmbeddedNATSRequiresTheToken(t *testing.T) {
	logs := &gatewaytest.LogBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	n, err := queue.ConnectNATS(embeddedConfig(t, key), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	addr := n.Embedded.Addr()
	if _, err := nats.Connect(addr, nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a client without credentials: %v, want %v", err, nats.ErrAuthorization)
	}
	if _, err := nats.Connect(addr, nats.Token(natsembed.DeriveToken([]byte("another-cluster-key"))), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a client with another key's token: %v, want %v", err, nats.ErrAuthorization)
	}
	derived := natsembed.DeriveToken(key)
	byToken, err := nats.Connect(addr, nats.Token(derived))
	if err != nil {
		t.Fatalf("the token derived from the cluster key: %v", err)
	}
	defer byToken.Close()
	roundTrip(t, byToken, n.Conn, "derived token")
	byURL, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatalf("ClientURL: %v", err)
	}
	defer byURL.Close()
	roundTrip(t, n.Conn, byURL, "client url")
	other, err := n.Connect("second")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	roundTrip(t, other, byURL, "n.Connect")
	if !strings.Contains(logs.String(), addr) || strings.Contains(logs.String(), derived) {
		t.Fatalf("the log should name %s and not the token:\n%s", addr, logs)
	}

	// Without a cluster key (nimbus dev without keys): a random token.
	n2, err := queue.ConnectNATS(embeddedConfig(t, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n2.Close)
	if _, err := nats.Connect(n2.Embedded.Addr(), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("no key, a client without credentials: %v, want %v", err, nats.ErrAuthorization)
	}
	if n2.Embedded.Token() == derived || len(n2.Embedded.Token()) != 64 {
		t.Fatalf("without a cluster key the token is %q", n2.Embedded.Token())
	}
}

// The embedded server listens on loopback only.
func TestEmbeddedListenIsLoopback(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":4222", "192.0.2.1:4222"} {
		cfg := testConfig()
		cfg.Listen = listen
		cfg.Defaults()
		if err := cfg.Validate(true); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("listen %q: %v, want a loopback error", listen, err)
		}
	}
}

// externalServer runs a NATS server as an external cluster would: with a
// token and, given tc, TLS that verifies client certificates.
func externalServer(t *testing.T, token string, tc *tls.Config) *natsserver.Server {
	t.Helper()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Authorization: token, NoSigs: true, NoLog: true, MaxPayload: queue.MaxMessageSize}
	if tc != nil {
		opts.TLS, opts.TLSVerify, opts.TLSConfig, opts.TLSTimeout = true, true, tc, 5
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// externalQueue validates cfg for a cluster gateway, connects and opens
// the queue's stream on it: the whole JetStream path works.
func externalQueue(t *testing.T, cfg queue.Config) (*queue.NATS, error) {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	n, err := queue.ConnectNATS(&cfg, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(n.Close)
	rt := router.New(router.Config{InvokeKey: key}, gatewaytest.NewSource(), &gatewaytest.Scaler{}, metrics.New(), nil)
	t.Cleanup(rt.Close)
	q, err := queue.New(cfg, false, queue.Deps{Invoker: rt, Catalog: &funcs{m: map[string]*catalog.Function{}}, Limits: rt,
		Region: "us-east-1", AccountID: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := q.Open(ctx, n); err != nil {
		t.Fatalf("opening the queue on the external NATS: %v", err)
	}
	if err := q.Enqueue(ctx, queue.Event{RequestID: "r1", Function: "echo", Payload: []byte(`{"n":1}`)}); err != nil {
		t.Fatalf("enqueueing on the external NATS: %v", err)
	}
	return n, nil
}

const externalToken = "external-token-0123456789"

func TestExternalNATSWithToken(t *testing.T) {
	s := externalServer(t, externalToken, nil)
	url := s.ClientURL()

	cfg := testConfig()
	cfg.URL, cfg.Token = url, externalToken
	n, err := externalQueue(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n.Embedded != nil || n.ClientURL() != "" {
		t.Fatal("an external queue started a server of its own")
	}
	second, err := n.Connect("second")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	roundTrip(t, second, n.Conn, "external token")

	// The token from a file.
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(externalToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = testConfig()
	cfg.URL, cfg.TokenFile = url, file
	if _, err := externalQueue(t, cfg); err != nil {
		t.Fatal(err)
	}

	// A cluster gateway refuses a nats_url without credentials...
	cfg = testConfig()
	cfg.URL = url
	cfg.Defaults()
	if err := cfg.Validate(false); err == nil || !strings.Contains(err.Error(), "carries no credentials") {
		t.Fatalf("a cluster gateway with an anonymous nats_url: %v", err)
	}
	// ...which dev mode (or nats_insecure) lets through to the server,
	// which refuses it with a clear error.
	if err := cfg.Validate(true); err != nil {
		t.Fatal(err)
	}
	logs := &gatewaytest.LogBuffer{}
	_, err = queue.ConnectNATS(&cfg, hclog.New(&hclog.LoggerOptions{Output: logs}))
	if !errors.Is(err, nats.ErrAuthorization) || !strings.Contains(err.Error(), "nats_token") {
		t.Fatalf("connecting without credentials: %v", err)
	}
	if !strings.Contains(logs.String(), "WITHOUT credentials") {
		t.Fatalf("no warning about the missing credentials:\n%s", logs)
	}
	cfg.Insecure = true
	if err := cfg.Validate(false); err != nil {
		t.Fatalf("nats_insecure = true: %v", err)
	}

	// A wrong token: refused, and neither token appears in the error.
	cfg = testConfig()
	cfg.URL, cfg.Token = url, "wrong-token-0123456789"
	cfg.Defaults()
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	_, err = queue.ConnectNATS(&cfg, nil)
	if !errors.Is(err, nats.ErrAuthorization) || strings.Contains(err.Error(), cfg.Token) {
		t.Fatalf("a wrong token: %v", err)
	}

	// A token in the URL is a credential too, and it is never shown.
	cfg = testConfig()
	cfg.URL = strings.Replace(url, "nats://", "nats://"+externalToken+"@", 1)
	if _, err := externalQueue(t, cfg); err != nil {
		t.Fatal(err)
	}
	if got := queue.RedactURL(cfg.URL); strings.Contains(got, externalToken) || !strings.Contains(got, "127.0.0.1") {
		t.Fatalf("RedactURL(%q) = %q", cfg.URL, got)
	}
	cfg = testConfig()
	cfg.URL = strings.Replace(url, "nats://", "nats://user:wrong-password@", 1)
	cfg.Defaults()
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	if _, err = queue.ConnectNATS(&cfg, nil); err == nil || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("a wrong password in the URL: %v", err)
	}
}

// pki is a throwaway CA with a server and a client certificate, in PEM
// files.
type pki struct {
	dir                       string
	ca, serverCert, serverKey string
	clientCert, clientKey     string
	serverTLS                 *tls.Config
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(p.dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nimbus test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (string, string) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{name},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	p.serverCert, p.serverKey = leaf(2, "nats.nimbus.test", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf(3, "gateway.nimbus.test", x509.ExtKeyUsageClientAuth)
	cert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	p.serverTLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	return p
}

// TLS with a CA file, a client certificate and a server name connects and
// runs the queue; a gateway that does not trust the CA, presents no client
// certificate or expects another server name is refused.
func TestExternalNATSWithTLS(t *testing.T) {
	p := newPKI(t)
	s := externalServer(t, externalToken, p.serverTLS)
	_, port, _ := net.SplitHostPort(s.Addr().String())
	url := "nats://127.0.0.1:" + port
	good := func() queue.Config {
		cfg := testConfig()
		cfg.URL, cfg.Token = url, externalToken
		cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.ServerName = p.ca, p.clientCert, p.clientKey, "nats.nimbus.test"
		return cfg
	}
	n, err := externalQueue(t, good())
	if err != nil {
		t.Fatal(err)
	}
	if !n.Conn.TLSRequired() {
		t.Fatal("the connection is not TLS")
	}
	if cs, err := n.Conn.TLSConnectionState(); err != nil || len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != "nats.nimbus.test" {
		t.Fatalf("TLS state %v, %v", cs.PeerCertificates, err)
	}

	// The client certificate alone is a credential for a cluster gateway.
	certOnly := good()
	certOnly.Token = ""
	certOnly.Defaults()
	if err := certOnly.Validate(false); err != nil {
		t.Fatalf("a client certificate without a token: %v", err)
	}

	for name, tc := range map[string]struct {
		change func(*queue.Config)
		want   string
	}{
		"no CA":            {func(c *queue.Config) { c.CAFile = "" }, "certificate"},
		"no client cert":   {func(c *queue.Config) { c.CertFile, c.KeyFile = "", "" }, ""},
		"other servername": {func(c *queue.Config) { c.ServerName = "other.nimbus.test" }, "certificate"},
		"no TLS at all": {func(c *queue.Config) {
			c.CAFile, c.CertFile, c.KeyFile, c.ServerName = "", "", "", ""
		}, ""},
	} {
		cfg := tc.change
		c := good()
		cfg(&c)
		c.Defaults()
		if err := c.Validate(false); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n, err := queue.ConnectNATS(&c, nil)
		if err == nil {
			n.Close()
			t.Errorf("%s: connected", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if !strings.Contains(err.Error(), "connecting to NATS at "+url) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (want it to mention %q)", name, err, tc.want)
		}
	}
}

// The credential and TLS fields are checked before anything connects.
func TestValidateExternalNATS(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name string
		cfg  queue.Config
		dev  bool
		want string // "" = valid
	}{
		{"token", queue.Config{URL: "nats://n:4222", Token: "t"}, false, ""},
		{"user in URL", queue.Config{URL: "nats://a:b@n:4222"}, false, ""},
		{"user in a second URL without scheme", queue.Config{URL: "nats://n1:4222,a:b@n2:4222"}, false, ""},
		{"nkey", queue.Config{URL: "nats://n:4222", NKeySeedFile: file}, false, ""},
		{"creds", queue.Config{URL: "nats://n:4222", CredsFile: file}, false, ""},
		{"insecure", queue.Config{URL: "nats://n:4222", Insecure: true}, false, ""},
		{"dev without credentials", queue.Config{URL: "nats://n:4222"}, true, ""},
		{"cluster without credentials", queue.Config{URL: "nats://n:4222"}, false, "carries no credentials"},
		{"TLS without credentials", queue.Config{URL: "tls://n:4222", CAFile: file}, false, "carries no credentials"},
		{"two kinds", queue.Config{URL: "nats://a:b@n:4222", Token: "t"}, false, "set only one of a user in nats_url, nats_token"},
		{"token and creds", queue.Config{URL: "nats://n:4222", Token: "t", CredsFile: file}, false, "set only one of"},
		{"missing file", queue.Config{URL: "nats://n:4222", CredsFile: missing}, false, "nats_creds_file"},
		{"cert without key", queue.Config{URL: "nats://n:4222", Token: "t", CertFile: file}, false, "go together"},
		{"token without URL", queue.Config{Token: "t"}, true, "nats_token applies to an external NATS"},
		{"insecure without URL", queue.Config{Insecure: true}, true, "nats_insecure applies"},
	} {
		c := tc.cfg
		c.Defaults()
		err := c.Validate(tc.dev)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), ":b@") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}
}
