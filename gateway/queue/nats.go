package queue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nimbus-fn/nimbus/gateway/natsembed"
)

// JetStream names shared by every gateway on one NATS system.
const (
	// StreamName holds queued events, one message per event on
	// SubjectPrefix.<function>.<request id>. Work-queue retention: an
	// acknowledged event is gone.
	StreamName = "NIMBUS_ASYNC"
	// SubjectPrefix starts every event subject.
	SubjectPrefix = "nimbus.async"
	// ConsumerName is the durable pull consumer all gateways share (work
	// sharing: each event goes to one worker at a time).
	ConsumerName = "nimbus-async-workers"
	// StatusBucket is the KV bucket of invocation statuses.
	StatusBucket = "nimbus_async_status"
)

// Message sizes. NATS limits a message's headers and data together, so the
// stream and the server must leave room for the envelope around the
// largest payload: with nats-server's default max_payload (1 MiB) a payload
// within ~120 bytes of 1 MiB was refused with "maximum payload exceeded".
const (
	// MaxEventSize is the largest Event payload (Lambda's 1 MB since 2025).
	MaxEventSize = 1 << 20
	// MaxEventHeaders bounds an event's headers on the stream: function,
	// qualifier, trace and tenant ids and JetStream's message id.
	MaxEventHeaders = 64 << 10
	// MaxMessageSize is the largest stream message, payload and headers:
	// the stream's max_msg_size and the embedded server's max_payload. An
	// external NATS must allow at least this (max_payload: 1114112).
	MaxMessageSize = MaxEventSize + MaxEventHeaders
)

// NATS is the gateway's connection to NATS: an embedded server it runs
// (natsembed, shared with other JetStream users in the process) or an
// external cluster. Either way every connection authenticates: with the
// embedded server's token, or with the credentials of the queue config.
type NATS struct {
	// Conn is the gateway's client connection (in-process when embedded).
	Conn *nats.Conn
	// Embedded is the embedded server (nil with an external URL).
	Embedded *natsembed.Server
	url      string        // external: the configured URLs
	opts     []nats.Option // external: credentials and TLS
	tempDir  string
}

// ConnectNATS starts the embedded server in cfg.DataDir (a temporary
// directory in dev mode without one) or connects to cfg.URL. cfg must have
// passed Validate.
func ConnectNATS(cfg *Config, logger hclog.Logger) (*NATS, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	n := &NATS{}
	var err error
	if cfg.URL != "" {
		n.url = cfg.URL
		if n.opts, err = externalOptions(cfg); err != nil {
			return nil, err
		}
		if !cfg.HasCredentials() {
			logger.Warn("the external NATS is used WITHOUT credentials: anyone who can reach it can read and forge async events and replace artifacts; set nats_token, nats_nkey_seed_file, nats_creds_file or a client certificate",
				"url", RedactURL(cfg.URL), "nats_insecure", cfg.Insecure)
		}
		if n.Conn, err = n.Connect("nimbus-gateway"); err != nil {
			return nil, err
		}
		if mp := n.Conn.MaxPayload(); mp < MaxMessageSize {
			logger.Warn("the NATS servers' max_payload is below the largest async event with its headers; events near 1 MiB will be refused",
				"max_payload", mp, "needed", MaxMessageSize)
		}
		return n, nil
	}
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "nimbus-queue-"); err != nil {
			return nil, fmt.Errorf("creating a temporary queue dir: %w", err)
		}
		n.tempDir = dir
		logger.Info("queue data_dir not set: events live in a temporary directory and do not survive a restart", "dir", dir)
	}
	// A token derived from the cluster key is the same after a restart (an
	// operator holding the key can compute it); without a key, Start makes
	// a random one for this process.
	var token string
	if len(cfg.ClusterKey) > 0 {
		token = natsembed.DeriveToken(cfg.ClusterKey)
	}
	if n.Embedded, err = natsembed.Start(natsembed.Config{Dir: dir, Listen: cfg.Listen, Token: token, MaxPayload: MaxMessageSize}); err != nil {
		n.Close()
		return nil, err
	}
	if n.Conn, err = n.Embedded.Connect("nimbus-gateway"); err != nil {
		n.Close()
		return nil, err
	}
	logger.Info("embedded NATS JetStream started (clients need its token)", "address", n.Embedded.Addr(), "dir", dir)
	return n, nil
}

// Connect opens another client connection named name with the gateway's
// credentials: in-process to the embedded server, or to the external
// cluster with the configured credentials and TLS.
func (n *NATS) Connect(name string) (*nats.Conn, error) {
	if n.Embedded != nil {
		return n.Embedded.Connect(name)
	}
	opts := append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1)}, n.opts...)
	nc, err := nats.Connect(n.url, opts...)
	if err != nil {
		hint := ""
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			hint = " (the server refused the gateway's credentials: check the queue block's nats_token, nats_token_file, nats_nkey_seed_file, nats_creds_file or the user in nats_url)"
		}
		return nil, fmt.Errorf("connecting to NATS at %s: %w%s", RedactURL(n.url), err, hint)
	}
	return nc, nil
}

// ClientURL is the URL, with credentials, another client on this host
// connects to the embedded server with ("" with an external cluster, whose
// credentials are not a URL). It carries a secret: never log it.
func (n *NATS) ClientURL() string {
	if n.Embedded == nil {
		return ""
	}
	return n.Embedded.ClientURL()
}

// externalOptions are the credential and TLS options for cfg.URL.
func externalOptions(cfg *Config) ([]nats.Option, error) {
	var opts []nats.Option
	token := cfg.Token
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("queue nats_token_file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, fmt.Errorf("queue nats_token_file %s is empty", cfg.TokenFile)
		}
	}
	if token != "" {
		opts = append(opts, nats.Token(token))
	}
	if cfg.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("queue nats_nkey_seed_file: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.CAFile != "" || cfg.CertFile != "" || cfg.ServerName != "" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// tlsConfig builds the client TLS configuration of the queue config.
func tlsConfig(cfg *Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("queue nats_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("queue nats_ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("queue nats_cert_file and nats_key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Close closes the connection and stops the embedded server.
func (n *NATS) Close() {
	if n.Conn != nil {
		_ = n.Conn.Flush()
		n.Conn.Close()
	}
	if n.Embedded != nil {
		n.Embedded.Shutdown()
	}
	if n.tempDir != "" {
		_ = os.RemoveAll(n.tempDir)
	}
}

// conn is the queue's JetStream handles on a NATS connection.
type conn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	cons    jetstream.Consumer
	kv      jetstream.KeyValue
	configs jetstream.KeyValue
}

// open creates or updates the stream, the consumer and the status bucket.
func open(ctx context.Context, cfg *Config, nc *nats.Conn) (*conn, error) {
	c := &conn{nc: nc}
	var err error
	if c.js, err = jetstream.New(nc); err != nil {
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	c.stream, err = c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "nimbus async invocations (one message per queued event)",
		Subjects:    []string{SubjectPrefix + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxMsgs:     cfg.MaxEvents,
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  MaxMessageSize,
		Duplicates:  2 * time.Minute,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", StreamName, err)
	}
	c.cons, err = c.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "nimbus gateways' async workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWaitD,
		MaxDeliver:    -1,
		MaxAckPending: 100_000,
		MaxWaiting:    4096,
		Replicas:      cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s: %w", ConsumerName, err)
	}
	c.kv, err = c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StatusBucket,
		Description: "nimbus async invocation status by function and request id",
		TTL:         cfg.RetentionD,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("creating status bucket %s: %w", StatusBucket, err)
	}
	c.configs, err = c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ConfigBucket,
		Description: "nimbus event invoke configs set through the API, by function and qualifier",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("creating config bucket %s: %w", ConfigBucket, err)
	}
	return c, nil
}
