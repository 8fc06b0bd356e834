package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/nimbus-fn/nimbus/gateway/console"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// consoleClient is a browser's view of the console: a session cookie and
// its CSRF token.
type consoleClient struct {
	t      *testing.T
	base   string
	cookie *http.Cookie
	csrf   string
	http   *http.Client
}

func (c *consoleClient) do(method, path string, body []byte, header map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	if c.csrf != "" && method != http.MethodGet {
		req.Header.Set(console.CSRFHeader, c.csrf)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (c *consoleClient) getJSON(path string, out any) {
	c.t.Helper()
	resp, b := c.do(http.MethodGet, path, nil, nil)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		c.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// TestDevConsoleLogsMetricsAndTestEvents runs nimbus dev with an access key
// and a real aws-lambda-go function, logs in to the console and uses what
// its pages use: the Invoke API with the session, the log tail (recent,
// filtered by request id, and live over SSE), the metrics history and
// saved test events.
func TestDevConsoleLogsMetricsAndTestEvents(t *testing.T) {
	dir := t.TempDir()
	bootstrap, err := os.ReadFile(filepath.Join(testfn.Dir(t, "logs"), "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{
		"nimbus.hcl":     "function \"talker\" {\n  runtime = \"provided.al2023\"\n  handler = \"bootstrap\"\n  code {\n    dir = \"code\"\n  }\n}\n",
		"code/bootstrap": string(bootstrap),
	})
	conf := filepath.Join(t.TempDir(), "gateway.hcl")
	writeTree(t, filepath.Dir(conf), map[string]string{filepath.Base(conf): "region = \"eu-west-1\"\n\naccess_key \"AKIDCONSOLE\" {\n  secret = \"console-test-secret\"\n}\n"})
	dev := startDev(t, map[string]string{envStateDir: filepath.Join(dir, "state")}, "--config", conf, dir)
	if dev.console != dev.endpoint+"/console/" {
		t.Fatalf("nimbus dev printed console %q, want %s/console/", dev.console, dev.endpoint)
	}
	c := &consoleClient{t: t, base: dev.endpoint, http: &http.Client{Timeout: 60 * time.Second}}

	// The application loads without a login; the data does not.
	if resp, b := c.do(http.MethodGet, "/console/functions/talker", nil, nil); resp.StatusCode != 200 || !bytes.Contains(b, []byte("<html")) {
		t.Fatalf("console page: %d %s", resp.StatusCode, b)
	}
	if resp, _ := c.do(http.MethodGet, "/nimbus/v1/functions/talker/logs", nil, nil); resp.StatusCode != 403 {
		t.Fatalf("logs without a session: %d, want 403", resp.StatusCode)
	}
	body, _ := json.Marshal(map[string]string{"accessKeyId": "AKIDCONSOLE", "secretAccessKey": "console-test-secret"})
	resp, b := c.do(http.MethodPost, console.LoginPath, body, map[string]string{"Content-Type": "application/json"})
	var info console.SessionInfo
	_ = json.Unmarshal(b, &info)
	if resp.StatusCode != 200 || info.Mode != "dev" || !info.AuthRequired || info.Region != "eu-west-1" {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == console.CookieName {
			c.cookie = ck
		}
	}
	c.csrf = info.CSRFToken

	// One invocation signed by the SDK, one through the session.
	sdk := lambda.New(lambda.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(dev.endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDCONSOLE", SecretAccessKey: "console-test-secret"}, nil
		}),
	})
	out, err := sdk.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("talker"), Payload: []byte(`{"say":"hello","warn":"careful"}`)})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("SDK invoke: %v %+v\n%s", err, out, dev.stderr)
	}
	first, _ := awsmw.GetRequestIDMetadata(out.ResultMetadata)
	resp, b = c.do(http.MethodPost, "/2015-03-31/functions/talker/invocations", []byte(`{"say":"second"}`), nil)
	second := resp.Header.Get("X-Amzn-Requestid")
	if resp.StatusCode != 200 || string(b) != `"logged"` || first == "" || second == "" {
		t.Fatalf("invoke with the session: %d %s (request ids %q %q)", resp.StatusCode, b, first, second)
	}

	// Recent lines, across the function's instances.
	var logs struct {
		Events []console.LogEvent `json:"events"`
	}
	has := func(stream, id, msg string) bool {
		for _, e := range logs.Events {
			if e.Stream == stream && e.RequestID == id && strings.HasPrefix(e.Message, msg) && e.Version == "$LATEST" && e.Instance != "" {
				return true
			}
		}
		return false
	}
	gatewaytest.Eventually(t, 10*time.Second, func() bool {
		c.getJSON("/nimbus/v1/functions/talker/logs", &logs)
		return has("stdout", first, "hello "+first) && has("stderr", first, "careful "+first) &&
			has("platform", first, "START RequestId: "+first) && has("platform", second, "REPORT RequestId: "+second) &&
			has("stdout", second, "second "+second)
	}, "the log tail shows both invocations' lines: %+v", &logs)
	c.getJSON("/nimbus/v1/functions/talker/logs?requestId="+second, &logs)
	if len(logs.Events) < 4 {
		t.Errorf("filtered by request id: %+v", logs.Events)
	}
	for _, e := range logs.Events {
		if e.RequestID != second {
			t.Errorf("filter by %s answered %+v", second, e)
		}
	}
	if resp, b := c.do(http.MethodGet, "/nimbus/v1/functions/nobody/logs", nil, nil); resp.StatusCode != 404 {
		t.Errorf("logs of an unknown function: %d %s", resp.StatusCode, b)
	}

	// Live: an SSE stream shows a new invocation's lines; a reconnecting
	// EventSource (Last-Event-ID) goes on after the last line it had.
	type sse struct {
		id string
		ev console.LogEvent
	}
	open := func(ctx context.Context, query, lastID string) chan sse {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, dev.endpoint+"/nimbus/v1/functions/talker/logs"+query, nil)
		req.AddCookie(c.cookie)
		req.Header.Set("Accept", "text/event-stream")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		stream, err := (&http.Client{}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if stream.StatusCode != 200 || stream.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("SSE: %d %s", stream.StatusCode, stream.Header.Get("Content-Type"))
		}
		lines := make(chan sse, 100)
		go func() {
			defer stream.Body.Close()
			sc := bufio.NewScanner(stream.Body)
			id := ""
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
					id = v
				}
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					var e console.LogEvent
					if json.Unmarshal([]byte(data), &e) == nil {
						lines <- sse{id, e}
					}
				}
			}
			close(lines)
		}()
		return lines
	}
	await := func(lines chan sse, id, msg string) sse {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("the SSE stream ended")
				}
				if l.ev.RequestID == id && l.ev.Message == msg {
					return l
				}
			case <-deadline:
				t.Fatalf("no line %q of %s on the SSE stream", msg, id)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := open(ctx, "?since="+time.Now().UTC().Format(time.RFC3339Nano), "")
	resp, _ = c.do(http.MethodPost, "/2015-03-31/functions/talker/invocations", []byte(`{"say":"live"}`), nil)
	third := resp.Header.Get("X-Amzn-Requestid")
	seen := await(lines, third, "live "+third)
	cancel()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	again := open(ctx, "", seen.id)
	resp, _ = c.do(http.MethodPost, "/2015-03-31/functions/talker/invocations", []byte(`{"say":"after"}`), nil)
	fourth := resp.Header.Get("X-Amzn-Requestid")
	first1 := <-again
	if !first1.ev.Time.After(seen.ev.Time) {
		t.Errorf("after reconnecting with Last-Event-ID %s the stream repeated %+v", seen.id, first1.ev)
	}
	if first1.ev.RequestID != fourth || first1.ev.Message != "after "+fourth {
		await(again, fourth, "after "+fourth)
	}
	cancel()

	// Metrics: the summary and the history count the invocations.
	var sum struct {
		Functions map[string]console.Totals `json:"functions"`
	}
	c.getJSON("/nimbus/v1/metrics/summary?window=15m", &sum)
	if got := sum.Functions["talker"]; got.Invocations != 4 || got.Errors != 0 {
		t.Errorf("summary: %+v", sum)
	}
	var hist console.Series
	c.getJSON("/nimbus/v1/metrics/history?function=talker&window=1h", &hist)
	var n, cold int64
	var p50 float64
	for _, p := range hist.Points {
		n += p.Invocations
		cold += p.ColdStarts
		p50 = max(p50, p.DurationP50Ms)
	}
	if hist.Step != 10 || len(hist.Points) != 360 || n != 4 || cold != 1 || p50 <= 0 {
		t.Errorf("history: step %d, %d points, %d invocations, %d cold starts, p50 %v", hist.Step, len(hist.Points), n, cold, p50)
	}

	// Test events: saved in the dev store, listed, read, deleted.
	if resp, b := c.do(http.MethodPut, "/nimbus/v1/functions/talker/test-events/greeting", []byte(`{"say":"saved"}`), nil); resp.StatusCode != 200 {
		t.Fatalf("put test event: %d %s", resp.StatusCode, b)
	}
	noCSRF := *c
	noCSRF.csrf = ""
	if resp, b := noCSRF.do(http.MethodPut, "/nimbus/v1/functions/talker/test-events/greeting", []byte(`{}`), nil); resp.StatusCode != 403 {
		t.Errorf("put without the CSRF token: %d %s", resp.StatusCode, b)
	}
	if resp, b := c.do(http.MethodPut, "/nimbus/v1/functions/nobody/test-events/greeting", []byte(`{}`), nil); resp.StatusCode != 404 {
		t.Errorf("test event of an unknown function: %d %s", resp.StatusCode, b)
	}
	if resp, b := c.do(http.MethodPut, "/nimbus/v1/functions/talker/test-events/bad", []byte(`{not json`), nil); resp.StatusCode != 400 {
		t.Errorf("a test event that is not JSON: %d %s", resp.StatusCode, b)
	}
	var list struct {
		Events []console.TestEvent `json:"events"`
	}
	c.getJSON("/nimbus/v1/functions/talker/test-events", &list)
	if len(list.Events) != 1 || list.Events[0].Name != "greeting" || string(list.Events[0].Event) != `{"say":"saved"}` || list.Events[0].Modified.IsZero() {
		t.Errorf("test events: %+v", list.Events)
	}
	var one console.TestEvent
	c.getJSON("/nimbus/v1/functions/talker/test-events/greeting", &one)
	if string(one.Event) != `{"say":"saved"}` {
		t.Errorf("test event: %+v", one)
	}
	if resp, b := c.do(http.MethodDelete, "/nimbus/v1/functions/talker/test-events/greeting", nil, nil); resp.StatusCode != 204 {
		t.Errorf("delete: %d %s", resp.StatusCode, b)
	}
	if resp, _ := c.do(http.MethodGet, "/nimbus/v1/functions/talker/test-events/greeting", nil, nil); resp.StatusCode != 404 {
		t.Errorf("deleted test event: %d", resp.StatusCode)
	}

	// Logout ends the session for every route.
	if resp, _ := c.do(http.MethodPost, console.LogoutPath, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := c.do(http.MethodGet, "/2015-03-31/functions", nil, nil); resp.StatusCode != 403 {
		t.Errorf("ListFunctions after logout: %d, want 403", resp.StatusCode)
	}
}
