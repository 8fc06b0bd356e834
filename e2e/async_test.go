package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/nats-io/nats.go"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/queue"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// These tests run Event invocations through the whole local stack: the
// SDK's Invoke with InvocationType Event, the embedded JetStream queue,
// workers invoking real aws-lambda-go functions through the router, and
// destinations on real NATS subscriptions and loopback webhooks.

// recorder is a webhook destination that keeps what it receives.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []recorded
}

type recorded struct {
	header http.Header
	body   []byte
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, recorded{req.Header.Clone(), b})
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) wait(t *testing.T, n int) []recorded {
	t.Helper()
	var out []recorded
	eventually(t, 30*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		out = append([]recorded(nil), r.got...)
		return len(out) >= n
	}, "webhook deliveries")
	return out
}

func fastQueue(cfg *config.Config) {
	cfg.Queue = &queue.Config{Workers: 4, AckWait: "5s", RetryDelays: []string{"50ms", "100ms"},
		ThrottleBackoffMin: "20ms", ThrottleBackoffMax: "200ms"}
}

func asyncSpec(t *testing.T, hook string) string {
	return `
function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "echo") + `" }
  async {
    max_retries = 0
    on_success {
      webhook = "` + hook + `"
    }
  }
}

function "fail" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "error") + `" }
  async {
    max_retries   = 1
    max_event_age = "1h"
    on_failure {
      nats = "e2e.failures"
    }
    dead_letter {
      webhook = "` + hook + `"
    }
  }
}

function "slow" {
  runtime = "provided.al2023"
  timeout = "1s"
  code { dir = "` + testfn.Dir(t, "sleep") + `" }
  async {
    max_retries = 0
    on_failure {
      function = "echo"
    }
  }
}
`
}

func asyncInvoke(t *testing.T, c *lambda.Client, fn, payload string) string {
	t.Helper()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String(fn), InvocationType: types.InvocationTypeEvent, Payload: []byte(payload),
	})
	if err != nil {
		t.Fatalf("async invoke %s: %v", fn, err)
	}
	if out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Fatalf("async invoke %s: status %d payload %q", fn, out.StatusCode, out.Payload)
	}
	rid, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if !ok || rid == "" {
		t.Fatal("no x-amzn-RequestId on the 202")
	}
	return rid
}

// signedStatus reads the status API with a SigV4-signed GET.
func signedStatus(t *testing.T, g *gateway, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.base+path, nil)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: e2eAccessKey, SecretAccessKey: e2eSecretKey},
		req, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "lambda", e2eRegion, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		_ = json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}

func TestAsyncInvokeValidatesThenQueues(t *testing.T) {
	hook := newRecorder(t)
	g := startGateway(t, asyncSpec(t, hook.srv.URL), fastQueue)
	c := lambdaFor(g)
	ctx := context.Background()

	apiCode := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}
	event := types.InvocationTypeEvent
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), InvocationType: event})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("unknown function: %v, want ResourceNotFoundException (no 202 for a function that does not exist)", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String("nope"), InvocationType: event})
	if !errors.As(err, &rnf) {
		t.Errorf("unknown qualifier: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo:1"), Qualifier: aws.String("2"), InvocationType: event})
	if apiCode(err) != "InvalidParameterValueException" {
		t.Errorf("mismatched qualifier: %v", err)
	}
	big := `{"pad":"` + strings.Repeat("x", queue.MaxEventSize) + `"}`
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: event, Payload: []byte(big)})
	if apiCode(err) != "RequestEntityTooLargeException" || !strings.Contains(err.Error(), "too large for the Event invocation type") {
		t.Errorf("oversized event: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: event, Payload: []byte("not json")})
	if apiCode(err) != "InvalidRequestContentException" {
		t.Errorf("non-JSON event: %v", err)
	}

	rid := asyncInvoke(t, c, "echo", `{"hello":"async"}`)
	rec := hook.wait(t, 1)[0]
	var r queue.Record
	if err := json.Unmarshal(rec.body, &r); err != nil {
		t.Fatal(err)
	}
	if r.RequestContext.RequestID != rid || r.RequestContext.Condition != "Success" ||
		r.RequestContext.FunctionARN != "arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST" ||
		string(r.ResponsePayload) != `{"hello":"async"}` || r.ResponseContext.StatusCode != 200 || r.ResponseContext.ExecutedVersion != "$LATEST" {
		t.Errorf("success record %s", rec.body)
	}
	var st queue.Status
	eventually(t, 10*time.Second, func() bool {
		return signedStatus(t, g, queue.InvocationsPath+rid, &st) == 200 && st.State == queue.StateSucceeded
	}, "status succeeded")
	var list struct{ Invocations []queue.Status }
	if code := signedStatus(t, g, queue.FunctionsPath+"echo/invocations", &list); code != 200 || len(list.Invocations) != 1 || list.Invocations[0].RequestID != rid {
		t.Errorf("list: %d %+v", code, list)
	}
	resp := mustDo(t, mustRequest("GET", g.base+queue.InvocationsPath+rid))
	if resp.StatusCode != 403 {
		t.Errorf("unsigned status read answered %d", resp.StatusCode)
	}
}

func TestAsyncFunctionErrorRetriedThenFailureRecordAndDeadLetter(t *testing.T) {
	hook := newRecorder(t)
	g := startGateway(t, asyncSpec(t, hook.srv.URL), fastQueue)
	nc, err := nats.Connect(g.srv.Queue().ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	failures, err := nc.SubscribeSync("e2e.failures")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()

	rid := asyncInvoke(t, lambdaFor(g), "fail", `{"order":42}`)
	m, err := failures.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no failure record: %v", err)
	}
	var r queue.Record
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	if r.RequestContext.RequestID != rid || r.RequestContext.Condition != "RetriesExhausted" || r.RequestContext.ApproximateInvokeCount != 2 ||
		r.ResponseContext.FunctionError != "Unhandled" || string(r.RequestPayload) != `{"order":42}` ||
		string(r.ResponsePayload) != `{"errorMessage":"custom failure","errorType":"MyErr"}` {
		t.Errorf("failure record %s", m.Data)
	}
	dl := hook.wait(t, 1)[0]
	if string(dl.body) != `{"order":42}` || dl.header.Get("RequestID") != rid || dl.header.Get("ErrorCode") != "200" ||
		!strings.Contains(dl.header.Get("ErrorMessage"), "custom failure") {
		t.Errorf("dead letter %s %v", dl.body, dl.header)
	}
	var st queue.Status
	eventually(t, 10*time.Second, func() bool {
		return signedStatus(t, g, queue.InvocationsPath+rid, &st) == 200 && st.State == queue.StateDeadLettered
	}, "status dead-lettered")
	if st.Attempts != 2 || st.Retries != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestAsyncTimeoutGoesToFunctionDestination(t *testing.T) {
	hook := newRecorder(t)
	g := startGateway(t, asyncSpec(t, hook.srv.URL), fastQueue)
	rid := asyncInvoke(t, lambdaFor(g), "slow", `{"ms":3000}`)
	// slow's on_failure is the echo function, whose on_success is the
	// webhook: the webhook gets echo's success record, whose response is
	// slow's failure record.
	rec := hook.wait(t, 1)[0]
	var outer queue.Record
	if err := json.Unmarshal(rec.body, &outer); err != nil {
		t.Fatal(err)
	}
	var inner queue.Record
	if err := json.Unmarshal(outer.ResponsePayload, &inner); err != nil {
		t.Fatalf("echo's response is not a record: %s", outer.ResponsePayload)
	}
	if inner.RequestContext.RequestID != rid || inner.RequestContext.Condition != "RetriesExhausted" ||
		inner.ResponseContext.FunctionError != "Unhandled" || !strings.Contains(string(inner.ResponsePayload), "Sandbox.Timedout") {
		t.Errorf("slow's failure record %s", outer.ResponsePayload)
	}
}

func TestAsyncEventInvokeConfigAPIOverridesTheSpec(t *testing.T) {
	hook := newRecorder(t)
	g := startGateway(t, asyncSpec(t, hook.srv.URL), fastQueue)
	c := lambdaFor(g)
	ctx := context.Background()
	nc, err := nats.Connect(g.srv.Queue().ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	override, err := nc.SubscribeSync("e2e.override")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()

	put, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:         aws.String("fail"),
		MaximumRetryAttempts: aws.Int32(0),
		DestinationConfig:    &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("nats:e2e.override")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:fail:$LATEST" || put.LastModified == nil ||
		aws.ToInt32(put.MaximumRetryAttempts) != 0 {
		t.Errorf("put answered %+v", put)
	}
	got, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("fail")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(got.MaximumRetryAttempts) != 0 || aws.ToInt32(got.MaximumEventAgeInSeconds) != 3600 ||
		aws.ToString(got.DestinationConfig.OnFailure.Destination) != "nats:e2e.override" {
		t.Errorf("get: retries %v age %v dest %+v", aws.ToInt32(got.MaximumRetryAttempts), aws.ToInt32(got.MaximumEventAgeInSeconds), got.DestinationConfig)
	}
	list, err := c.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("fail")})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 1 {
		t.Errorf("list: %v %+v", err, list)
	}

	// The override applies: one attempt, the record on the new subject.
	rid := asyncInvoke(t, c, "fail", `{}`)
	m, err := override.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no record on the override destination: %v", err)
	}
	var r queue.Record
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	if r.RequestContext.RequestID != rid || r.RequestContext.ApproximateInvokeCount != 1 || r.RequestContext.Condition != "RetriesExhausted" {
		t.Errorf("record %s", m.Data)
	}

	var ae smithy.APIError
	_, err = c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fail"), MaximumRetryAttempts: aws.Int32(3)})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValueException" {
		t.Errorf("3 retries: %v", err)
	}
	_, err = c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fail"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String("arn:aws:sqs:us-east-1:123456789012:q")}}})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValueException" {
		t.Errorf("sqs destination: %v", err)
	}
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("fail")}); err != nil {
		t.Fatal(err)
	}
	var rnf *types.ResourceNotFoundException
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("fail")}); !errors.As(err, &rnf) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := c.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("fail"), MaximumRetryAttempts: aws.Int32(1)}); !errors.As(err, &rnf) {
		t.Errorf("update without a config: %v", err)
	}
	if _, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("nope")}); !errors.As(err, &rnf) {
		t.Errorf("get of a missing function: %v", err)
	}
}

// TestAsyncBacklogLeavesRoomForSyncCalls queues a backlog of slow events for
// a function with reserved concurrency 2: the workers hold at most half of
// it, so synchronous calls made meanwhile run instead of being throttled.
func TestAsyncBacklogLeavesRoomForSyncCalls(t *testing.T) {
	spec := `
function "slow" {
  runtime              = "provided.al2023"
  timeout              = "10s"
  reserved_concurrency = 2
  code { dir = "` + testfn.Dir(t, "sleep") + `" }
  async {
    max_retries = 0
  }
}
`
	g := startGateway(t, spec, fastQueue)
	c := lambdaFor(g)
	var rids []string
	for i := 0; i < 6; i++ {
		rids = append(rids, asyncInvoke(t, c, "slow", `{"ms":300}`))
	}
	var st queue.Status
	eventually(t, 30*time.Second, func() bool {
		return signedStatus(t, g, queue.InvocationsPath+rids[0], &st) == 200 && st.State != queue.StateQueued
	}, "the backlog to start")
	for i := 0; i < 3; i++ {
		out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("slow"), Payload: []byte(`{"ms":1}`)})
		if err != nil {
			t.Fatalf("sync call %d during the async backlog: %v", i, err)
		}
		if out.FunctionError != nil || string(out.Payload) != `"slept"` {
			t.Fatalf("sync call %d: %s", i, out.Payload)
		}
	}
	for _, rid := range rids {
		eventually(t, 60*time.Second, func() bool {
			return signedStatus(t, g, queue.InvocationsPath+rid, &st) == 200 && st.State == queue.StateSucceeded
		}, "backlog event "+rid)
		if st.Throttles != 0 {
			t.Errorf("event %s was throttled %d times: the workers went over their share", rid, st.Throttles)
		}
	}
}
