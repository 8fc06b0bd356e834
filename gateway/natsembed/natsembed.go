package natsembed

import (
	"errors"
	"fmt"
	"net"
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
	// Default "127.0.0.1:0" (loopback only).
	Listen string
	// Name is the server name. Default "nimbus-gateway".
	Name string
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default 30s.
	ReadyTimeout time.Duration
	// MaxPayload is the largest message (headers and data) a client may
	// publish. Default 1 MiB, nats-server's own default.
	MaxPayload int32
}

// Defaults fills empty fields.
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
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	return host, port, nil
}

// Server is a running embedded NATS server with JetStream.
type Server struct {
	srv *natsserver.Server
}

// Start validates cfg, starts the server and waits until it accepts
// connections.
func Start(cfg Config) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, port, _ := splitListen(cfg.Listen)
	s, err := natsserver.NewServer(&natsserver.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true,
		NoLog:      true,
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
	return &Server{srv: s}, nil
}

// ClientURL is the nats:// URL other processes (or gateways) connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Connect opens an in-process client connection (no TCP) named name.
func (s *Server) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.srv), nats.Name(name), nats.MaxReconnects(-1))
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
