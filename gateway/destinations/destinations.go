package destinations

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/specs"
)

// Kinds of destination, as metrics and logs name them.
const (
	KindFunction = "function"
	KindNATS     = "nats"
	KindKafka    = "kafka"
	KindWebhook  = "webhook"
)

// ErrKafkaNotBuilt: Kafka destinations are accepted by specs but this
// gateway has no Kafka producer.
var ErrKafkaNotBuilt = errors.New("kafka destinations are not built into this gateway")

// Message is what is delivered: a JSON body and headers.
type Message struct {
	Body    []byte
	Headers map[string]string
}

// FunctionEnqueuer queues an asynchronous invocation of ref ("name" or
// "name:qualifier") with payload as its event; it returns the request id.
type FunctionEnqueuer interface {
	EnqueueFunction(ctx context.Context, ref string, payload []byte) (string, error)
}

// Publisher publishes to a NATS subject.
type Publisher interface {
	Publish(ctx context.Context, subject string, body []byte, headers map[string]string) error
}

// Sender delivers messages. Functions and NATS may be nil when no
// destination of that kind is used.
type Sender struct {
	Functions FunctionEnqueuer
	NATS      Publisher
	// Kafka publishes to Kafka topics (nil: Kafka destinations are refused
	// with ErrKafkaNotBuilt).
	Kafka Publisher
	// HTTP posts to webhooks. Default: a client with a 10 s timeout.
	HTTP *http.Client
	// WebhookAttempts is how many times a webhook is tried. Default 3.
	WebhookAttempts int
	// WebhookBackoff is the wait before the second try, doubled after.
	// Default 200ms.
	WebhookBackoff time.Duration
}

// Kind names a destination's kind ("" for an empty destination).
func Kind(d *specs.Destination) string {
	switch {
	case d == nil:
		return ""
	case d.Function != "":
		return KindFunction
	case d.NATS != "":
		return KindNATS
	case d.Kafka != "":
		return KindKafka
	case d.Webhook != "":
		return KindWebhook
	}
	return ""
}

// Target is a destination's address for logs and status.
func Target(d *specs.Destination) string {
	switch Kind(d) {
	case KindFunction:
		return "function:" + d.Function
	case KindNATS:
		return "nats:" + d.NATS
	case KindKafka:
		return "kafka:" + d.Kafka
	case KindWebhook:
		return d.Webhook
	}
	return ""
}

// Send delivers m to d.
func (s *Sender) Send(ctx context.Context, d *specs.Destination, m Message) error {
	switch Kind(d) {
	case KindFunction:
		if s.Functions == nil {
			return errors.New("no function enqueuer configured")
		}
		if _, err := s.Functions.EnqueueFunction(ctx, d.Function, m.Body); err != nil {
			return fmt.Errorf("queueing function %s: %w", d.Function, err)
		}
		return nil
	case KindNATS:
		if s.NATS == nil {
			return errors.New("no NATS connection configured")
		}
		if err := s.NATS.Publish(ctx, d.NATS, m.Body, m.Headers); err != nil {
			return fmt.Errorf("publishing to %s: %w", d.NATS, err)
		}
		return nil
	case KindKafka:
		if s.Kafka == nil {
			return fmt.Errorf("topic %s: %w", d.Kafka, ErrKafkaNotBuilt)
		}
		if err := s.Kafka.Publish(ctx, d.Kafka, m.Body, m.Headers); err != nil {
			return fmt.Errorf("publishing to kafka topic %s: %w", d.Kafka, err)
		}
		return nil
	case KindWebhook:
		return s.post(ctx, d.Webhook, m)
	}
	return errors.New("empty destination")
}

func (s *Sender) post(ctx context.Context, url string, m Message) error {
	client := s.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	attempts := s.WebhookAttempts
	if attempts < 1 {
		attempts = 3
	}
	wait := s.WebhookBackoff
	if wait <= 0 {
		wait = 200 * time.Millisecond
	}
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("posting to %s: %w (last: %w)", url, ctx.Err(), last)
			case <-t.C:
			}
			wait *= 2
		}
		if last = s.postOnce(ctx, client, url, m); last == nil {
			return nil
		}
	}
	return fmt.Errorf("posting to %s (%d attempts): %w", url, attempts, last)
}

func (s *Sender) postOnce(ctx context.Context, client *http.Client, url string, m Message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(m.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range m.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Parse reads a destination as the Lambda APIs write it: a function ARN
// starting with functionARNPrefix ("arn:aws:lambda:<region>:<account>:function:"),
// function:<name>[:qualifier], nats:<subject>, kafka:<topic> or an http(s)
// URL (a webhook). ok is false for anything else.
func Parse(s, functionARNPrefix string) (d *specs.Destination, ok bool) {
	switch {
	case strings.HasPrefix(s, "arn:"):
		if fn, found := strings.CutPrefix(s, functionARNPrefix); found && fn != "" {
			return &specs.Destination{Function: fn}, true
		}
	case strings.HasPrefix(s, "function:") && len(s) > len("function:"):
		return &specs.Destination{Function: s[len("function:"):]}, true
	case strings.HasPrefix(s, "nats:") && len(s) > len("nats:"):
		return &specs.Destination{NATS: s[len("nats:"):]}, true
	case strings.HasPrefix(s, "kafka:") && len(s) > len("kafka:"):
		return &specs.Destination{Kafka: s[len("kafka:"):]}, true
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		if u, err := url.ParseRequestURI(s); err == nil && u.Host != "" {
			return &specs.Destination{Webhook: s}, true
		}
	}
	return nil, false
}

// Format writes d as Parse reads it; functions as their ARN
// (functionARN(name, qualifier)). Nil or empty gives "".
func Format(d *specs.Destination, functionARN func(name, qualifier string) string) string {
	switch Kind(d) {
	case KindFunction:
		name, q, _ := strings.Cut(d.Function, ":")
		return functionARN(name, q)
	case KindNATS:
		return "nats:" + d.NATS
	case KindKafka:
		return "kafka:" + d.Kafka
	case KindWebhook:
		return d.Webhook
	}
	return ""
}
