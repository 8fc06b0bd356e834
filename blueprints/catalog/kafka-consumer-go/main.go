// Command kafka-consumer processes batches of orders from a Kafka topic.
// Each record's value is a JSON order; a record that cannot be processed is
// reported in batchItemFailures (by its offset, the identifier Nimbus gives
// Kafka records), so Nimbus retries from it instead of the whole batch.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// order is what producers write to the topic.
type order struct {
	OrderID string  `json:"order_id"`
	Amount  float64 `json:"amount"`
}

// process handles one record. Replace it with your own work.
func process(r events.KafkaRecord) error {
	value, err := base64.StdEncoding.DecodeString(r.Value)
	if err != nil {
		return fmt.Errorf("value is not base64: %w", err)
	}
	var o order
	if err := json.Unmarshal(value, &o); err != nil {
		return fmt.Errorf("value is not an order: %w", err)
	}
	if o.OrderID == "" || o.Amount <= 0 {
		return errors.New("order needs an order_id and a positive amount")
	}
	log.Printf("order %s: %.2f (%s-%d@%d)", o.OrderID, o.Amount, r.Topic, r.Partition, r.Offset)
	return nil
}

func handle(_ context.Context, ev events.KafkaEvent) (events.KinesisEventResponse, error) {
	// An empty list, not null: every record succeeded.
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	for partition, records := range ev.Records {
		for _, r := range records {
			if err := process(r); err != nil {
				log.Printf("%s offset %d: %v", partition, r.Offset, err)
				resp.BatchItemFailures = append(resp.BatchItemFailures,
					events.KinesisBatchItemFailure{ItemIdentifier: strconv.FormatInt(r.Offset, 10)})
			}
		}
	}
	return resp, nil
}

func main() {
	lambda.Start(handle)
}
