package rabbitmq

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nimbus-fn/nimbus/gateway/sources"
)

// eventSource is Lambda's eventSource for RabbitMQ.
const eventSource = "aws:rmq"

// timestampLayout is how Lambda writes dates in RabbitMQ events (its poller
// serialises the Java client's properties with Gson: "Jan 1, 1970,
// 12:33:41 AM", UTC).
const timestampLayout = "Jan 2, 2006, 3:04:05 PM"

// event is Lambda's RabbitMQ event (aws-lambda-go's events.RabbitMQEvent).
type event struct {
	EventSource     string               `json:"eventSource"`
	EventSourceARN  string               `json:"eventSourceArn"`
	MessagesByQueue map[string][]message `json:"rmqMessagesByQueue"`
}

type message struct {
	BasicProperties *basicProperties `json:"basicProperties"`
	Redelivered     bool             `json:"redelivered"`
	Data            string           `json:"data"` // base64
}

// basicProperties are a message's AMQP properties as Lambda writes them:
// unset properties are null (amqp091 cannot tell an unset delivery mode or
// priority from 0, so 0 is written as null too).
type basicProperties struct {
	ContentType     *string        `json:"contentType"`
	ContentEncoding *string        `json:"contentEncoding"`
	Headers         map[string]any `json:"headers"`
	DeliveryMode    *uint8         `json:"deliveryMode"`
	Priority        *uint8         `json:"priority"`
	CorrelationID   *string        `json:"correlationId"`
	ReplyTo         *string        `json:"replyTo"`
	Expiration      *string        `json:"expiration"`
	MessageID       *string        `json:"messageId"`
	Timestamp       *string        `json:"timestamp"`
	Type            *string        `json:"type"`
	UserID          *string        `json:"userId"`
	AppID           *string        `json:"appId"`
	ClusterID       *string        `json:"clusterId"`
	BodySize        int            `json:"bodySize"`
}

// batchInfo is the on-failure record's RabbitMQBatchInfo.
type batchInfo struct {
	Queue       string   `json:"queue"`
	VirtualHost string   `json:"virtualHost"`
	BatchSize   int      `json:"batchSize"`
	MessageIDs  []string `json:"messageIds"`
}

// Event builds Lambda's aws:rmq event: the records under
// "<queue>::<vhost>", each with its basic properties, redelivered flag and
// base64 body.
func (s *Source) Event(recs []*sources.Record) (json.RawMessage, error) {
	if len(recs) == 0 {
		return nil, errors.New("rabbitmq: event for an empty batch")
	}
	msgs := make([]message, 0, len(recs))
	for _, r := range recs {
		h, err := handle(r)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, message{
			BasicProperties: h.props,
			Redelivered:     h.d.Redelivered,
			Data:            base64.StdEncoding.EncodeToString(h.d.Body),
		})
	}
	return json.Marshal(event{
		EventSource:     eventSource,
		EventSourceARN:  s.arn,
		MessagesByQueue: map[string][]message{s.queue + "::" + s.vhost: msgs},
	})
}

// BatchInfo is ("RabbitMQBatchInfo", the queue, vhost, batch size and the
// records' ids).
func (s *Source) BatchInfo(recs []*sources.Record) (string, any) {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return "RabbitMQBatchInfo", batchInfo{Queue: s.queue, VirtualHost: s.vhost, BatchSize: len(recs), MessageIDs: ids}
}

func properties(d amqp.Delivery) *basicProperties {
	p := &basicProperties{
		ContentType:     optional(d.ContentType),
		ContentEncoding: optional(d.ContentEncoding),
		DeliveryMode:    optionalByte(d.DeliveryMode),
		Priority:        optionalByte(d.Priority),
		CorrelationID:   optional(d.CorrelationId),
		ReplyTo:         optional(d.ReplyTo),
		Expiration:      optional(d.Expiration),
		MessageID:       optional(d.MessageId),
		Type:            optional(d.Type),
		UserID:          optional(d.UserId),
		AppID:           optional(d.AppId),
		BodySize:        len(d.Body),
	}
	if d.Headers != nil {
		p.Headers = table(d.Headers)
	}
	if !d.Timestamp.IsZero() {
		p.Timestamp = optional(d.Timestamp.UTC().Format(timestampLayout))
	}
	// amqp091 does not expose the deprecated cluster-id property.
	return p
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optionalByte(b uint8) *uint8 {
	if b == 0 {
		return nil
	}
	return &b
}

// longString is how Lambda writes an AMQP long string in headers: the Java
// client's LongString, {"bytes": [...]}, with Java's signed bytes.
type longString struct {
	Bytes []int8 `json:"bytes"`
}

func table(t amqp.Table) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = headerValue(v)
	}
	return out
}

// headerValue converts an AMQP field value to what Lambda writes for it.
func headerValue(v any) any {
	switch v := v.(type) {
	case string:
		return longString{Bytes: signed([]byte(v))}
	case []byte:
		return signed(v)
	case amqp.Table:
		return table(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = headerValue(e)
		}
		return out
	case time.Time:
		return v.UTC().Format(timestampLayout)
	case amqp.Decimal:
		return json.Number(decimal(v))
	case float32:
		return finite(float64(v))
	case float64:
		return finite(v)
	case nil, bool, int8, int16, int32, int64, int, uint8, uint16, uint32, uint64:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func signed(b []byte) []int8 {
	out := make([]int8, len(b))
	for i, c := range b {
		out[i] = int8(c)
	}
	return out
}

// finite keeps NaN and infinities (which JSON cannot hold) as strings.
func finite(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// decimal writes an AMQP decimal (value × 10^-scale) in plain notation.
func decimal(d amqp.Decimal) string {
	digits := strconv.FormatInt(int64(d.Value), 10)
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	if scale := int(d.Scale); scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		digits = "-" + digits
	}
	return digits
}

// filterView is the record as filter patterns see it: the event's
// basicProperties and redelivered, and the body under "data" — decoded
// when it is a JSON object, else as a string.
func filterView(p *basicProperties, d amqp.Delivery) map[string]any {
	var props map[string]any
	if b, err := json.Marshal(p); err == nil {
		_ = json.Unmarshal(b, &props)
	}
	return map[string]any{
		"basicProperties": props,
		"redelivered":     d.Redelivered,
		"data":            bodyView(d.Body),
	}
}

func bodyView(body []byte) any {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err == nil {
			return obj
		}
	}
	return string(body)
}
