// Command stamp is a real aws-lambda-go function for event-source
// benchmarks. For every record of the batch it gets (the Kafka event's
// "records" map of partitions with base64 "value", or the "records" list
// with base64 "data" that NATS and Redis mappings send) it appends the
// line "<payload>\t<unix nanos>\n" to the file named by STAMP_LOG, the time
// being when the invocation started (a batch's records are seen at once).
// The lines of one invocation go out in one write, so concurrent
// invocations never interleave within a line. It answers
// {"batchItemFailures":[]}.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// record is one element of either shape.
type record struct {
	Value string `json:"value"` // Kafka
	Data  string `json:"data"`  // NATS, Redis
}

// records reads "records" as a list, or as Kafka's map of partitions
// (taken in key order).
type records []record

func (rs *records) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var byPart map[string][]record
		if err := json.Unmarshal(b, &byPart); err != nil {
			return err
		}
		keys := make([]string, 0, len(byPart))
		for k := range byPart {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			*rs = append(*rs, byPart[k]...)
		}
		return nil
	}
	var list []record
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*rs = list
	return nil
}

type event struct {
	Records records `json:"records"`
}

func main() {
	path := os.Getenv("STAMP_LOG")
	lambda.Start(func(_ context.Context, ev event) (map[string]any, error) {
		now := strconv.FormatInt(time.Now().UnixNano(), 10)
		if path == "" {
			return nil, errors.New("STAMP_LOG is not set")
		}
		var buf []byte
		for i, r := range ev.Records {
			p := r.Value
			if p == "" {
				p = r.Data
			}
			b, err := base64.StdEncoding.DecodeString(p)
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			buf = append(buf, b...)
			buf = append(buf, '\t')
			buf = append(buf, now...)
			buf = append(buf, '\n')
		}
		if err := appendLog(path, buf); err != nil {
			return nil, err
		}
		return map[string]any{"batchItemFailures": []any{}}, nil
	})
}

// appendLog appends b to the file path or, for an http:// URL (what
// isolated functions, which do not see the host's files, are given), POSTs
// it there (see testfn.LogURL).
func appendLog(path string, b []byte) error {
	if strings.HasPrefix(path, "http://") {
		resp, err := http.Post(path, "text/plain", bytes.NewReader(b))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("log collector: %s", resp.Status)
		}
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
