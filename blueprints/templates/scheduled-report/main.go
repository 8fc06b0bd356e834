// Command report is the scheduled report function: on every tick of the
// spec's schedule it checks the URLs in CHECK_URLS and returns the report,
// which goes to the on_success destination; it also logs a summary.
package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	urls, err := ParseURLs(os.Getenv("CHECK_URLS"))
	if err != nil {
		log.Fatal(err)
	}
	r := &Reporter{
		URLs:     urls,
		Timeout:  5 * time.Second,
		Parallel: 8,
		Client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
	}
	lambda.Start(func(ctx context.Context, ev events.EventBridgeEvent) (Report, error) {
		rep, err := r.Run(ctx, ev)
		if err == nil {
			log.Print(rep.Summary())
		}
		return rep, err
	})
}
