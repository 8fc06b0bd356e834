package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strconv"
	"time"
)

// NATSEvent is the batch a Nimbus `nats` event source sends
// (docs/events/nats.md in Nimbus).
type NATSEvent struct {
	EventSource    string       `json:"eventSource"`
	EventSourceArn string       `json:"eventSourceArn"`
	Records        []NATSRecord `json:"records"`
}

// NATSRecord is one message; Data arrives base64-encoded and encoding/json
// decodes it into bytes.
type NATSRecord struct {
	Stream    string              `json:"stream"`
	Subject   string              `json:"subject"`
	Sequence  uint64              `json:"sequence"`
	Timestamp time.Time           `json:"timestamp"`
	Headers   map[string][]string `json:"headers"`
	Data      []byte              `json:"data"`
}

// BatchResponse reports the records that failed; the event source
// (report_batch_item_failures = true) retries only those.
type BatchResponse struct {
	BatchItemFailures []ItemFailure `json:"batchItemFailures"`
}

// ItemFailure names a failed record by its stream sequence.
type ItemFailure struct {
	ItemIdentifier string `json:"itemIdentifier"`
}

// Publisher sends a processed order on; *nats.Conn is one.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// Process prices each order of a batch and publishes the result to
// Results. An order that cannot be priced is reported as failed: after the
// event source's retries run out its coordinates go to the on_failure
// destination of the spec.
type Process struct {
	Out     Publisher
	Results string
}

func (p *Process) Handle(_ context.Context, ev NATSEvent) (BatchResponse, error) {
	resp := BatchResponse{BatchItemFailures: []ItemFailure{}}
	for _, r := range ev.Records {
		if err := p.one(r); err != nil {
			log.Printf("record %d: %v", r.Sequence, err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, ItemFailure{ItemIdentifier: strconv.FormatUint(r.Sequence, 10)})
		}
	}
	log.Printf("batch of %d: %d failed", len(ev.Records), len(resp.BatchItemFailures))
	return resp, nil
}

func (p *Process) one(r NATSRecord) error {
	var o Order
	if err := json.Unmarshal(r.Data, &o); err != nil {
		return fmt.Errorf("not an order: %w", err)
	}
	if err := o.Check(); err != nil {
		return err
	}
	total, err := Price(o)
	if err != nil {
		return fmt.Errorf("order %s: %w", o.ID, err)
	}
	b, err := json.Marshal(Priced{ID: o.ID, Customer: o.Customer, TotalCents: total, Sequence: r.Sequence})
	if err != nil {
		return err
	}
	if err := p.Out.Publish(p.Results, b); err != nil {
		return errors.Join(fmt.Errorf("order %s: publishing the result", o.ID), err)
	}
	return nil
}
