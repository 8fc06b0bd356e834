// Command panic is a real aws-lambda-go function that panics: aws-lambda-go
// posts the panic as an error and then the process exits.
package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) (string, error) {
		fmt.Println("about to panic")
		panic("boom")
	})
}
