package mesh

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
)

// SpiffeID is the identity Consul writes into a service's leaf certificate
// as a URI SAN:
//
//	spiffe://<trust-domain>/ns/<namespace>/dc/<datacenter>/svc/<service>
//	spiffe://<trust-domain>/ap/<partition>/ns/<namespace>/dc/<datacenter>/svc/<service>
type SpiffeID struct {
	TrustDomain string
	// Partition is "" for the default partition (the form without /ap/).
	Partition  string
	Namespace  string
	Datacenter string
	Service    string
}

// ErrNotService is returned by ParseSpiffeID for a URI that is not a Consul
// service identity (an agent's or a CA's, or not SPIFFE at all).
var ErrNotService = errors.New("not a consul service spiffe id")

// ParseSpiffeID parses a Consul service SPIFFE ID.
func ParseSpiffeID(uri string) (SpiffeID, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return SpiffeID{}, fmt.Errorf("%w: %v", ErrNotService, err)
	}
	return spiffeFromURL(u)
}

func spiffeFromURL(u *url.URL) (SpiffeID, error) {
	if u.Scheme != "spiffe" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return SpiffeID{}, fmt.Errorf("%w: %q", ErrNotService, u.String())
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	id := SpiffeID{TrustDomain: strings.ToLower(u.Host)}
	if len(parts) == 8 && parts[0] == "ap" {
		id.Partition, parts = parts[1], parts[2:]
	}
	if len(parts) != 6 || parts[0] != "ns" || parts[2] != "dc" || parts[4] != "svc" ||
		parts[1] == "" || parts[3] == "" || parts[5] == "" {
		return SpiffeID{}, fmt.Errorf("%w: %q", ErrNotService, u.String())
	}
	id.Namespace, id.Datacenter, id.Service = parts[1], parts[3], parts[5]
	return id, nil
}

// String is the URI form, as Consul writes it.
func (id SpiffeID) String() string {
	var b strings.Builder
	b.WriteString("spiffe://")
	b.WriteString(id.TrustDomain)
	if id.Partition != "" && id.Partition != "default" {
		b.WriteString("/ap/")
		b.WriteString(id.Partition)
	}
	ns := id.Namespace
	if ns == "" {
		ns = "default"
	}
	b.WriteString("/ns/" + ns + "/dc/" + id.Datacenter + "/svc/" + id.Service)
	return b.String()
}

// CertSpiffeID returns the service identity of a certificate: it must carry
// exactly one URI SAN, and that must be a Consul service SPIFFE ID.
func CertSpiffeID(cert *x509.Certificate) (SpiffeID, error) {
	if len(cert.URIs) != 1 {
		return SpiffeID{}, fmt.Errorf("%w: certificate has %d URI SANs, want 1", ErrNotService, len(cert.URIs))
	}
	return spiffeFromURL(cert.URIs[0])
}

// ServiceSNI is the TLS server name Consul gives a service in the default
// partition: "<service>.<namespace>.<datacenter>.internal.<trust-domain>"
// (namespace "default" when empty). Envoy sidecars send it to upstreams, and
// the gateway's mesh listener routes by it.
func ServiceSNI(service, namespace, datacenter, trustDomain string) string {
	if namespace == "" {
		namespace = "default"
	}
	return service + "." + namespace + "." + datacenter + ".internal." + trustDomain
}

// ParseServiceSNI splits a name made by ServiceSNI; ok is false for any
// other name. The service and namespace are returned as written.
func ParseServiceSNI(sni string) (service, namespace, datacenter, trustDomain string, ok bool) {
	parts := strings.SplitN(sni, ".", 5)
	if len(parts) != 5 || parts[3] != "internal" || parts[0] == "" || parts[1] == "" || parts[2] == "" || parts[4] == "" {
		return "", "", "", "", false
	}
	return parts[0], parts[1], parts[2], parts[4], true
}

// certSerial formats a certificate serial as Consul does: hex bytes joined
// by ':' (the form LeafCert.SerialNumber and AgentAuthorizeParams use).
func certSerial(n *big.Int) string {
	b := n.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}
