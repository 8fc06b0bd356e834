// Command echo is a real aws-lambda-go function that returns its event
// unchanged (as raw JSON), for tests and benchmarks.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, ev json.RawMessage) (json.RawMessage, error) {
		if len(ev) == 0 {
			return json.RawMessage("null"), nil
		}
		return ev, nil
	})
}
