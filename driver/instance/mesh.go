package instance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/mesh"
)

// meshReadyTimeout bounds the wait for the first leaf certificate and CA
// roots at Start: an agent that cannot issue them in that time is a
// failed start, which Nomad reschedules.
const meshReadyTimeout = 30 * time.Second

// meshServer is the invoke endpoint's Connect identity: the leaf and roots
// of the instance's service and the intentions that admit callers.
type meshServer struct {
	service string
	source  *mesh.Source
	authz   *mesh.Authorizer
}

// startMesh fetches the service's leaf and the CA roots from the agent
// and keeps them current until close.
func startMesh(ctx context.Context, c *MeshConfig, logger mesh.Logger) (*meshServer, error) {
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
	return &meshServer{service: c.Service, source: src, authz: mesh.NewAuthorizer(client.Agent())}, nil
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
	if err := m.authz.Authorize(r.Context(), m.service, peer); err != nil {
		if errors.Is(err, mesh.ErrDenied) {
			invokeapi.WriteError(w, invokeapi.CodeForbidden, fmt.Sprintf("consul intentions deny %s calling %s", peer.ID.Service, m.service))
			return false
		}
		// Fail closed: without the agent's answer nobody is admitted.
		invokeapi.WriteError(w, invokeapi.CodeInternal, "checking consul intentions: "+err.Error())
		return false
	}
	return true
}

func (m *meshServer) close() { m.source.Close() }
