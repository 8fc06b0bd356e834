// Command redis-consumer processes entries of a Redis stream in order.
// Nimbus's Redis event (see the types below) has each entry's fields, and
// its data field (or, without one, the JSON of all fields) base64-encoded in
// data. Entries are ordered, so on the first failure the handler stops and
// names that entry and every later one in batchItemFailures: Nimbus
// acknowledges the entries before it and retries from it. Name every entry
// you did not process: when the retries run out, Nimbus acknowledges the
// batch and treats the entries not named as processed; the named ones go to
// the on_failure destination.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// Event is the event Nimbus's redis event source sends.
type Event struct {
	EventSource    string        `json:"eventSource"`    // "nimbus:redis"
	EventSourceArn string        `json:"eventSourceArn"` // "redis://host:6379/0/orders", without credentials
	Records        []EventRecord `json:"records"`
}

// EventRecord is one stream entry.
type EventRecord struct {
	Stream    string            `json:"stream"`
	ID        string            `json:"id"`        // "1718000000000-0": the itemIdentifier
	Timestamp int64             `json:"timestamp"` // Unix milliseconds
	Fields    map[string]string `json:"fields"`
	Data      []byte            `json:"data"` // base64 in the JSON; encoding/json decodes it
}

// order is what producers XADD (as the data field: XADD orders * data '{…}').
type order struct {
	OrderID string  `json:"order_id"`
	Amount  float64 `json:"amount"`
}

// process handles one entry. Replace it with your own work.
func process(r EventRecord) error {
	var o order
	if err := json.Unmarshal(r.Data, &o); err != nil {
		return fmt.Errorf("data is not an order: %w", err)
	}
	if o.OrderID == "" || o.Amount <= 0 {
		return errors.New("order needs an order_id and a positive amount")
	}
	log.Printf("order %s: %.2f (entry %s)", o.OrderID, o.Amount, r.ID)
	return nil
}

func handle(_ context.Context, ev Event) (events.KinesisEventResponse, error) {
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	for i, r := range ev.Records {
		if err := process(r); err != nil {
			log.Printf("entry %s: %v", r.ID, err)
			for _, rest := range ev.Records[i:] { // this one and the unprocessed rest
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: rest.ID})
			}
			break
		}
	}
	return resp, nil
}

func main() {
	lambda.Start(handle)
}
