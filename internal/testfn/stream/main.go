// Command stream is a real aws-lambda-go function that answers with an
// io.Reader, which aws-lambda-go sends as a chunked body as it is read. It
// writes "chunk-1\n", then waits until the event's "gate" opens — a file
// that exists, or an http:// URL that answers 200 (reachable from inside an
// isolated environment, which does not see the host's files) — so a test
// can prove the first chunk arrived before the rest was written, then
// writes "chunk-2\n"; with "fail" set the reader then fails, which
// aws-lambda-go reports as error trailers.
package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Gate string `json:"gate"`
	Fail bool   `json:"fail"`
}

type reader struct {
	ev   event
	step int
}

func (r *reader) Read(p []byte) (int, error) {
	r.step++
	switch r.step {
	case 1:
		return copy(p, "chunk-1\n"), nil
	case 2:
		for r.ev.Gate != "" && !open(r.ev.Gate) {
			time.Sleep(5 * time.Millisecond)
		}
		return copy(p, "chunk-2\n"), nil
	}
	if r.ev.Fail {
		return 0, errors.New("boom mid-stream")
	}
	return 0, io.EOF
}

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

func main() {
	lambda.Start(func(_ context.Context, ev event) (io.Reader, error) {
		return &reader{ev: ev}, nil
	})
}
