// Command rest-api is every function of this project in one binary: the
// spec gives each function a handler (create, get, list, delete), which
// the runtime passes in _HANDLER, and main starts that one. One binary
// means one build and one bundle for all four functions.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	handler, err := pick(os.Getenv("_HANDLER"), os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(handler)
}

// pick builds the handler called name from the environment (REDIS_URL,
// ITEMS_KEY).
func pick(name string, getenv func(string) string) (func(context.Context, request) (response, error), error) {
	url := getenv("REDIS_URL")
	if url == "" {
		return nil, fmt.Errorf("REDIS_URL is not set")
	}
	key := getenv("ITEMS_KEY")
	if key == "" {
		key = "items"
	}
	store, err := NewRedisStore(url, key)
	if err != nil {
		return nil, err
	}
	a := newAPI(store)
	switch name {
	case "create":
		return a.Create, nil
	case "get":
		return a.Get, nil
	case "list":
		return a.List, nil
	case "delete":
		return a.Delete, nil
	}
	return nil, fmt.Errorf("handler %q: want create, get, list or delete", name)
}
