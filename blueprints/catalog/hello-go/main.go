// Command hello answers with a greeting, called directly ({"name":"Ada"})
// or through its function URL (GET /?name=Ada).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

// request covers both ways in: a direct invoke's {"name":…} and a function
// URL event's query string (payload format 2.0).
type request struct {
	Name                  string            `json:"name"`
	QueryStringParameters map[string]string `json:"queryStringParameters"`
}

type response struct {
	Message string `json:"message"`
}

// handle is the function. Through a function URL, a JSON object without a
// statusCode becomes a 200 response with the object as its body.
func handle(_ context.Context, req request) (response, error) {
	name := req.Name
	if name == "" {
		name = req.QueryStringParameters["name"]
	}
	if name == "" {
		name = "world"
	}
	return response{Message: "hello, " + name}, nil
}

func main() {
	lambda.Start(handle)
}
