package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// TestAsyncSurvivesGatewayKill runs `nimbus dev` as a separate process with
// a queue data dir, queues a few thousand events, SIGKILLs the gateway while
// it drains them, starts it again on the same data dir and checks that every
// accepted event (every 202) was processed at least once: the echo
// function's on_success webhook must see each request id.
func TestAsyncSurvivesGatewayKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs thousands of invocations")
	}
	const events = 3000
	bin := buildNimbus(t)
	dir := t.TempDir()

	// The webhook records the request id of each success record.
	var mu sync.Mutex
	seen := map[string]int{}
	deliveries := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec queue.Record
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &rec); err != nil || rec.RequestContext.Condition != queue.ConditionSuccess {
			t.Errorf("bad record %s: %v", b, err)
		}
		mu.Lock()
		seen[rec.RequestContext.RequestID]++
		deliveries++
		mu.Unlock()
	}))
	defer hook.Close()
	processed := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}

	spec := `function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "echo") + `" }
  async {
    max_retries = 0
    on_success {
      webhook = "` + hook.URL + `"
    }
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "gateway.hcl")
	if err := os.WriteFile(conf, []byte(`queue {
  data_dir = "`+filepath.Join(t.TempDir(), "queue")+`"
  ack_wait = "3s"
  workers  = 8
}
`), 0o644); err != nil {
		t.Fatal(err)
	}

	start := func() *nimbusProc {
		return startNimbusProc(t, exec.Command(bin, "dev", "--listen", "127.0.0.1:0", "--config", conf, "--log-level", "warn", dir))
	}

	gw := start()
	endpoint := gw.endpoint

	// Queue events from 16 clients; keep the ids of those answered 202.
	var accepted sync.Map
	var wg sync.WaitGroup
	next := make(chan int)
	client := &http.Client{Timeout: 10 * time.Second}
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, _ := http.NewRequest("POST", endpoint+"/2015-03-31/functions/echo/invocations", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
				req.Header.Set("X-Amz-Invocation-Type", "Event")
				resp, err := client.Do(req)
				if err != nil {
					continue // the gateway died under this request: not accepted
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					accepted.Store(resp.Header.Get("X-Amzn-Requestid"), true)
				}
			}
		}()
	}
	for i := 0; i < events; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	total := 0
	accepted.Range(func(any, any) bool { total++; return true })
	if total != events {
		t.Fatalf("%d of %d events accepted before the kill", total, events)
	}

	// Kill the gateway mid-drain.
	eventually(t, 60*time.Second, func() bool { return processed() >= 100 }, "the drain to start")
	gw.kill()
	before := processed()
	if before >= total {
		t.Fatalf("every event finished before the kill (%d); nothing left to prove", before)
	}
	t.Logf("killed the gateway with %d of %d events processed", before, total)

	gw2 := start()
	defer func() { _ = gw2.stop(syscall.SIGTERM) }()
	eventually(t, 3*time.Minute, func() bool { return processed() >= total }, "every accepted event processed after the restart")
	var missing []string
	accepted.Range(func(k, _ any) bool {
		mu.Lock()
		n := seen[k.(string)]
		mu.Unlock()
		if n == 0 {
			missing = append(missing, k.(string))
		}
		return true
	})
	if len(missing) > 0 {
		t.Fatalf("%d accepted events never processed (e.g. %s)\n%s", len(missing), missing[0], gw2.stderr)
	}
	mu.Lock()
	t.Logf("%d events, %d deliveries (%d duplicates: at-least-once)", total, deliveries, deliveries-len(seen))
	extra := len(seen) - total
	mu.Unlock()
	if extra != 0 {
		t.Errorf("%d processed request ids were never accepted", extra)
	}
}
