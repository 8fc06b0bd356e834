package instance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/mesh"
)

// meshReadyTimeout bounds the wait for the first leaf certificate and CA
// roots at Start: an agent that cannot issue them in that time is a
// failed start, which Nomad reschedules.
const meshReadyTimeout = 30 * time.Second

// meshAuthzTTL is how long an intentions answer that admitted a
// connection's caller is reused for that connection's next requests. The
// gateway keeps its connections to an instance open and busy, so asking
// the agent on every request would put a loopback HTTP call on the hot
// path (the bench halves throughput with it at 16 and 64 clients); one
// question per connection per second keeps that cost away while a new
// deny still reaches open connections within a second of the agent
// learning it. Refusals are not reused: a denied caller is asked about
// again on each request, so an allow applies at once.
const meshAuthzTTL = time.Second

// meshServer is the invoke endpoint's Connect identity: the leaf and roots
// of the instance's service and the intentions that admit callers.
type meshServer struct {
	service string
	source  *mesh.Source
	authz   *mesh.Authorizer
	now     func() time.Time
}

// connAuthz is one connection's last admission (see meshAuthzTTL).
type connAuthz struct {
	mu     sync.Mutex
	serial string // the admitted peer certificate's serial
	at     time.Time
}

type connAuthzKey struct{}

// connContext gives each connection its admission record.
func (m *meshServer) connContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connAuthzKey{}, &connAuthz{})
}

// startMesh fetches the service's leaf and the CA roots from the agent
// and keeps them current until close.
func startMesh(ctx context.Context, c *MeshConfig, logger mesh.Logger, wrap func(mesh.AuthorizeAgent) mesh.AuthorizeAgent) (*meshServer, error) {
	cc := &consul.Config{
		Address: c.Address,
		Token:   c.Token,
		TLSConfig: consul.TLSConfig{
			Address:            c.TLSServerName,
			CAFile:             c.CAFile,
			CertFile:           c.CertFile,
			KeyFile:            c.KeyFile,
			InsecureSkipVerify: c.InsecureSkipVerify,
		},
	}
	if c.SSL {
		cc.Scheme = "https"
	}
	client, err := consul.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("mesh: consul agent %s: %w", c.Address, err)
	}
	src, err := mesh.NewSource(client.Agent(), mesh.SourceConfig{Service: c.Service, Logger: logger})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, meshReadyTimeout)
	defer cancel()
	if err := src.Ready(rctx); err != nil {
		src.Close()
		return nil, fmt.Errorf("mesh: %w", err)
	}
	var agent mesh.AuthorizeAgent = client.Agent()
	if wrap != nil {
		agent = wrap(agent)
	}
	return &meshServer{service: c.Service, source: src, authz: mesh.NewAuthorizer(agent), now: time.Now}, nil
}

// tlsConfig is the endpoint's server config. It asks for a client
// certificate but does not require one at the handshake, so that Consul's
// health check (TLS without a certificate) reaches PathHealth; when one is
// sent it must be a mesh leaf, and every other path refuses a caller
// without one (authorize).
func (m *meshServer) tlsConfig() *tls.Config {
	c := m.source.ServerTLSConfig(nil)
	c.ClientAuth = tls.RequestClientCert
	verify := c.VerifyPeerCertificate
	c.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return nil
		}
		return verify(raw, chains)
	}
	return c
}

// authorize admits a request whose verified client certificate names a
// service the intentions allow to call this one. It answers the refusal
// itself and reports whether the request may go on.
func (m *meshServer) authorize(w http.ResponseWriter, r *http.Request) bool {
	peer, err := mesh.PeerFromState(r.TLS)
	if err != nil {
		invokeapi.WriteError(w, invokeapi.CodeUnauthorized, "a client certificate from the service mesh is required")
		return false
	}
	ca, _ := r.Context().Value(connAuthzKey{}).(*connAuthz)
	if ca != nil {
		ca.mu.Lock()
		defer ca.mu.Unlock()
		if ca.serial == peer.Serial && m.now().Sub(ca.at) < meshAuthzTTL {
			return true
		}
	}
	if err := m.authz.Authorize(r.Context(), m.service, peer); err != nil {
		if ca != nil {
			ca.serial = ""
		}
		if errors.Is(err, mesh.ErrDenied) {
			invokeapi.WriteError(w, invokeapi.CodeForbidden, fmt.Sprintf("consul intentions deny %s calling %s", peer.ID.Service, m.service))
			return false
		}
		// Fail closed: without the agent's answer nobody is admitted.
		invokeapi.WriteError(w, invokeapi.CodeInternal, "checking consul intentions: "+err.Error())
		return false
	}
	if ca != nil {
		ca.serial, ca.at = peer.Serial, m.now()
	}
	return true
}

func (m *meshServer) close() { m.source.Close() }
