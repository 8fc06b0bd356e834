package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/specs"
)

// jsonOfSize is a JSON string document of exactly n bytes.
func jsonOfSize(n int) []byte {
	b := bytes.Repeat([]byte("a"), n)
	b[0], b[n-1] = '"', '"'
	return b
}

// Item 8 of issue 11, end to end on the gateway's embedded NATS: an Event
// invoke of exactly 1 MiB is accepted (202) and runs with the same bytes;
// 1 MiB + 1 is refused with 413 RequestEntityTooLargeException, the code
// AWS answers (the SDK model calls it RequestTooLargeException).
func TestAsyncPayloadAtTheExactLimit(t *testing.T) {
	got := make(chan []byte, 1)
	in := gatewaytest.StartInstance(t, "big", catalog.Latest, 1, "", func(w http.ResponseWriter, r *http.Request, p []byte) {
		got <- p
		gatewaytest.Echo(w, r, []byte(`"ok"`))
	})
	src := gatewaytest.NewSource()
	src.Set("big", catalog.Latest, in.Discovery("b1", discovery.GroupOnDemand))
	s := startServer(t, &config.Config{Dev: true, Listen: "127.0.0.1:0"}, src, &specs.Function{Name: "big", EnvironmentsPerInstance: 1})
	post := func(body []byte) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, invokeURL("http://"+s.Addr(), "big"), bytes.NewReader(body))
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		req.Header.Set("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	payload := jsonOfSize(queue.MaxEventSize)
	resp, b := post(payload)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Fatalf("%d byte Event invoke: %d %s", len(payload), resp.StatusCode, b)
	}
	select {
	case p := <-got:
		if !bytes.Equal(p, payload) {
			t.Fatalf("the function got %d bytes, want the %d sent", len(p), len(payload))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the 1 MiB event did not reach the function")
	}

	resp, b = post(jsonOfSize(queue.MaxEventSize + 1))
	var e struct{ Type, Message string }
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("X-Amzn-Errortype") != "RequestEntityTooLargeException" ||
		e.Type != "User" || e.Message != "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)" {
		t.Fatalf("1 MiB + 1 Event invoke: %d %s %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), b)
	}
}
