// Command initexit is a real aws-lambda-go function whose init fails: it
// exits with status 3 before it ever asks for an invocation.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	fmt.Fprintln(os.Stderr, "init: missing configuration, exiting")
	if os.Getenv("INITEXIT_OK") == "" {
		os.Exit(3)
	}
	lambda.Start(func(context.Context) (string, error) { return "ok", nil })
}
