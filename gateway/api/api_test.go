package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/gateway/router"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
	"github.com/nimbus-fn/nimbus/specs"
)

const (
	region    = "us-east-1"
	account   = "123456789012"
	accessKey = "AKIDNIMBUSTEST"
	secretKey = "nimbus-secret-key"
	urlDomain = "lambda-url.test"
)

var invokeKey = []byte("api-test-invoke-key-0123456789")

type snapCatalog struct{ s *catalog.Snapshot }

func (c snapCatalog) Function(_ context.Context, name string) (*catalog.Function, error) {
	return c.s.Function(name)
}
func (c snapCatalog) Functions(context.Context) ([]*catalog.Function, error) {
	return c.s.Functions(), nil
}

type env struct {
	srv    *httptest.Server
	src    *gatewaytest.Source
	router *router.Router
	fns    map[string]*catalog.Function
}

func fnSpec(name string) *specs.Function {
	return &specs.Function{Name: name, Runtime: "provided.al2023", MemoryMB: 128, Timeout: "3s", EnvironmentsPerInstance: 1}
}

// newEnv serves the API with SigV4 on over the given functions; each
// function version gets an instance double running h (echo when nil).
func newEnv(t *testing.T, fns []*catalog.Function, handlers map[string]gatewaytest.Handler) *env {
	t.Helper()
	src := gatewaytest.NewSource()
	for _, f := range fns {
		for v := range f.Versions {
			envs := f.Versions[v].EnvironmentsPerInstance
			in := gatewaytest.StartInstance(t, f.Name, v, max(envs, 1), invokeapi.DeriveSecret(invokeKey, f.Name, v), handlers[f.Name])
			src.Add(in.Discovery(f.Name+"-"+v, discovery.GroupOnDemand))
		}
	}
	m := metrics.New()
	rt := router.New(router.Config{InvokeKey: invokeKey}, src, nil, m, nil)
	t.Cleanup(rt.Close)
	a := api.New(api.Options{Region: region, AccountID: account, URLDomain: urlDomain, SessionCookie: "nimbus_console",
		Verifier: &sigv4.Verifier{Keys: map[string]string{accessKey: secretKey}, Region: region}},
		snapCatalog{catalog.NewSnapshot(fns)}, rt, rt, m, nil)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	idx := map[string]*catalog.Function{}
	for _, f := range fns {
		idx[f.Name] = f
	}
	return &env{srv: srv, src: src, router: rt, fns: idx}
}

func (e *env) client(key, secret string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(key, secret, ""),
		RetryMaxAttempts: 1,
	})
}

func basicFunctions() []*catalog.Function {
	ok := fnSpec("ok")
	v1 := fnSpec("ok")
	fail := fnSpec("fail")
	return []*catalog.Function{
		{Name: "ok", Versions: map[string]*specs.Function{catalog.Latest: ok, "1": v1},
			Aliases: map[string]*specs.Alias{"prod": {Name: "prod", Version: "1"}}},
		{Name: "fail", Versions: map[string]*specs.Function{catalog.Latest: fail}},
	}
}

func failing(w http.ResponseWriter, _ *http.Request, _ []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(invokeapi.HeaderFunctionError, invokeapi.FunctionErrorUnhandled)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"errorMessage":"custom failure","errorType":"MyErr"}`))
}

func TestInvokeWithSDK(t *testing.T) {
	e := newEnv(t, basicFunctions(), map[string]gatewaytest.Handler{"fail": failing})
	c := e.client(accessKey, secretKey)
	ctx := context.Background()

	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok"), Payload: []byte(`{"hello":"world"}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if string(out.Payload) != `{"hello":"world"}` || out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "$LATEST" || out.FunctionError != nil {
		t.Fatalf("invoke output: %q %d %q %v", out.Payload, out.StatusCode, aws.ToString(out.ExecutedVersion), out.FunctionError)
	}
	logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil || !strings.Contains(string(logs), "START RequestId:") {
		t.Fatalf("log result %q (%v)", logs, err)
	}

	for _, tc := range []struct{ name, qualifier, version string }{
		{"arn:aws:lambda:us-east-1:123456789012:function:ok:prod", "", "1"},
		{"123456789012:function:ok", "1", "1"},
		{"ok:$LATEST", "", "$LATEST"},
		{"ok", "prod", "1"},
		{"ok", "$LATEST", "$LATEST"}, // "$" is percent-encoded in the signed query
	} {
		in := &lambda.InvokeInput{FunctionName: aws.String(tc.name), Payload: []byte(`1`)}
		if tc.qualifier != "" {
			in.Qualifier = aws.String(tc.qualifier)
		}
		out, err := c.Invoke(ctx, in)
		if err != nil {
			t.Fatalf("invoke %s (q %q): %v", tc.name, tc.qualifier, err)
		}
		if got := aws.ToString(out.ExecutedVersion); got != tc.version {
			t.Fatalf("invoke %s: executed version %q, want %q", tc.name, got, tc.version)
		}
	}

	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fail"), Payload: []byte(`{}`)})
	if err != nil {
		t.Fatalf("invoke fail: %v", err)
	}
	if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "MyErr") || out.StatusCode != 200 {
		t.Fatalf("function error output: %v %q %d", aws.ToString(out.FunctionError), out.Payload, out.StatusCode)
	}

	dry, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok"), InvocationType: types.InvocationTypeDryRun})
	if err != nil || dry.StatusCode != 204 {
		t.Fatalf("dry run: %v %+v", err, dry)
	}
}

func TestInvokeErrorCatalogueWithSDK(t *testing.T) {
	e := newEnv(t, basicFunctions(), nil)
	c := e.client(accessKey, secretKey)
	ctx := context.Background()
	var notFound *types.ResourceNotFoundException
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), Payload: []byte(`{}`)})
	if !errors.As(err, &notFound) || !strings.Contains(aws.ToString(notFound.Message), "function:nope") {
		t.Fatalf("unknown function: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok:missing"), Payload: []byte(`{}`)})
	if !errors.As(err, &notFound) {
		t.Fatalf("unknown alias: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:eu-west-1:123456789012:function:ok"), Payload: []byte(`{}`)})
	if !errors.As(err, &notFound) {
		t.Fatalf("other region: %v", err)
	}
	var badParam *types.InvalidParameterValueException
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok:prod"), Qualifier: aws.String("1"), Payload: []byte(`{}`)})
	if !errors.As(err, &badParam) || !strings.Contains(aws.ToString(badParam.Message), "derived qualifier") {
		t.Fatalf("qualifier mismatch: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)})
	if !errors.As(err, &badParam) {
		t.Fatalf("event invoke: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok"), ClientContext: aws.String("not base64!"), Payload: []byte(`{}`)})
	if !errors.As(err, &badParam) {
		t.Fatalf("bad client context: %v", err)
	}
	var badContent *types.InvalidRequestContentException
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok"), Payload: []byte(`not json`)})
	if !errors.As(err, &badContent) {
		t.Fatalf("non-JSON payload: %v", err)
	}
	var apiErr smithy.APIError
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok"), Payload: bytes.Repeat([]byte(" "), invokeapi.MaxPayload+1)})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "RequestEntityTooLargeException" {
		t.Fatalf("oversized payload: %v", err)
	}
	_, err = e.client(accessKey, "wrong-secret").Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok"), Payload: []byte(`{}`)})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != sigv4.CodeInvalidSignature {
		t.Fatalf("wrong secret: %v", err)
	}
	_, err = e.client("AKIDUNKNOWN", secretKey).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ok"), Payload: []byte(`{}`)})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != sigv4.CodeUnrecognizedClient {
		t.Fatalf("unknown key: %v", err)
	}
	resp, err := http.Post(e.srv.URL+"/2015-03-31/functions/ok/invocations", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != sigv4.CodeMissingToken {
		t.Fatalf("unsigned request: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
}

func TestInvokeThrottleWithSDK(t *testing.T) {
	fns := basicFunctions()
	one := 1
	fns[0].Versions[catalog.Latest].ReservedConcurrency = &one
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	hold := func(w http.ResponseWriter, r *http.Request, p []byte) {
		entered <- struct{}{}
		<-release
		gatewaytest.Echo(w, r, p)
	}
	e := newEnv(t, fns, map[string]gatewaytest.Handler{"ok": hold})
	c := e.client(accessKey, secretKey)
	var wg sync.WaitGroup
	wg.Add(1)
	var firstErr error
	go func() {
		defer wg.Done()
		_, firstErr = c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("ok"), Payload: []byte(`1`)})
	}()
	<-entered
	_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("ok"), Payload: []byte(`2`)})
	var tooMany *types.TooManyRequestsException
	if !errors.As(err, &tooMany) || tooMany.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Fatalf("second concurrent invoke: %v", err)
	}
	if got := aws.ToString(tooMany.RetryAfterSeconds); got != "1" {
		t.Fatalf("throttle RetryAfterSeconds %q, want the Retry-After header's 1", got)
	}
	close(release)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("first invoke: %v", firstErr)
	}
}

func TestControlPlaneReadsWithSDK(t *testing.T) {
	e := newEnv(t, basicFunctions(), nil)
	c := e.client(accessKey, secretKey)
	ctx := context.Background()
	gf, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("ok"), Qualifier: aws.String("prod")})
	if err != nil {
		t.Fatalf("get function: %v", err)
	}
	if aws.ToString(gf.Configuration.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:ok:1" || aws.ToInt32(gf.Configuration.Timeout) != 3 {
		t.Fatalf("configuration: %+v", gf.Configuration)
	}
	lf, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(lf.Functions) != 2 || aws.ToString(lf.Functions[0].FunctionName) != "fail" {
		t.Fatalf("list functions: %v %+v", err, lf)
	}
	as, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil || as.AccountLimit.ConcurrentExecutions != 1000 || aws.ToInt32(as.AccountLimit.UnreservedConcurrentExecutions) != 1000 {
		t.Fatalf("account settings: %v %+v", err, as)
	}
}

func TestFunctionNameForms(t *testing.T) {
	// The path label is percent-decoded before parsing; the router sees names.
	e := newEnv(t, basicFunctions(), nil)
	c := e.client(accessKey, secretKey)
	_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("bad name!"), Payload: []byte(`{}`)})
	var badParam *types.InvalidParameterValueException
	if !errors.As(err, &badParam) {
		t.Fatalf("invalid name: %v", err)
	}
	b, _ := json.Marshal(map[string]int{"x": 1})
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:123456789012:function:ok"), Payload: b})
	if err != nil || string(out.Payload) != string(b) {
		t.Fatalf("full ARN: %v", err)
	}
}

func TestURLConfigsWithSDK(t *testing.T) {
	web := fnSpec("web")
	web.URL = &specs.URLConfig{Auth: "NONE", InvokeMode: "BUFFERED", CORS: &specs.CORS{AllowOrigins: []string{"*"}}}
	fns := append(basicFunctions(), &catalog.Function{Name: "web", Versions: map[string]*specs.Function{catalog.Latest: web}})
	e := newEnv(t, fns, nil)
	c := e.client(accessKey, secretKey)
	out, err := c.ListFunctionUrlConfigs(context.Background(), &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web")})
	if err != nil || len(out.FunctionUrlConfigs) != 1 {
		t.Fatalf("list url configs: %v %+v", err, out)
	}
	port := e.srv.URL[strings.LastIndexByte(e.srv.URL, ':'):]
	if got := aws.ToString(out.FunctionUrlConfigs[0].FunctionUrl); got != "http://web."+urlDomain+port+"/" {
		t.Fatalf("function URL %q", got)
	}
	none, err := c.ListFunctionUrlConfigs(context.Background(), &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("ok")})
	if err != nil || len(none.FunctionUrlConfigs) != 0 {
		t.Fatalf("function without URL: %v %+v", err, none)
	}
	var notFound *types.ResourceNotFoundException
	if _, err := c.GetFunctionUrlConfig(context.Background(), &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("ok")}); !errors.As(err, &notFound) {
		t.Fatalf("get url config of a function without URL: %v", err)
	}
}

// Item 13 of issue 11: with reserved concurrency 0 no retry can succeed,
// so the 429 carries no Retry-After.
func TestReservedZeroThrottleHasNoRetryAfter(t *testing.T) {
	fns := basicFunctions()
	zero := 0
	fns[0].Versions[catalog.Latest].ReservedConcurrency = &zero
	e := newEnv(t, fns, nil)
	_, err := e.client(accessKey, secretKey).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("ok"), Payload: []byte(`1`)})
	var tooMany *types.TooManyRequestsException
	if !errors.As(err, &tooMany) || tooMany.RetryAfterSeconds != nil {
		t.Fatalf("reserved 0: %v (RetryAfterSeconds %v)", err, tooMany.RetryAfterSeconds)
	}
}

// fullQueue refuses every event as the full async queue does.
type fullQueue struct{}

func (fullQueue) Enqueue(context.Context, queue.Event) error { return queue.ErrQueueFull }

// Item 13 of issue 11: a full async queue answers 429 with Retry-After.
func TestAsyncQueueFullSuggestsARetry(t *testing.T) {
	fns := basicFunctions()
	m := metrics.New()
	rt := router.New(router.Config{InvokeKey: invokeKey}, gatewaytest.NewSource(), nil, m, nil)
	t.Cleanup(rt.Close)
	a := api.New(api.Options{Region: region, AccountID: account, Async: fullQueue{}}, snapCatalog{catalog.NewSnapshot(fns)}, rt, rt, m, nil)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/2015-03-31/functions/ok/invocations", strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("X-Amzn-Errortype") != "TooManyRequestsException" ||
		resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), "queue is full") {
		t.Fatalf("full queue: %d %q Retry-After %q %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), resp.Header.Get("Retry-After"), b)
	}
}
