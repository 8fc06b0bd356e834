// Command crash is a real aws-lambda-go function that exits mid-invocation
// with the event's "code" as its status, without reporting an error.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Code int `json:"code"`
}

func main() {
	lambda.Start(func(_ context.Context, ev event) (string, error) {
		if ev.Code == 0 {
			return "alive", nil
		}
		fmt.Fprintf(os.Stderr, "crashing with status %d\n", ev.Code)
		os.Exit(ev.Code)
		return "", nil
	})
}
