// Command scheduled runs an hourly job. Nimbus invokes it with EventBridge's
// scheduled event; the event's time is the tick (not the moment it runs),
// so the job's window is derived from it and a retried or late run covers
// the same hour. The event id is the same when a tick is fired again after
// a failover: use it to drop duplicates if the job is not idempotent.
package main

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// result is what a run returns (and what on_success destinations would get).
type result struct {
	EventID     string    `json:"event_id"`
	Rule        string    `json:"rule"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
}

// window is the hour before the tick.
func window(tick time.Time) (time.Time, time.Time) {
	end := tick.UTC().Truncate(time.Hour)
	return end.Add(-time.Hour), end
}

func handle(_ context.Context, ev events.EventBridgeEvent) (result, error) {
	if ev.DetailType != "Scheduled Event" || ev.Time.IsZero() {
		return result{}, errors.New("not a scheduled event: want detail-type \"Scheduled Event\" with a time")
	}
	start, end := window(ev.Time)
	r := result{EventID: ev.ID, WindowStart: start, WindowEnd: end}
	if len(ev.Resources) > 0 {
		r.Rule = ev.Resources[0]
	}
	// Your job goes here: summarise [start, end), send a report, clean up.
	log.Printf("run %s for %s to %s", ev.ID, start.Format(time.RFC3339), end.Format(time.RFC3339))
	return r, nil
}

func main() {
	lambda.Start(handle)
}
