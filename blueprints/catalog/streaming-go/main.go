// Command streaming answers through a RESPONSE_STREAM function URL with a
// plain net/http handler: aws-lambda-go's lambdaurl package turns the
// function URL event into an *http.Request and streams what the handler
// writes, status and headers first. Each Flush sends what was written so
// far to the client.
//
//	GET /?items=3  →  {"item":1,"of":3}\n{"item":2,"of":3}\n{"item":3,"of":3}\n{"done":true}\n
package main

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/aws/aws-lambda-go/lambdaurl"
)

const maxItems = 1000

type progress struct {
	Item int `json:"item"`
	Of   int `json:"of"`
}

// handler streams one NDJSON line per item. Replace the loop body with
// work whose results the client should see as soon as each is ready.
func handler(w http.ResponseWriter, r *http.Request) {
	n := 5
	if s := r.URL.Query().Get("items"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxItems {
			http.Error(w, "items must be a number from 1 to "+strconv.Itoa(maxItems), http.StatusBadRequest)
			return
		}
		n = v
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	for i := 1; i <= n; i++ {
		if r.Context().Err() != nil { // the client went away
			return
		}
		_ = enc.Encode(progress{Item: i, Of: n})
		if flusher != nil {
			flusher.Flush()
		}
	}
	_ = enc.Encode(map[string]bool{"done": true})
}

func main() {
	lambdaurl.Start(http.HandlerFunc(handler))
}
