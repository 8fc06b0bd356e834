// Command slowinit is a real aws-lambda-go function with a noticeable init
// phase: before lambda.Start it sleeps SLOWINIT_MS milliseconds (default
// 200), as a function that loads a model or opens connections would. Each
// invocation answers how its environment was initialised
// (AWS_LAMBDA_INITIALIZATION_TYPE), its process id and how many
// invocations this environment has served, including this one. An event
// {"wait_for": "/path"} holds the invocation until that file exists, or,
// for an http:// URL, until a GET of it answers 200 (an isolated function
// sees no host files) — or the invocation's deadline — so a test can keep
// an environment busy.
package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// Report is the function's answer.
type Report struct {
	InitializationType string `json:"initialization_type"`
	PID                int    `json:"pid"`
	Invocations        int    `json:"invocations"`
	InitMs             int    `json:"init_ms"`
}

type event struct {
	WaitFor string `json:"wait_for"`
}

func main() {
	ms := 200
	if v, err := strconv.Atoi(os.Getenv("SLOWINIT_MS")); err == nil && v >= 0 {
		ms = v
	}
	time.Sleep(time.Duration(ms) * time.Millisecond) // the init work itself
	n := 0
	lambda.Start(func(ctx context.Context, ev event) (*Report, error) {
		n++ // one invocation at a time per environment
		for ev.WaitFor != "" {
			if open(ev.WaitFor) {
				break
			}
			select {
			case <-ctx.Done():
				return nil, errors.New("gave up waiting for " + ev.WaitFor)
			case <-time.After(5 * time.Millisecond):
			}
		}
		return &Report{
			InitializationType: os.Getenv("AWS_LAMBDA_INITIALIZATION_TYPE"),
			PID:                os.Getpid(),
			Invocations:        n,
			InitMs:             ms,
		}, nil
	})
}

// open reports whether the gate is open: the file exists, or the URL
// answers 200.
func open(gate string) bool {
	if strings.HasPrefix(gate, "http://") {
		resp, err := http.Get(gate)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	_, err := os.Stat(gate)
	return err == nil
}
