package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/consul"
	"github.com/nimbus-fn/nimbus/mesh"
)

// MeshAuthorizer decides with Consul's intentions whether a mesh peer may
// call a destination service (*mesh.Authorizer).
type MeshAuthorizer interface {
	Authorize(ctx context.Context, target string, peer mesh.Peer) error
}

var _ MeshAuthorizer = (*mesh.Authorizer)(nil)

// MeshDeps are the mesh listener's adapters, required with connect
// enabled and refused without.
type MeshDeps struct {
	// Source holds the gateway's leaf (for connect.service) and the CA
	// roots; the server adds the function URL services' leaves to it
	// (SetServedServices) as functions come and go.
	Source *mesh.Source
	// Authorizer asks Consul's intentions about each request.
	Authorizer MeshAuthorizer
	// URLService names a function's URL service. Default
	// consul.URLServiceName(fn, "-url"), as the registrar does.
	URLService func(fn string) string
	// Listener, when set, is used instead of listening on connect.listen
	// (the cluster binds it first to register its port).
	Listener net.Listener
}

// meshTarget is what a mesh request asks for: a function URL (fn set, or
// notFound for a URL service no function has) or the gateway's own API;
// service is the destination intentions are checked against.
type meshTarget struct {
	service  string
	fn       string
	path     string
	url      bool
	notFound bool
}

// meshHandler serves the mesh listener: it picks the destination from the
// caller's SNI (Consul's "<service>.<ns>.<dc>.internal.<trust-domain>"),
// or, for a caller that sent none of that form, from the Host header and
// path as the plain listener does; it asks Consul's intentions whether the
// caller's identity may call that service, answering 403 in Lambda's shape
// when not; then it serves the function URL, or the gateway's routes
// (next) for the gateway's own service.
func (s *Server) meshHandler(a *api.API, next http.Handler) http.Handler {
	md := s.deps.Mesh
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requestID := uuid.NewString()
		peer, err := mesh.PeerFromState(r.TLS)
		if err != nil {
			// The handshake already required a mesh certificate.
			api.WriteError(w, requestID, api.CodeAccessDenied, "The mesh listener needs a Consul Connect client certificate.")
			return
		}
		t := s.meshTarget(r, a)
		if err := md.Authorizer.Authorize(r.Context(), t.service, peer); err != nil {
			log := s.logger.With("request_id", requestID, "client", peer.URI, "service", t.service)
			if errors.Is(err, mesh.ErrDenied) {
				log.Debug("mesh request denied by intentions", "error", err)
			} else {
				log.Warn("mesh request refused: intentions could not be checked", "error", err)
			}
			if t.url {
				api.WriteURLError(w, requestID, http.StatusForbidden, "Forbidden")
			} else {
				api.WriteError(w, requestID, api.CodeAccessDenied, "Consul intentions do not allow "+peer.ID.Service+" to call "+t.service+".")
			}
			return
		}
		switch {
		case t.notFound:
			api.WriteURLError(w, requestID, http.StatusNotFound, "Function URL not found")
		case t.url:
			a.ServeURL(w, r, t.fn, t.path)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (s *Server) urlService(fn string) string {
	if f := s.deps.Mesh.URLService; f != nil {
		return f(fn)
	}
	return consul.URLServiceName(fn, "-url")
}

// meshTarget resolves a mesh request's destination.
func (s *Server) meshTarget(r *http.Request, a *api.API) meshTarget {
	gw := s.deps.Mesh.Source.Service()
	path := r.URL.EscapedPath()
	if svc, _, _, _, ok := mesh.ParseServiceSNI(r.TLS.ServerName); ok {
		if strings.EqualFold(svc, gw) {
			return meshTarget{service: gw}
		}
		if fn, ok := s.functionOfService(r.Context(), svc); ok {
			return meshTarget{service: s.urlService(fn), fn: fn, path: path, url: true}
		}
		return meshTarget{service: svc, url: true, notFound: true}
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	label, _, _ := strings.Cut(host, ".")
	if fn, ok := s.functionOfService(r.Context(), label); ok {
		return meshTarget{service: s.urlService(fn), fn: fn, path: path, url: true}
	}
	if fn, ok := a.URLHost(r.Host); ok {
		return meshTarget{service: s.urlService(fn), fn: fn, path: path, url: true}
	}
	if rest, ok := strings.CutPrefix(path, api.URLPathPrefix); ok {
		fn, sub, _ := strings.Cut(rest, "/")
		return meshTarget{service: s.urlService(fn), fn: fn, path: "/" + sub, url: true}
	}
	return meshTarget{service: gw}
}

// functionOfService finds the function with a URL whose URL service is svc:
// from the map syncMeshServices keeps (every second), else, for a function
// newer than that, from the catalog.
func (s *Server) functionOfService(ctx context.Context, svc string) (string, bool) {
	if svc == "" {
		return "", false
	}
	if m := s.meshServices.Load(); m != nil {
		if fn, ok := (*m)[strings.ToLower(svc)]; ok {
			return fn, true
		}
	}
	fns, err := s.deps.Catalog.Functions(ctx)
	if err != nil {
		return "", false
	}
	for _, f := range fns {
		if f.URL() != nil && strings.EqualFold(s.urlService(f.Name), svc) {
			return f.Name, true
		}
	}
	return "", false
}

// syncMeshServices makes the mesh Source hold a leaf for every function
// URL service, so the mesh listener proves "<fn>-url" to callers of it.
func (s *Server) syncMeshServices(ctx context.Context) {
	if s.deps.Mesh == nil {
		return
	}
	fns, err := s.deps.Catalog.Functions(ctx)
	if err != nil {
		return
	}
	var names []string
	m := map[string]string{}
	for _, f := range fns {
		if f.URL() != nil {
			svc := s.urlService(f.Name)
			names = append(names, svc)
			m[strings.ToLower(svc)] = f.Name
		}
	}
	s.meshServices.Store(&m)
	s.deps.Mesh.Source.SetServedServices(names)
}

// certFiles serves a certificate read from two PEM files, reading them
// again when either one's size or modification time changes (checked at
// each handshake: two stat calls). A pair that does not load leaves the
// previous certificate in use and is logged.
type certFiles struct {
	certFile, keyFile string
	logger            hclog.Logger

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	certSt  fileStamp
	keySt   fileStamp
	lastErr string
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime()}, nil
}

func newCertFiles(certFile, keyFile string, logger hclog.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, logger: logger}
	if _, err := c.get(); err != nil {
		return nil, err
	}
	return c, nil
}

// get returns the current certificate, reloading it when the files changed.
func (c *certFiles) get() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, err1 := stamp(c.certFile)
	ks, err2 := stamp(c.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		if c.cert != nil {
			c.warnLocked(err)
			return c.cert, nil
		}
		return nil, err
	}
	if c.cert != nil && cs == c.certSt && ks == c.keySt {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			c.warnLocked(err)
			return c.cert, nil
		}
		return nil, err
	}
	first := c.cert == nil
	c.cert, c.certSt, c.keySt, c.lastErr = &cert, cs, ks, ""
	if !first {
		c.logger.Info("tls certificate reloaded", "cert_file", c.certFile)
	}
	return c.cert, nil
}

func (c *certFiles) warnLocked(err error) {
	if msg := err.Error(); msg != c.lastErr {
		c.lastErr = msg
		c.logger.Warn("tls certificate files do not load; keeping the previous certificate", "cert_file", c.certFile, "error", err)
	}
}
