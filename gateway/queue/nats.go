package queue

import (
	"context"
	"fmt"
	"os"
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
// external cluster.
type NATS struct {
	// Conn is the gateway's client connection (in-process when embedded).
	Conn *nats.Conn
	// Embedded is the embedded server (nil with an external URL).
	Embedded *natsembed.Server
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
		if n.Conn, err = nats.Connect(cfg.URL, nats.Name("nimbus-gateway"), nats.MaxReconnects(-1)); err != nil {
			return nil, fmt.Errorf("connecting to NATS at %s: %w", cfg.URL, err)
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
	if n.Embedded, err = natsembed.Start(natsembed.Config{Dir: dir, Listen: cfg.Listen, MaxPayload: MaxMessageSize}); err != nil {
		n.Close()
		return nil, err
	}
	if n.Conn, err = n.Embedded.Connect("nimbus-gateway"); err != nil {
		n.Close()
		return nil, err
	}
	logger.Info("embedded NATS JetStream started", "url", n.Embedded.ClientURL(), "dir", dir)
	return n, nil
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
