// Command batch is a real aws-lambda-go function for event-source tests. It
// reads the batch shapes Nimbus sends (Kafka, RabbitMQ, and the records
// list of NATS and Redis), appends one JSON line per invocation to the file
// named by BATCH_LOG — the payloads it got, in order — and fails on records
// whose payload contains "poison": with a function error, or, when
// BATCH_REPORT=1, by naming them in batchItemFailures. BATCH_SLEEP_MS
// makes each invocation take that long after logging.
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

type item struct {
	id      string
	payload string
}

func main() {
	lambda.Start(func(_ context.Context, ev map[string]any) (any, error) {
		items := extract(ev)
		payloads := make([]string, len(items))
		for i, it := range items {
			payloads[i] = it.payload
		}
		if path := os.Getenv("BATCH_LOG"); path != "" {
			line, _ := json.Marshal(payloads)
			if err := appendLog(path, append(line, '\n')); err != nil {
				return nil, err
			}
		}
		if ms, _ := strconv.Atoi(os.Getenv("BATCH_SLEEP_MS")); ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		var failed []map[string]string
		for _, it := range items {
			if strings.Contains(it.payload, "poison") {
				failed = append(failed, map[string]string{"itemIdentifier": it.id})
			}
		}
		if len(failed) == 0 {
			return map[string]any{"batchItemFailures": []any{}}, nil
		}
		if os.Getenv("BATCH_REPORT") == "1" {
			return map[string]any{"batchItemFailures": failed}, nil
		}
		return nil, errors.New("poison record in batch")
	})
}

// extract lists the batch's records in event order.
func extract(ev map[string]any) []item {
	var out []item
	switch {
	case ev["rmqMessagesByQueue"] != nil:
		byQueue, _ := ev["rmqMessagesByQueue"].(map[string]any)
		for _, q := range sortedKeys(byQueue) {
			msgs, _ := byQueue[q].([]any)
			for _, m := range msgs {
				mm, _ := m.(map[string]any)
				props, _ := mm["basicProperties"].(map[string]any)
				out = append(out, item{id: str(props["messageId"]), payload: decode(mm["data"])})
			}
		}
	case ev["eventSource"] == "SelfManagedKafka" || ev["eventSource"] == "aws:kafka":
		byPart, _ := ev["records"].(map[string]any)
		for _, k := range sortedKeys(byPart) {
			recs, _ := byPart[k].([]any)
			for _, r := range recs {
				rm, _ := r.(map[string]any)
				out = append(out, item{id: str(rm["offset"]), payload: decode(rm["value"])})
			}
		}
	default:
		recs, _ := ev["records"].([]any)
		for _, r := range recs {
			rm, _ := r.(map[string]any)
			id := str(rm["id"])
			if id == "" {
				id = str(rm["sequence"])
			}
			out = append(out, item{id: id, payload: decode(rm["data"])})
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func decode(v any) string {
	s, _ := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return s
	}
	return string(b)
}

// appendLog appends b to the file path or, for an http:// URL (what
// isolated functions, which do not see the host's files, are given), POSTs
// it there (see testfn.LogURL).
func appendLog(path string, b []byte) error {
	if strings.HasPrefix(path, "http://") {
		resp, err := http.Post(path, "application/json", bytes.NewReader(b))
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
