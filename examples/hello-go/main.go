// Command hello-go is the smallest Nimbus function: an aws-lambda-go
// handler for the provided.al2023 runtime. Build it as an executable named
// bootstrap (GOOS=linux go build -o bootstrap .) next to nimbus.hcl.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

type request struct {
	Name string `json:"name"`
}

type response struct {
	Message string `json:"message"`
}

func main() {
	lambda.Start(func(_ context.Context, req request) (response, error) {
		if req.Name == "" {
			req.Name = "world"
		}
		return response{Message: "hello, " + req.Name}, nil
	})
}
