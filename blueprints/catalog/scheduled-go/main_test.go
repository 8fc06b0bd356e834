package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestWindowIsTheHourBeforeTheTick(t *testing.T) {
	tick := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{tick, tick.Add(59 * time.Second)} { // a late run covers the same hour
		ev := events.EventBridgeEvent{ID: "x", DetailType: "Scheduled Event", Time: at,
			Resources: []string{"arn:aws:events:us-east-1:123456789012:rule/hourly"}}
		r, err := handle(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if !r.WindowStart.Equal(tick.Add(-time.Hour)) || !r.WindowEnd.Equal(tick) || r.Rule != ev.Resources[0] {
			t.Fatalf("at %s: %+v", at, r)
		}
	}
}

func TestRejectsOtherEvents(t *testing.T) {
	if _, err := handle(context.Background(), events.EventBridgeEvent{DetailType: "Object Created", Time: time.Now()}); err == nil {
		t.Fatal("an S3 event was accepted")
	}
	if _, err := handle(context.Background(), events.EventBridgeEvent{DetailType: "Scheduled Event"}); err == nil {
		t.Fatal("an event without a time was accepted")
	}
}

func TestSampleEvent(t *testing.T) {
	b, err := os.ReadFile("events/scheduled.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	r, err := handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.WindowEnd.Format(time.RFC3339); got != "2026-12-03T06:00:00Z" {
		t.Fatalf("window end %s", got)
	}
}
