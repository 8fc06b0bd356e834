// Command async-worker handles jobs that arrive as asynchronous
// invocations: it works out the size an image is scaled to so that its
// longer side fits max_side. Returning a result sends an invocation record
// with it to the on_success destination; returning an error makes Nimbus
// retry the event and, when the retries are spent, send it to on_failure
// and the dead-letter target.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// job is the event a producer sends (nimbus invoke --async, the Invoke API
// with InvocationType Event, or another function's destination).
type job struct {
	JobID   string `json:"job_id"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	MaxSide int    `json:"max_side"`
}

// result is the function's response: on_success destinations receive it as
// responsePayload.
type result struct {
	JobID  string `json:"job_id"`
	Status string `json:"status"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// fit scales w×h down (never up) so that the longer side is at most max,
// keeping the aspect ratio and rounding to the nearest pixel.
func fit(w, h, max int) (int, int) {
	long := w
	if h > long {
		long = h
	}
	if long <= max {
		return w, h
	}
	scale := func(n int) int { return (n*max + long/2) / long }
	return scale(w), scale(h)
}

func handle(ctx context.Context, j job) (result, error) {
	if j.JobID == "" {
		return result{}, fmt.Errorf("job has no job_id")
	}
	if j.Width <= 0 || j.Height <= 0 {
		return result{}, fmt.Errorf("job %s: width and height must be positive", j.JobID)
	}
	if j.MaxSide <= 0 {
		return result{}, fmt.Errorf("job %s: max_side must be positive", j.JobID)
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		log.Printf("job %s (request %s)", j.JobID, lc.AwsRequestID)
	}
	w, h := fit(j.Width, j.Height, j.MaxSide)
	return result{JobID: j.JobID, Status: "done", Width: w, Height: h}, nil
}

func main() {
	lambda.Start(handle)
}
