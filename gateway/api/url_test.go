package api_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/specs"
)

// event is the payload format 2.0 fields the tests read.
type event struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters"`
	Body                  *string           `json:"body"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
	RequestContext        struct {
		AccountID  string `json:"accountId"`
		DomainName string `json:"domainName"`
		Stage      string `json:"stage"`
		TimeEpoch  int64  `json:"timeEpoch"`
		Authorizer *struct {
			IAM struct {
				AccessKey string `json:"accessKey"`
			} `json:"iam"`
		} `json:"authorizer"`
		HTTP struct {
			Method   string `json:"method"`
			Path     string `json:"path"`
			SourceIP string `json:"sourceIp"`
		} `json:"http"`
	} `json:"requestContext"`
}

func urlFunction(name string, cfg *specs.URLConfig) *catalog.Function {
	s := fnSpec(name)
	s.URL = cfg
	return &catalog.Function{Name: name, Versions: map[string]*specs.Function{catalog.Latest: s}}
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestURLEventPayloadFormat(t *testing.T) {
	e := newEnv(t, []*catalog.Function{
		urlFunction("web", &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"}),
		urlFunction("Mixed", &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"}),
	}, nil)
	// The echo double returns the event itself: JSON without statusCode, so
	// the URL answers 200 application/json with it verbatim.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/url/web/hello/world?b=2&a=1&a=3", strings.NewReader(`{"k":"v"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	// The gateway's own session cookie never reaches the function.
	req.Header.Set("Cookie", "c1=v1; nimbus_console=session-id; c2=v2")
	resp, body := do(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q, body %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var ev event
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Version != "2.0" || ev.RouteKey != "$default" || ev.RequestContext.Stage != "$default" {
		t.Fatalf("placeholders: %+v", ev)
	}
	if ev.RawPath != "/hello/world" || ev.RequestContext.HTTP.Path != "/hello/world" || ev.RawQueryString != "b=2&a=1&a=3" {
		t.Fatalf("path/query: %q %q %q", ev.RawPath, ev.RequestContext.HTTP.Path, ev.RawQueryString)
	}
	if ev.QueryStringParameters["a"] != "1,3" || ev.QueryStringParameters["b"] != "2" {
		t.Fatalf("query parameters: %v", ev.QueryStringParameters)
	}
	if ev.Headers["x-multi"] != "one,two" || ev.Headers["content-type"] != "application/json" || ev.Headers["x-forwarded-proto"] != "http" || ev.Headers["x-amzn-trace-id"] == "" {
		t.Fatalf("headers: %v", ev.Headers)
	}
	if len(ev.Cookies) != 2 || ev.Cookies[0] != "c1=v1" || ev.Cookies[1] != "c2=v2" || ev.Headers["cookie"] != "c1=v1; c2=v2" {
		t.Fatalf("cookies: %v / %q", ev.Cookies, ev.Headers["cookie"])
	}
	if ev.Body == nil || *ev.Body != `{"k":"v"}` || ev.IsBase64Encoded {
		t.Fatalf("body: %v %v", ev.Body, ev.IsBase64Encoded)
	}
	if ev.RequestContext.AccountID != account || ev.RequestContext.HTTP.Method != "POST" || ev.RequestContext.HTTP.SourceIP != "127.0.0.1" || ev.RequestContext.TimeEpoch == 0 {
		t.Fatalf("request context: %+v", ev.RequestContext)
	}
	if ev.RequestContext.Authorizer != nil {
		t.Fatalf("auth NONE must not carry an authorizer")
	}

	// GET without body or query: body and queryStringParameters omitted;
	// host-based addressing.
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
	req.Host = "web." + urlDomain
	resp, body = do(t, req)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil || resp.StatusCode != 200 {
		t.Fatalf("host-based GET: %d %s", resp.StatusCode, body)
	}
	for _, k := range []string{"body", "queryStringParameters", "cookies"} {
		if _, ok := raw[k]; ok {
			t.Fatalf("%s present on a bare GET: %s", k, body)
		}
	}
	if string(raw["rawQueryString"]) != `""` {
		t.Fatalf("rawQueryString = %s", raw["rawQueryString"])
	}

	// Host names are case-insensitive: a mixed-case function name still
	// answers on its lower-cased host.
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/x", nil)
	req.Host = "mixed." + urlDomain
	if resp, body := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("host-based URL of Mixed: %d %s", resp.StatusCode, body)
	}

	// Binary bodies travel base64.
	req, _ = http.NewRequest(http.MethodPut, e.srv.URL+"/url/web/bin", strings.NewReader("\x00\x01\xff"))
	req.Header.Set("Content-Type", "application/octet-stream")
	_, body = do(t, req)
	ev = event{}
	_ = json.Unmarshal([]byte(body), &ev)
	if !ev.IsBase64Encoded || ev.Body == nil || *ev.Body != "AAH/" {
		t.Fatalf("binary body: %v %v", ev.Body, ev.IsBase64Encoded)
	}

	// Unknown function → 404.
	resp, _ = do(t, mustReq(http.MethodGet, e.srv.URL+"/url/nope/"))
	if resp.StatusCode != 404 {
		t.Fatalf("unknown URL function: %d", resp.StatusCode)
	}
}

func mustReq(method, u string) *http.Request {
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return r
}

func TestURLStructuredResponseAndCORS(t *testing.T) {
	structured := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Fn":"1","Access-Control-Allow-Origin":"https://evil.example"},"cookies":["a=b; Max-Age=10","c=d"],"body":"aGVsbG8=","isBase64Encoded":true}`))
	}
	cors := &specs.CORS{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET", "POST"},
		AllowHeaders: []string{"x-custom"}, ExposeHeaders: []string{"x-fn"}, MaxAge: 300}
	e := newEnv(t, []*catalog.Function{urlFunction("web", &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED", CORS: cors})},
		map[string]gatewaytest.Handler{"web": structured})
	req := mustReq(http.MethodGet, e.srv.URL+"/url/web/x")
	req.Header.Set("Origin", "https://app.example")
	resp, body := do(t, req)
	if resp.StatusCode != 201 || body != "hello" || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Fn") != "1" {
		t.Fatalf("structured: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) != 2 || c[0] != "a=b; Max-Age=10" {
		t.Fatalf("cookies: %v", c)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Fatalf("configured CORS must win, got %q", got)
	}
	if got := resp.Header.Get("Access-Control-Expose-Headers"); got != "x-fn" {
		t.Fatalf("expose headers %q", got)
	}

	pre := mustReq(http.MethodOptions, e.srv.URL+"/url/web/x")
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	resp, _ = do(t, pre)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Methods") != "GET,POST" ||
		resp.Header.Get("Access-Control-Allow-Headers") != "x-custom" || resp.Header.Get("Access-Control-Max-Age") != "300" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if n := e.router.PoolStats(); len(n) != 1 {
		t.Fatalf("pools %+v", n)
	}

	other := mustReq(http.MethodGet, e.srv.URL+"/url/web/x")
	other.Header.Set("Origin", "https://other.example")
	resp, _ = do(t, other)
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://evil.example" {
		// An origin outside the config gets no CORS headers from the URL layer.
		t.Fatalf("unlisted origin: allow-origin %q", got)
	}
}

func TestURLFunctionErrorIs502AndThrottleIs429(t *testing.T) {
	fn := urlFunction("web", &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"})
	zero := 0
	throttled := urlFunction("off", &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"})
	throttled.Versions[catalog.Latest].ReservedConcurrency = &zero
	e := newEnv(t, []*catalog.Function{fn, throttled}, map[string]gatewaytest.Handler{"web": failing})
	resp, _ := do(t, mustReq(http.MethodGet, e.srv.URL+"/url/web/"))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("function error status %d, want 502", resp.StatusCode)
	}
	resp, _ = do(t, mustReq(http.MethodGet, e.srv.URL+"/url/off/"))
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("reserved 0 status %d, want 429", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got != "" {
		t.Fatalf("reserved 0 suggests Retry-After %q; no retry can succeed", got)
	}
}

// Item 13 of issue 11: a function URL throttled by a busy reserved
// concurrency suggests a retry after a second.
func TestURLThrottleCarriesRetryAfter(t *testing.T) {
	one := 1
	fn := urlFunction("busy", &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED"})
	fn.Versions[catalog.Latest].ReservedConcurrency = &one
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	e := newEnv(t, []*catalog.Function{fn}, map[string]gatewaytest.Handler{"busy": func(w http.ResponseWriter, r *http.Request, p []byte) {
		entered <- struct{}{}
		<-release
		gatewaytest.Echo(w, r, []byte(`"done"`))
	}})
	first := make(chan string, 1)
	go func() {
		resp, err := http.Get(e.srv.URL + "/url/busy/")
		if err != nil {
			first <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- string(b)
	}()
	<-entered
	resp, body := do(t, mustReq(http.MethodGet, e.srv.URL+"/url/busy/"))
	close(release)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("second call on reserved 1: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if got := <-first; got != `"done"` {
		t.Fatalf("first call: %q", got)
	}
}

func TestURLAWSIAM(t *testing.T) {
	e := newEnv(t, []*catalog.Function{urlFunction("priv", &specs.URLConfig{Auth: "AWS_IAM", InvokeMode: "BUFFERED"})}, nil)
	resp, _ := do(t, mustReq(http.MethodGet, e.srv.URL+"/url/priv/x"))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned AWS_IAM request: %d", resp.StatusCode)
	}
	payload := `{"a":1}`
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/url/priv/x?q=1", strings.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(payload))
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey},
		req, hex.EncodeToString(sum[:]), "lambda", region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("signed AWS_IAM request: %d %s", resp.StatusCode, body)
	}
	var ev event
	_ = json.Unmarshal([]byte(body), &ev)
	if ev.RequestContext.Authorizer == nil || ev.RequestContext.Authorizer.IAM.AccessKey != accessKey {
		t.Fatalf("authorizer: %s", body)
	}
	if ev.Headers["x-amz-date"] == "" {
		t.Fatalf("SigV4 headers must stay in the event: %v", ev.Headers)
	}
}

func TestURLResponseStreamForwardsAsWritten(t *testing.T) {
	second := make(chan struct{})
	streamer := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/vnd.awslambda.http-integration-response")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"statusCode":207,"headers":{"Content-Type":"text/event-stream","X-S":"1"},"cookies":["s=1"]}`))
		_, _ = w.Write(make([]byte, 8))
		_, _ = w.Write([]byte("first\n"))
		w.(http.Flusher).Flush()
		<-second
		_, _ = w.Write([]byte("second\n"))
	}
	e := newEnv(t, []*catalog.Function{urlFunction("sse", &specs.URLConfig{Auth: "NONE", InvokeMode: "RESPONSE_STREAM"})},
		map[string]gatewaytest.Handler{"sse": streamer})
	resp, err := http.Get(e.srv.URL + "/url/sse/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 207 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-S") != "1" || resp.Header.Get("Set-Cookie") != "s=1" {
		t.Fatalf("prelude not applied: %d %v", resp.StatusCode, resp.Header)
	}
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk %q %v", line, err)
	}
	// The first line arrived while the function still holds the second:
	// the gateway streams rather than buffers.
	close(second)
	rest, _ := io.ReadAll(rd)
	if string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
}

// varyTokens lists the Vary header's comma-separated tokens.
func varyTokens(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Vary") {
		for _, t := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(t))
		}
	}
	return out
}

// Item 21 of issue 11: a CORS answer names Origin in Vary once, whatever
// the response shape, and keeps the function's own Vary tokens.
func TestURLCORSVaryOriginOnce(t *testing.T) {
	cors := &specs.CORS{AllowOrigins: []string{"https://app.example"}}
	plain := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"plain":true}`))
	}
	structured := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"statusCode":200,"headers":{"Vary":"Accept-Encoding"},"body":"s"}`))
	}
	structuredOrigin := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"statusCode":200,"headers":{"Vary":"origin, Accept"},"body":"s"}`))
	}
	streamed := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("chunk"))
	}
	buffered := func(name string) *catalog.Function {
		return urlFunction(name, &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED", CORS: cors})
	}
	e := newEnv(t, []*catalog.Function{buffered("plain"), buffered("structured"), buffered("both"),
		urlFunction("stream", &specs.URLConfig{Auth: "NONE", InvokeMode: "RESPONSE_STREAM", CORS: cors})},
		map[string]gatewaytest.Handler{"plain": plain, "structured": structured, "both": structuredOrigin, "stream": streamed})
	for _, tc := range []struct {
		fn, method string
		want       string
	}{
		{"plain", http.MethodGet, "Origin"},
		{"structured", http.MethodGet, "Accept-Encoding,Origin"},
		{"both", http.MethodGet, "origin,Accept"},
		{"stream", http.MethodGet, "Origin"},
		{"plain", http.MethodOptions, "Origin"},
	} {
		req := mustReq(tc.method, e.srv.URL+"/url/"+tc.fn+"/")
		req.Header.Set("Origin", "https://app.example")
		if tc.method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "GET")
		}
		resp, body := do(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", tc.method, tc.fn, resp.StatusCode, body)
		}
		if got := strings.Join(varyTokens(resp.Header), ","); got != tc.want {
			t.Errorf("%s %s: Vary %q (headers %q), want %q", tc.method, tc.fn, got, resp.Header.Values("Vary"), tc.want)
		}
	}
}
