package mesh

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

// CAAgent is the part of the Consul agent API a Source uses (*api.Agent).
type CAAgent interface {
	ConnectCALeaf(service string, q *api.QueryOptions) (*api.LeafCert, *api.QueryMeta, error)
	ConnectCARoots(q *api.QueryOptions) (*api.CARootList, *api.QueryMeta, error)
}

var _ CAAgent = (*api.Agent)(nil)

// Logger is the logging a Source does (hclog.Logger satisfies it).
type Logger interface {
	Info(msg string, args ...interface{})
	Warn(msg string, args ...interface{})
}

// ErrNotReady is returned while a Source has no leaf or no roots yet.
var ErrNotReady = errors.New("mesh: no leaf certificate or CA roots from the consul agent yet")

// SourceConfig configures a Source. Zero values take the defaults noted.
type SourceConfig struct {
	// Service is the Consul service name whose leaf certificate the Source
	// holds (the identity this program presents). Required.
	Service string
	// WaitTime bounds each blocking query; the agent answers earlier when
	// the leaf or the roots change. Default 5m (Consul caps it at 10m).
	WaitTime time.Duration
	// RetryMin and RetryMax bound the back-off after a failed query.
	// Defaults 250ms and 30s.
	RetryMin, RetryMax time.Duration
	// Logger receives renewals and query failures. Default: none.
	Logger Logger
}

func (c *SourceConfig) defaults() error {
	if c.Service == "" {
		return errors.New("mesh source: service is required")
	}
	if c.WaitTime <= 0 {
		c.WaitTime = 5 * time.Minute
	}
	if c.WaitTime > 10*time.Minute {
		return fmt.Errorf("mesh source: wait time %s is above Consul's 10m cap", c.WaitTime)
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 250 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		return fmt.Errorf("mesh source: retry max %s is below retry min %s", c.RetryMax, c.RetryMin)
	}
	if c.Logger == nil {
		c.Logger = nopLogger{}
	}
	return nil
}

type nopLogger struct{}

func (nopLogger) Info(string, ...interface{}) {}
func (nopLogger) Warn(string, ...interface{}) {}

// Leaf is one issued leaf certificate.
type Leaf struct {
	Cert        *tls.Certificate
	X509        *x509.Certificate
	ID          SpiffeID
	Serial      string // Consul's form, hex bytes joined by ':'
	ValidBefore time.Time
}

// Roots is one CA roots list.
type Roots struct {
	Pool        *x509.CertPool
	TrustDomain string // "<cluster-id>.consul"
	ActiveID    string
	IDs         []string
}

// Source holds one service's leaf certificate and the mesh's CA roots,
// following both with blocking queries until Close. Its methods are safe
// for concurrent use; TLS configs it returns read the current leaf and roots
// on every handshake.
type Source struct {
	agent CAAgent
	cfg   SourceConfig

	leaf  atomic.Pointer[Leaf]
	roots atomic.Pointer[Roots]

	mu      sync.Mutex    // guards changed, extra and watches
	changed chan struct{} // closed and replaced on every new leaf or roots
	// extra holds the leaves of the services added by SetServedServices;
	// watches cancels each one's blocking query.
	extra   map[string]*Leaf
	watches map[string]context.CancelFunc
	ctx     context.Context // ends at Close

	ready     chan struct{} // closed once both a leaf and roots are held
	readyOnce sync.Once

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewSource starts following cfg.Service's leaf and the CA roots through
// agent. Call Ready to wait for the first of both, and Close to stop.
func NewSource(agent CAAgent, cfg SourceConfig) (*Source, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Source{agent: agent, cfg: cfg, changed: make(chan struct{}), ready: make(chan struct{}), cancel: cancel,
		extra: map[string]*Leaf{}, watches: map[string]context.CancelFunc{}, ctx: ctx}
	s.wg.Add(2)
	go s.follow(ctx, "leaf", func(ctx context.Context, index uint64) (uint64, error) {
		return s.fetchLeaf(ctx, index, cfg.Service)
	})
	go s.follow(ctx, "roots", s.fetchRoots)
	return s, nil
}

// Close stops the blocking queries and waits for them to end. TLS configs
// keep using the last leaf and roots.
func (s *Source) Close() {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

// SetServedServices makes the Source also hold a leaf for each of names
// (besides its own service), following each with its own blocking query,
// and drops the leaves of services no longer named. A server config from
// ServerTLSConfig presents the leaf of the service a client names in its
// SNI (ServiceSNI), so one listener can answer for several mesh services,
// each with that service's identity, as a client verifying its target
// requires. The agent issues leaves for any service name the Source's
// token may write; the services need not be registered first.
func (s *Source) SetServedServices(names []string) {
	want := map[string]bool{}
	for _, n := range names {
		if n != "" && n != s.cfg.Service {
			want[n] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	for n, cancel := range s.watches {
		if !want[n] {
			cancel()
			delete(s.watches, n)
			delete(s.extra, n)
		}
	}
	for n := range want {
		if _, ok := s.watches[n]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		s.watches[n] = cancel
		s.wg.Add(1)
		go s.follow(ctx, "leaf "+n, func(ctx context.Context, index uint64) (uint64, error) {
			return s.fetchLeaf(ctx, index, n)
		})
	}
}

// LeafFor is the current leaf of service: the Source's own or one added by
// SetServedServices (nil when none is held yet).
func (s *Source) LeafFor(service string) *Leaf {
	if service == s.cfg.Service {
		return s.leaf.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.extra[service]
}

// Service is the service name this Source presents.
func (s *Source) Service() string { return s.cfg.Service }

// Ready waits until the Source holds a leaf and roots, or ctx ends.
func (s *Source) Ready(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the %s leaf certificate and CA roots: %w", s.cfg.Service, ctx.Err())
	}
}

// Leaf is the current leaf certificate, nil before the first.
func (s *Source) Leaf() *Leaf { return s.leaf.Load() }

// Roots is the current CA roots, nil before the first.
func (s *Source) Roots() *Roots { return s.roots.Load() }

// Changed returns a channel closed at the next change of the leaf or the
// roots (take a new one after it fires).
func (s *Source) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// SNI is the TLS server name of service in this Source's datacenter and
// trust domain ("" before Ready).
func (s *Source) SNI(service string) string {
	l, r := s.leaf.Load(), s.roots.Load()
	if l == nil || r == nil {
		return ""
	}
	return ServiceSNI(service, l.ID.Namespace, l.ID.Datacenter, r.TrustDomain)
}

func (s *Source) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if s.leaf.Load() != nil && s.roots.Load() != nil {
		s.readyOnce.Do(func() { close(s.ready) })
	}
}

// follow runs one blocking-query loop. fetch returns the index to block on
// next; Consul's rules for indexes apply: an index that goes backwards (a
// server restored from a snapshot, another server answering) resets to 0,
// and 0 is never waited on.
func (s *Source) follow(ctx context.Context, what string, fetch func(context.Context, uint64) (uint64, error)) {
	defer s.wg.Done()
	var index uint64
	retry := s.cfg.RetryMin
	for ctx.Err() == nil {
		next, err := fetch(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.cfg.Logger.Warn("fetching from the consul agent", "what", what, "service", s.cfg.Service, "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			retry = min(retry*2, s.cfg.RetryMax)
			continue
		}
		retry = s.cfg.RetryMin
		if next < index || next == 0 {
			next = 0
		}
		index = next
	}
}

func (s *Source) query(ctx context.Context, index uint64) *api.QueryOptions {
	return (&api.QueryOptions{WaitIndex: index, WaitTime: s.cfg.WaitTime}).WithContext(ctx)
}

func (s *Source) fetchLeaf(ctx context.Context, index uint64, service string) (uint64, error) {
	lc, meta, err := s.agent.ConnectCALeaf(service, s.query(ctx, index))
	if err != nil {
		return 0, fmt.Errorf("leaf certificate for %s: %w", service, err)
	}
	if cur := s.LeafFor(service); cur != nil && cur.Serial == normSerial(lc.SerialNumber) {
		return meta.LastIndex, nil
	}
	l, err := parseLeaf(lc)
	if err != nil {
		return 0, err
	}
	if l.ID.Service != service {
		return 0, fmt.Errorf("the agent issued a leaf for %q, not %q", l.ID.Service, service)
	}
	if service == s.cfg.Service {
		s.leaf.Store(l)
	} else {
		s.mu.Lock()
		if _, ok := s.watches[service]; !ok || ctx.Err() != nil {
			s.mu.Unlock()
			return meta.LastIndex, nil // dropped meanwhile
		}
		s.extra[service] = l
		s.mu.Unlock()
	}
	s.cfg.Logger.Info("mesh leaf certificate", "service", service, "serial", l.Serial, "valid_before", l.ValidBefore)
	s.notify()
	return meta.LastIndex, nil
}

// normSerial lower-cases a Consul serial ("0A:1b" and "0a:1b" are one).
func normSerial(s string) string { return strings.ToLower(s) }

func parseLeaf(lc *api.LeafCert) (*Leaf, error) {
	cert, err := tls.X509KeyPair([]byte(lc.CertPEM), []byte(lc.PrivateKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("leaf certificate %s: %w", lc.SerialNumber, err)
	}
	x, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("leaf certificate %s: %w", lc.SerialNumber, err)
	}
	cert.Leaf = x
	id, err := CertSpiffeID(x)
	if err != nil {
		return nil, fmt.Errorf("leaf certificate %s: %w", lc.SerialNumber, err)
	}
	return &Leaf{Cert: &cert, X509: x, ID: id, Serial: certSerial(x.SerialNumber), ValidBefore: x.NotAfter}, nil
}

func (s *Source) fetchRoots(ctx context.Context, index uint64) (uint64, error) {
	list, meta, err := s.agent.ConnectCARoots(s.query(ctx, index))
	if err != nil {
		return 0, fmt.Errorf("ca roots: %w", err)
	}
	r, err := parseRoots(list)
	if err != nil {
		return 0, err
	}
	if cur := s.roots.Load(); cur != nil && cur.ActiveID == r.ActiveID && strings.Join(cur.IDs, ",") == strings.Join(r.IDs, ",") {
		return meta.LastIndex, nil
	}
	s.roots.Store(r)
	s.cfg.Logger.Info("mesh ca roots", "active_root", r.ActiveID, "roots", len(r.IDs))
	s.notify()
	return meta.LastIndex, nil
}

func parseRoots(list *api.CARootList) (*Roots, error) {
	if list.TrustDomain == "" {
		return nil, errors.New("ca roots without a trust domain (is connect enabled on the agent?)")
	}
	r := &Roots{Pool: x509.NewCertPool(), TrustDomain: strings.ToLower(list.TrustDomain), ActiveID: list.ActiveRootID}
	for _, root := range list.Roots {
		rest := []byte(root.RootCertPEM)
		n := 0
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("ca root %s: %w", root.ID, err)
			}
			r.Pool.AddCert(c)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("ca root %s holds no certificate", root.ID)
		}
		r.IDs = append(r.IDs, root.ID)
	}
	if len(r.IDs) == 0 {
		return nil, errors.New("the agent returned no ca roots")
	}
	return r, nil
}

// Peer is the verified identity of the other end of a mesh connection.
type Peer struct {
	ID     SpiffeID
	URI    string // ID as written in the certificate
	Serial string // Consul's form
	Cert   *x509.Certificate
}

// verify checks a peer's chain against the current roots and returns its
// service identity; want, when not "", is the service it must be.
func (s *Source) verify(raw [][]byte, want string) (Peer, error) {
	r := s.roots.Load()
	if r == nil {
		return Peer{}, ErrNotReady
	}
	if len(raw) == 0 {
		return Peer{}, errors.New("mesh: peer sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return Peer{}, fmt.Errorf("mesh: peer certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: r.Pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return Peer{}, fmt.Errorf("mesh: peer certificate is not from the mesh's ca: %w", err)
	}
	id, err := CertSpiffeID(certs[0])
	if err != nil {
		return Peer{}, fmt.Errorf("mesh: peer certificate: %w", err)
	}
	if id.TrustDomain != r.TrustDomain {
		return Peer{}, fmt.Errorf("mesh: peer %s is from trust domain %q, not %q", id, id.TrustDomain, r.TrustDomain)
	}
	if want != "" && id.Service != want {
		return Peer{}, fmt.Errorf("mesh: peer is %s, not service %q", id, want)
	}
	return Peer{ID: id, URI: certs[0].URIs[0].String(), Serial: certSerial(certs[0].SerialNumber), Cert: certs[0]}, nil
}

// PeerFromState returns the verified peer of a connection made with one of
// this package's TLS configs (for an HTTP handler, r.TLS).
func PeerFromState(cs *tls.ConnectionState) (Peer, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return Peer{}, errors.New("mesh: not a mutual TLS connection")
	}
	c := cs.PeerCertificates[0]
	id, err := CertSpiffeID(c)
	if err != nil {
		return Peer{}, err
	}
	return Peer{ID: id, URI: c.URIs[0].String(), Serial: certSerial(c.SerialNumber), Cert: c}, nil
}

func (s *Source) certificate() (*tls.Certificate, error) {
	l := s.leaf.Load()
	if l == nil {
		return nil, ErrNotReady
	}
	return l.Cert, nil
}

// serverCertificate is the leaf of the service sni names when the Source
// holds one (SetServedServices), else the Source's own.
func (s *Source) serverCertificate(sni string) (*tls.Certificate, error) {
	if svc, _, _, _, ok := ParseServiceSNI(sni); ok {
		if l := s.LeafFor(svc); l != nil {
			return l.Cert, nil
		}
		if l := s.LeafFor(strings.ToLower(svc)); l != nil {
			return l.Cert, nil
		}
	}
	return s.certificate()
}

// AuthorizeConn decides, during the handshake, whether a verified peer may
// connect; serverName is the SNI the client sent. ctx ends with the
// handshake. A nil AuthorizeConn admits every peer the CA vouches for, and
// leaves authorization to the handler (per request).
type AuthorizeConn func(ctx context.Context, peer Peer, serverName string) error

// ServerTLSConfig is the TLS config of a mesh server: it presents the
// current leaf of the service the client's SNI names (one added by
// SetServedServices), else the Source's own, requires a client certificate from the mesh's CA with a
// service SPIFFE ID, and calls authorize, when not nil, for each handshake.
func (s *Source) ServerTLSConfig(authorize AuthorizeConn) *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is verified against the current roots in
		// VerifyPeerCertificate, not a pool fixed here.
		ClientAuth: tls.RequireAnyClientCert,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.serverCertificate(hello.ServerName)
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := s.verify(raw, "")
			return err
		},
	}
	if authorize == nil {
		return base
	}
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.GetConfigForClient = nil
		ctx := hello.Context()
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			p, err := PeerFromState(&cs)
			if err != nil {
				return err
			}
			return authorize(ctx, p, cs.ServerName)
		}
		return c, nil
	}
	return base
}

// ClientTLSConfig is the TLS config of a mesh client calling target: it
// sends the target's SNI, presents the current leaf, and accepts only a
// server whose certificate is from the mesh's CA and names target.
func (s *Source) ClientTLSConfig(target string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: s.SNI(target),
		// The chain and the SPIFFE ID (instead of a DNS name) are verified
		// against the current roots in VerifyPeerCertificate.
		InsecureSkipVerify: true, //nolint:gosec // verified below
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.certificate()
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := s.verify(raw, target)
			return err
		},
	}
}
