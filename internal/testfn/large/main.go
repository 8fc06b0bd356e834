// Command large is a real aws-lambda-go function that answers with exactly
// the event's "bytes" bytes (a raw io.Reader response, no JSON quoting).
package main

import (
	"context"
	"io"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Bytes int `json:"bytes"`
}

func main() {
	lambda.Start(func(_ context.Context, ev event) (io.Reader, error) {
		return strings.NewReader(strings.Repeat("x", ev.Bytes)), nil
	})
}
