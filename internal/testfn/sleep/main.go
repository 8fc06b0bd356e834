// Command sleep is a real aws-lambda-go function that sleeps for the event's
// "ms" milliseconds (ignoring its deadline), to run past a timeout.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Ms int `json:"ms"`
}

func main() {
	lambda.Start(func(_ context.Context, ev event) (string, error) {
		fmt.Printf("sleeping %d ms\n", ev.Ms)
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return "slept", nil
	})
}
