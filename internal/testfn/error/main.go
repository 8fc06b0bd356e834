// Command error is a real aws-lambda-go function that fails with a handled
// error of type MyErr (errorType "MyErr" on the wire).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

// MyErr is the function's error type; aws-lambda-go reports its type name.
type MyErr struct{ Msg string }

func (e *MyErr) Error() string { return e.Msg }

func main() {
	lambda.Start(func(context.Context) (string, error) {
		return "", &MyErr{Msg: "custom failure"}
	})
}
