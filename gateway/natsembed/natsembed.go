package natsembed

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config configures the embedded server.
type Config struct {
	// Dir is JetStream's store directory. Required.
	Dir string
	// Listen is the client listener, host:port; port 0 picks a free port.
	// The host must be a loopback address: the embedded server serves this
	// process and local tools, never the network. Default "127.0.0.1:0".
	Listen string
	// Token is the secret every client connection must present, in-process
	// ones included. Default: a random token made by Start (see
	// DeriveToken for one that survives a restart).
	Token string
	// Name is the server name. Default "nimbus-gateway".
	Name string
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default 30s.
	ReadyTimeout time.Duration
	// MaxPayload is the largest message (headers and data) a client may
	// publish. Default 1 MiB, nats-server's own default.
	MaxPayload int32
}

// minTokenLen is the shortest token Validate accepts.
const minTokenLen = 16

// Defaults fills empty fields (except Token, which Start makes).
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.Name == "" {
		c.Name = "nimbus-gateway"
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = 1 << 20
	}
}

// Validate reports a config Start cannot use.
func (c *Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("embedded NATS needs a store directory"))
	}
	if _, _, err := splitListen(c.Listen); err != nil {
		errs = append(errs, err)
	}
	if c.Token != "" && len(c.Token) < minTokenLen {
		errs = append(errs, fmt.Errorf("embedded NATS token must be at least %d characters", minTokenLen))
	}
	if c.MaxPayload < 0 || c.MaxPayload > 64<<20 {
		errs = append(errs, fmt.Errorf("embedded NATS max payload %d must be between 1 and 64 MiB", c.MaxPayload))
	}
	return errors.Join(errs...)
}

func splitListen(listen string) (string, int, error) {
	host, portS, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("embedded NATS listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("embedded NATS listen %q: bad port", listen)
	}
	if !IsLoopback(host) {
		return "", 0, fmt.Errorf("embedded NATS listen %q: the host must be a loopback address (127.0.0.1, ::1 or localhost); use an external NATS cluster to share one across hosts", listen)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	return host, port, nil
}

// IsLoopback reports whether host (no port) names the loopback interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokenLabel makes the NATS token a different secret from every other one
// derived from the same cluster key (instances' invoke secrets).
const tokenLabel = "nimbus-embedded-nats\x00"

// DeriveToken returns the embedded server's token for a cluster key:
// HMAC-SHA256 of a fixed label, in hex. Whoever holds the key can compute
// it; the token reveals nothing of the key.
func DeriveToken(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tokenLabel))
	return hex.EncodeToString(m.Sum(nil))
}

// RandomToken returns a token of 32 random bytes in hex.
func RandomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a NATS token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Server is a running embedded NATS server with JetStream.
type Server struct {
	srv   *natsserver.Server
	token string
}

// Start validates cfg, starts the server and waits until it accepts
// connections. Every client must present cfg.Token (a random one when
// empty).
func Start(cfg Config) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Token == "" {
		t, err := RandomToken()
		if err != nil {
			return nil, err
		}
		cfg.Token = t
	}
	host, port, _ := splitListen(cfg.Listen)
	s, err := natsserver.NewServer(&natsserver.Options{
		ServerName:    cfg.Name,
		Host:          host,
		Port:          port,
		Authorization: cfg.Token,
		JetStream:     true,
		StoreDir:      cfg.Dir,
		MaxPayload:    cfg.MaxPayload,
		NoSigs:        true,
		NoLog:         true,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(cfg.ReadyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("embedded NATS not ready within %s", cfg.ReadyTimeout)
	}
	return &Server{srv: s, token: cfg.Token}, nil
}

// Addr is the listener's nats:// URL without credentials: safe to log, not
// enough to connect.
func (s *Server) Addr() string { return s.srv.ClientURL() }

// ClientURL is the nats:// URL other processes connect to, with the token
// as its user part (nats.go sends it as the auth token). It carries the
// secret: hand it to clients, never log it.
func (s *Server) ClientURL() string {
	u, err := url.Parse(s.srv.ClientURL())
	if err != nil {
		return s.srv.ClientURL()
	}
	u.User = url.User(s.token)
	return u.String()
}

// Token is the secret clients present.
func (s *Server) Token() string { return s.token }

// Connect opens an in-process client connection (no TCP) named name.
func (s *Server) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.srv), nats.Token(s.token), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connecting to embedded NATS: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it is down.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
