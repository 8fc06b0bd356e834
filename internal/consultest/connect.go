package consultest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// RotateCA gives the agent's built-in Connect CA a new private key, which
// makes Consul generate a new root and re-issue every leaf.
func RotateCA(tb testing.TB, cc *api.Client) {
	tb.Helper()
	cur, _, err := cc.Connect().CAGetConfig(nil)
	if err != nil {
		tb.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := map[string]any{}
	for k, v := range cur.Config {
		cfg[k] = v
	}
	cfg["PrivateKey"] = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	delete(cfg, "RootCert")
	if _, err := cc.Connect().CASetConfig(&api.CAConfig{Provider: cur.Provider, Config: cfg}, nil); err != nil {
		tb.Fatalf("rotating the CA: %v", err)
	}
}

// ForgedLeaf is a certificate that claims the SPIFFE ID uri (for client
// and server use) but that no mesh CA signed: what an impostor presents.
func ForgedLeaf(tb testing.TB, uri string) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	u, err := url.Parse(uri)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "forged"}, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
