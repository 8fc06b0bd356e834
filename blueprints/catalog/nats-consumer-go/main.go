// Command nats-consumer processes batches of orders from a NATS JetStream
// stream. Nimbus's NATS event (see the types below) carries each message's
// payload base64-encoded in data; a message that cannot be processed is
// reported in batchItemFailures by its stream sequence.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// NATSEvent is the event Nimbus's nats event source sends.
type NATSEvent struct {
	EventSource    string            `json:"eventSource"`    // "nimbus:nats"
	EventSourceArn string            `json:"eventSourceArn"` // "nats:<stream>[:<subject filter>]"
	Records        []NATSEventRecord `json:"records"`
}

// NATSEventRecord is one JetStream message.
type NATSEventRecord struct {
	Stream    string              `json:"stream"`
	Subject   string              `json:"subject"`
	Sequence  uint64              `json:"sequence"`  // the stream sequence: the itemIdentifier
	Timestamp time.Time           `json:"timestamp"` // when the server stored it
	Headers   map[string][]string `json:"headers"`
	Data      []byte              `json:"data"` // base64 in the JSON; encoding/json decodes it
}

// order is what publishers send.
type order struct {
	OrderID string  `json:"order_id"`
	Amount  float64 `json:"amount"`
}

// process handles one message. Replace it with your own work.
func process(r NATSEventRecord) error {
	var o order
	if err := json.Unmarshal(r.Data, &o); err != nil {
		return fmt.Errorf("payload is not an order: %w", err)
	}
	if o.OrderID == "" || o.Amount <= 0 {
		return errors.New("order needs an order_id and a positive amount")
	}
	log.Printf("order %s: %.2f (%s #%d)", o.OrderID, o.Amount, r.Subject, r.Sequence)
	return nil
}

func handle(_ context.Context, ev NATSEvent) (events.KinesisEventResponse, error) {
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	for _, r := range ev.Records {
		if err := process(r); err != nil {
			log.Printf("%s #%d: %v", r.Subject, r.Sequence, err)
			resp.BatchItemFailures = append(resp.BatchItemFailures,
				events.KinesisBatchItemFailure{ItemIdentifier: strconv.FormatUint(r.Sequence, 10)})
		}
	}
	return resp, nil
}

func main() {
	lambda.Start(handle)
}
