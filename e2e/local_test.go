package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// These tests run the whole local stack: the gateway (server, API, router,
// local catalog from HCL specs, dev-mode pool) over real instances running
// real aws-lambda-go functions, called through the real aws-sdk-go-v2
// Lambda client (SigV4-signed) and plain HTTP for function URLs.

func lambdaFor(g *gateway) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           e2eRegion,
		BaseEndpoint:     aws.String(g.base),
		Credentials:      credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
		RetryMaxAttempts: 1,
	})
}

func localSpec(t *testing.T) string {
	echo := testfn.Dir(t, "echo")
	fail := testfn.Dir(t, "error")
	sleep := testfn.Dir(t, "sleep")
	stream := urlStreamDir(t)
	return `
function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + echo + `" }
  url {
    auth = "NONE"
    cors {
      allow_origins = ["https://app.example"]
      allow_methods = ["GET", "POST"]
      allow_headers = ["x-custom"]
      max_age       = 60
    }
  }
}

function "private" {
  runtime = "provided.al2023"
  code { dir = "` + echo + `" }
  url { auth = "AWS_IAM" }
}

function "fail" {
  runtime = "provided.al2023"
  code { dir = "` + fail + `" }
  url { auth = "NONE" }
}

function "slow" {
  runtime              = "provided.al2023"
  timeout              = "10s"
  reserved_concurrency = 1
  code { dir = "` + sleep + `" }
}

function "stream" {
  runtime = "provided.al2023"
  code { dir = "` + stream + `" }
  url {
    auth        = "NONE"
    invoke_mode = "RESPONSE_STREAM"
  }
}
`
}

func TestLocalInvokeAPIWithSDK(t *testing.T) {
	g := startGateway(t, localSpec(t), nil)
	c := lambdaFor(g)
	ctx := context.Background()

	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"hello":"nimbus"}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatalf("invoke echo: %v", err)
	}
	if string(out.Payload) != `{"hello":"nimbus"}` || aws.ToString(out.ExecutedVersion) != "$LATEST" || out.FunctionError != nil {
		t.Fatalf("echo output %q version %q error %v", out.Payload, aws.ToString(out.ExecutedVersion), out.FunctionError)
	}
	tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if !strings.Contains(string(tail), "REPORT RequestId:") {
		t.Fatalf("log tail lacks the REPORT line: %q", tail)
	}

	arn := "arn:aws:lambda:" + e2eRegion + ":" + e2eAccount + ":function:echo:$LATEST"
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(arn), Payload: []byte(`[1,2]`)})
	if err != nil || string(out.Payload) != `[1,2]` {
		t.Fatalf("invoke by qualified ARN: %v %q", err, out.Payload)
	}

	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fail"), Payload: []byte(`{}`)})
	if err != nil {
		t.Fatalf("invoke fail: %v", err)
	}
	var body struct{ ErrorType, ErrorMessage string }
	_ = json.Unmarshal(out.Payload, &body)
	if aws.ToString(out.FunctionError) != "Unhandled" || body.ErrorType != "MyErr" || body.ErrorMessage != "custom failure" {
		t.Fatalf("function error: %v %s", aws.ToString(out.FunctionError), out.Payload)
	}

	// The error catalogue as the SDK parses it.
	var notFound *types.ResourceNotFoundException
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("missing"), Payload: []byte(`{}`)}); !errors.As(err, &notFound) {
		t.Fatalf("unknown function: %v", err)
	}
	var badParam *types.InvalidParameterValueException
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo:$LATEST"), Qualifier: aws.String("live"), Payload: []byte(`{}`)}); !errors.As(err, &badParam) {
		t.Fatalf("qualifier mismatch: %v", err)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String("live"), Payload: []byte(`{}`)}); !errors.As(err, &notFound) {
		t.Fatalf("unknown alias: %v", err)
	}
	var apiErr smithy.APIError
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: bytes.Repeat([]byte("1"), 6*1024*1024+1)}); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "RequestEntityTooLargeException" {
		t.Fatalf("oversized payload: %v", err)
	}
	var badContent *types.InvalidRequestContentException
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{oops`)}); !errors.As(err, &badContent) {
		t.Fatalf("non-JSON payload: %v", err)
	}
	bad := lambda.New(lambda.Options{Region: e2eRegion, BaseEndpoint: aws.String(g.base), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e2eAccessKey, "wrong", "")})
	if _, err := bad.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)}); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestLocalThrottlingWithReservedConcurrency(t *testing.T) {
	g := startGateway(t, localSpec(t), nil)
	c := lambdaFor(g)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	var first *lambda.InvokeOutput
	var firstErr error
	go func() {
		defer wg.Done()
		first, firstErr = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("slow"), Payload: []byte(`{"ms":1500}`)})
	}()
	eventually(t, 10*time.Second, func() bool { return g.srv.Router().Concurrency("slow") == 1 }, "first call admitted")
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("slow"), Payload: []byte(`{"ms":1}`)})
	var tooMany *types.TooManyRequestsException
	if !errors.As(err, &tooMany) || tooMany.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Fatalf("second concurrent call: %v", err)
	}
	wg.Wait()
	if firstErr != nil || string(first.Payload) != `"slept"` {
		t.Fatalf("first call: %v %v", firstErr, first)
	}
}

func TestLocalFunctionURLs(t *testing.T) {
	g := startGateway(t, localSpec(t), nil)

	req, _ := http.NewRequest(http.MethodPost, g.base+"/url/echo/a/b?x=1&x=2", strings.NewReader(`{"k":"v"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Cookie", "a=1; b=2")
	resp := mustDo(t, req)
	var ev struct {
		Version               string            `json:"version"`
		RawPath               string            `json:"rawPath"`
		Body                  string            `json:"body"`
		Cookies               []string          `json:"cookies"`
		QueryStringParameters map[string]string `json:"queryStringParameters"`
	}
	if err := json.Unmarshal(resp.body, &ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("echo URL: %d %s", resp.StatusCode, resp.body)
	}
	if ev.Version != "2.0" || ev.RawPath != "/a/b" || ev.Body != `{"k":"v"}` || len(ev.Cookies) != 2 || ev.QueryStringParameters["x"] != "1,2" {
		t.Fatalf("event as the function saw it: %s", resp.body)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("URL response headers: %v", resp.Header)
	}

	// Host-based URL and CORS preflight.
	pre, _ := http.NewRequest(http.MethodOptions, g.base+"/", nil)
	pre.Host = "echo.lambda-url.localhost"
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	resp = mustDo(t, pre)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Methods") != "GET,POST" || resp.Header.Get("Access-Control-Max-Age") != "60" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	// Function error → 502.
	resp = mustDo(t, mustRequest(http.MethodGet, g.base+"/url/fail/"))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("failing function URL: %d %s", resp.StatusCode, resp.body)
	}

	// AWS_IAM: unsigned refused, SigV4-signed accepted.
	resp = mustDo(t, mustRequest(http.MethodGet, g.base+"/url/private/"))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned AWS_IAM: %d", resp.StatusCode)
	}
	signed, _ := http.NewRequest(http.MethodPost, g.base+"/url/private/x", strings.NewReader(`{"a":1}`))
	sum := sha256.Sum256([]byte(`{"a":1}`))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: e2eAccessKey, SecretAccessKey: e2eSecretKey},
		signed, hex.EncodeToString(sum[:]), "lambda", e2eRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp = mustDo(t, signed)
	if resp.StatusCode != 200 || !strings.Contains(string(resp.body), `"accessKey":"`+e2eAccessKey+`"`) {
		t.Fatalf("signed AWS_IAM: %d %s", resp.StatusCode, resp.body)
	}
}

func TestLocalResponseStreaming(t *testing.T) {
	g := startGateway(t, localSpec(t), nil)
	gate := newGate(t)
	resp, err := http.Get(g.base + "/url/stream/path?gate=" + url.QueryEscape(gate))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Stream") != "yes" || resp.Header.Get("Content-Type") != "text/plain" ||
		!strings.HasPrefix(resp.Header.Get("Set-Cookie"), "s=1") {
		t.Fatalf("streamed response head: %d %v", resp.StatusCode, resp.Header)
	}
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	if err != nil || line != "first /path\n" {
		t.Fatalf("first line %q: %v", line, err)
	}
	// The function is still waiting for the gate: the first line came
	// through while it ran.
	openGate(t, gate)
	rest, _ := io.ReadAll(rd)
	if string(rest) != "second\n" {
		t.Fatalf("rest of stream %q", rest)
	}
}

func TestLocalScaleFromZeroAndBackToZero(t *testing.T) {
	g := startGateway(t, localSpec(t), func(c *config.Config) { c.IdleScaleIn = "300ms" })
	if n := g.launcher.running(); n != 0 {
		t.Fatalf("%d instances before any traffic", n)
	}
	out, err := lambdaFor(g).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`"cold"`)})
	if err != nil || string(out.Payload) != `"cold"` {
		t.Fatalf("cold invoke: %v %v", err, out)
	}
	if n := g.launcher.running(); n != 1 {
		t.Fatalf("%d instances after the first call, want 1", n)
	}
	eventually(t, 15*time.Second, func() bool { return g.launcher.running() == 0 }, "idle instance stopped")
	out, err = lambdaFor(g).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`"again"`)})
	if err != nil || string(out.Payload) != `"again"` {
		t.Fatalf("invoke after scale-in: %v %v", err, out)
	}
}

func TestLocalSpecReloadReplacesInstances(t *testing.T) {
	g := startGateway(t, localSpec(t), nil)
	c := lambdaFor(g)
	if _, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	spec := localSpec(t) + `
function "added" {
  runtime = "provided.al2023"
  memory_mb = 256
  code { dir = "` + testfn.Dir(t, "echo") + `" }
}
`
	file := filepath.Join(g.specDir, "nimbus.hcl")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(file, later, later)
	eventually(t, 10*time.Second, func() bool {
		_, err := g.catalog.Function(context.Background(), "added")
		return err == nil
	}, "new function visible")
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("added"), Payload: []byte(`"new"`)})
	if err != nil || string(out.Payload) != `"new"` {
		t.Fatalf("invoke the added function: %v %v", err, out)
	}
}

type response struct {
	*http.Response
	body []byte
}

func mustDo(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp, b}
}

func mustRequest(method, u string) *http.Request {
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return r
}

// TestLocalManagedRuntimes serves Python and Node.js handlers (through the
// embedded bootstraps) behind function URLs and the Invoke API.
func TestLocalManagedRuntimes(t *testing.T) {
	var spec strings.Builder
	code := t.TempDir()
	if _, err := exec.LookPath("python3"); err == nil {
		dir := filepath.Join(code, "py")
		_ = os.MkdirAll(dir, 0o755)
		src := "def handler(event, context):\n" +
			"    return {'statusCode': 201, 'headers': {'content-type': 'text/plain'}, 'body': 'py ' + event['rawPath'] + ' ' + context.function_name}\n"
		if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		spec.WriteString(`function "py" {
  runtime = "python3.12"
  handler = "app.handler"
  code { dir = "` + dir + `" }
  url { auth = "NONE" }
}
`)
	} else {
		t.Log("python3 not found: skipping the Python function")
	}
	if _, err := exec.LookPath("node"); err == nil {
		dir := filepath.Join(code, "node")
		_ = os.MkdirAll(dir, 0o755)
		src := "export const handler = async (event, context) => ({ statusCode: 202, body: 'node ' + event.rawPath + ' ' + context.functionName });\n"
		if err := os.WriteFile(filepath.Join(dir, "index.mjs"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		spec.WriteString(`function "node" {
  runtime = "nodejs22.x"
  handler = "index.handler"
  code { dir = "` + dir + `" }
  url { auth = "NONE" }
}
`)
	} else {
		t.Log("node not found: skipping the Node.js function")
	}
	if spec.Len() == 0 {
		t.Skip("neither python3 nor node is installed")
	}
	g := startGateway(t, spec.String(), nil)
	for _, tc := range []struct {
		fn     string
		status int
	}{{"py", 201}, {"node", 202}} {
		if !strings.Contains(spec.String(), `function "`+tc.fn+`"`) {
			continue
		}
		resp := mustDo(t, mustRequest(http.MethodGet, g.base+"/url/"+tc.fn+"/hi"))
		if resp.StatusCode != tc.status || string(resp.body) != tc.fn+" /hi "+tc.fn {
			t.Errorf("%s URL: %d %q", tc.fn, resp.StatusCode, resp.body)
		}
		out, err := lambdaFor(g).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(tc.fn), Payload: []byte(`{"rawPath":"/sdk"}`)})
		if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), tc.fn+" /sdk "+tc.fn) {
			t.Errorf("%s Invoke API: %v %s", tc.fn, err, out.Payload)
		}
	}
}

// TestLocalInvokeContextReachesFunction checks what the function sees of an
// Invoke API call: request id, invoked ARN (as qualified by the caller) and
// the client context.
func TestLocalInvokeContextReachesFunction(t *testing.T) {
	spec := `function "ctx" {
  runtime   = "provided.al2023"
  memory_mb = 256
  code { dir = "` + testfn.Dir(t, "ctxcheck") + `" }
}
`
	g := startGateway(t, spec, nil)
	cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"},"env":{"e":"1"}}`))
	out, err := lambdaFor(g).Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String("ctx:$LATEST"), ClientContext: aws.String(cc), Payload: []byte(`{}`),
	})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke ctxcheck: %v %s", err, out.Payload)
	}
	var rep struct {
		RequestID     string `json:"request_id"`
		InvokedARN    string `json:"invoked_arn"`
		FunctionName  string `json:"function_name"`
		MemoryMB      int    `json:"memory_mb"`
		ClientContext struct {
			Custom map[string]string `json:"custom"`
			Env    map[string]string `json:"env"`
		} `json:"client_context"`
	}
	if err := json.Unmarshal(out.Payload, &rep); err != nil {
		t.Fatal(err)
	}
	requestID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if rep.RequestID == "" || rep.RequestID != requestID {
		t.Errorf("function request id %q, x-amzn-RequestId %q", rep.RequestID, requestID)
	}
	if want := "arn:aws:lambda:" + e2eRegion + ":" + e2eAccount + ":function:ctx:$LATEST"; rep.InvokedARN != want {
		t.Errorf("invoked ARN %q, want %q", rep.InvokedARN, want)
	}
	if rep.FunctionName != "ctx" || rep.MemoryMB != 256 || rep.ClientContext.Custom["k"] != "v" || rep.ClientContext.Env["e"] != "1" {
		t.Errorf("function saw %s", out.Payload)
	}
}
