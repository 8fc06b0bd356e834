// Command urlstream is a real aws-lambda-go function URL handler for
// RESPONSE_STREAM tests (lambdaurl, http-integration-response prelude). It
// writes a first line, then waits until the "gate" query parameter opens (a
// file that exists, or an http:// URL that answers 200), then writes a second line, so a test can prove the first
// line reached the client while the function was still running.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdaurl"
)

func main() {
	lambdaurl.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Stream", "yes")
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "1"})
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "first %s\n", r.URL.Path)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		gate := r.URL.Query().Get("gate")
		deadline := time.Now().Add(20 * time.Second)
		for gate != "" && time.Now().Before(deadline) {
			if strings.HasPrefix(gate, "http://") {
				if resp, err := http.Get(gate); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
			} else if _, err := os.Stat(gate); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Fprintln(w, "second")
	}))
}
