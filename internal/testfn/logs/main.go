// Command logs is a real aws-lambda-go function that writes the event's
// "say" to stdout and "warn" to stderr (each on its own line, with the
// request id appended), for the log tail's tests.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Say  string `json:"say"`
	Warn string `json:"warn"`
}

func main() {
	lambda.Start(func(ctx context.Context, ev event) (string, error) {
		id := ""
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			id = lc.AwsRequestID
		}
		if ev.Say != "" {
			fmt.Printf("%s %s\n", ev.Say, id)
		}
		if ev.Warn != "" {
			fmt.Fprintf(os.Stderr, "%s %s\n", ev.Warn, id)
		}
		return "logged", nil
	})
}
