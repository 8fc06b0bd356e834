// Command sigterm is a real aws-lambda-go function started with
// lambda.WithEnableSIGTERM: it registers an internal extension through the
// Extensions API and prints "sigterm received" when the platform sends SIGTERM.
package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.StartWithOptions(func(context.Context) (string, error) { return "ok", nil },
		lambda.WithEnableSIGTERM(func() { fmt.Println("sigterm received") }))
}
