package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// InvokeWithResponseStream through aws-sdk-go-v2's Lambda client against
// the local gateway over real aws-lambda-go functions: payload bytes
// reassembled from PayloadChunk events, function errors (before and in
// the middle of the stream) in InvokeComplete, the log tail, chunks that
// reach the caller while the function still runs, and the refusals that
// come before the stream starts.

func streamSpec(t *testing.T) string {
	return `
function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "echo") + `" }
}

function "fail" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "error") + `" }
}

function "stream" {
  runtime = "provided.al2023"
  timeout = "10s"
  code { dir = "` + testfn.Dir(t, "stream") + `" }
}

function "slow" {
  runtime = "provided.al2023"
  timeout = "1s"
  code { dir = "` + testfn.Dir(t, "sleep") + `" }
}

function "ctx" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "ctxcheck") + `" }
}
`
}

// streamResult is what one InvokeWithResponseStream delivered.
type streamResult struct {
	out      *lambda.InvokeWithResponseStreamOutput
	chunks   [][]byte
	complete *types.InvokeWithResponseStreamCompleteEvent
}

func (r *streamResult) payload() []byte {
	var b []byte
	for _, c := range r.chunks {
		b = append(b, c...)
	}
	return b
}

// invokeStream runs one call and reads its events to the end; onChunk, when
// set, sees each chunk as it arrives.
func invokeStream(t *testing.T, c *lambda.Client, in *lambda.InvokeWithResponseStreamInput, onChunk func(int, []byte)) (*streamResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.InvokeWithResponseStream(ctx, in)
	if err != nil {
		return nil, err
	}
	res := &streamResult{out: out}
	stream := out.GetStream()
	defer stream.Close()
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			if res.complete != nil {
				t.Fatalf("PayloadChunk after InvokeComplete")
			}
			if onChunk != nil {
				onChunk(len(res.chunks), v.Value.Payload)
			}
			res.chunks = append(res.chunks, v.Value.Payload)
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			if res.complete != nil {
				t.Fatalf("two InvokeComplete events")
			}
			res.complete = &v.Value
		default:
			t.Fatalf("unexpected event %T", ev)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("event stream: %v", err)
	}
	return res, nil
}

func TestLocalInvokeWithResponseStream(t *testing.T) {
	g := startGateway(t, streamSpec(t), nil)
	c := lambdaFor(g)

	t.Run("payload larger than one chunk reassembles exactly", func(t *testing.T) {
		// ~130 KB of varied JSON: several 32 KiB chunks, and any lost,
		// repeated or reordered chunk changes the bytes.
		var sb strings.Builder
		sb.WriteString(`{"items":[`)
		for i := range 4000 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"i":%d,"s":"item-%06d-ÿ"}`, i, i*7919)
		}
		sb.WriteString(`]}`)
		payload := []byte(sb.String())
		res, err := invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{
			FunctionName: aws.String("echo"), Payload: payload, LogType: types.LogTypeTail,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.payload(); string(got) != string(payload) {
			t.Fatalf("reassembled %d bytes, sent %d; first difference at %d", len(got), len(payload), firstDiff(got, payload))
		}
		if len(res.chunks) < 2 {
			t.Fatalf("a %d-byte payload came in %d chunk(s)", len(payload), len(res.chunks))
		}
		for i, ch := range res.chunks {
			if len(ch) == 0 || len(ch) > 32*1024 {
				t.Fatalf("chunk %d has %d bytes, want 1..32768", i, len(ch))
			}
		}
		if res.out.StatusCode != 200 || aws.ToString(res.out.ExecutedVersion) != "$LATEST" ||
			aws.ToString(res.out.ResponseStreamContentType) != "application/vnd.amazon.eventstream" {
			t.Fatalf("output: status %d version %q content type %q", res.out.StatusCode,
				aws.ToString(res.out.ExecutedVersion), aws.ToString(res.out.ResponseStreamContentType))
		}
		if res.complete == nil || res.complete.ErrorCode != nil || res.complete.ErrorDetails != nil {
			t.Fatalf("InvokeComplete %+v, want one without error", res.complete)
		}
		tail, err := base64.StdEncoding.DecodeString(aws.ToString(res.complete.LogResult))
		if err != nil || !strings.Contains(string(tail), "REPORT RequestId:") {
			t.Fatalf("LogResult %q (%v), want the log tail with the REPORT line", tail, err)
		}
	})

	t.Run("without Tail no log result", func(t *testing.T) {
		res, err := invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("echo:$LATEST"), Payload: []byte(`[1,2,3]`)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.payload()) != `[1,2,3]` || res.complete == nil || res.complete.LogResult != nil {
			t.Fatalf("payload %q complete %+v", res.payload(), res.complete)
		}
	})

	t.Run("function error goes into InvokeComplete", func(t *testing.T) {
		res, err := invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fail")}, nil)
		if err != nil {
			t.Fatalf("a function error is not an API error: %v", err)
		}
		if res.out.StatusCode != 200 || len(res.chunks) != 0 || res.complete == nil {
			t.Fatalf("status %d, %d chunks, complete %+v", res.out.StatusCode, len(res.chunks), res.complete)
		}
		var doc struct{ ErrorMessage, ErrorType string }
		if aws.ToString(res.complete.ErrorCode) != "MyErr" ||
			json.Unmarshal([]byte(aws.ToString(res.complete.ErrorDetails)), &doc) != nil || doc.ErrorMessage != "custom failure" || doc.ErrorType != "MyErr" {
			t.Fatalf("InvokeComplete ErrorCode %q ErrorDetails %q", aws.ToString(res.complete.ErrorCode), aws.ToString(res.complete.ErrorDetails))
		}
	})

	t.Run("chunks arrive while the function runs; a mid-stream failure ends in InvokeComplete", func(t *testing.T) {
		gate := newGate(t)
		ev, _ := json.Marshal(map[string]any{"gate": gate, "fail": true})
		res, err := invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("stream"), Payload: ev},
			func(i int, chunk []byte) {
				if i == 0 {
					// The function waits for the gate before it writes
					// more: this chunk came through while it ran.
					if string(chunk) != "chunk-1\n" {
						t.Errorf("first chunk %q", chunk)
					}
					openGate(t, gate)
				}
			})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.payload()) != "chunk-1\nchunk-2\n" {
			t.Fatalf("payload %q", res.payload())
		}
		if res.complete == nil || aws.ToString(res.complete.ErrorCode) != "errorString" ||
			!strings.Contains(aws.ToString(res.complete.ErrorDetails), "boom mid-stream") {
			t.Fatalf("InvokeComplete %+v, want the mid-stream error", res.complete)
		}
	})

	t.Run("a timeout is a function error in InvokeComplete", func(t *testing.T) {
		res, err := invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("slow"), Payload: []byte(`{"ms":5000}`)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.out.StatusCode != 200 || len(res.chunks) != 0 || res.complete == nil ||
			aws.ToString(res.complete.ErrorCode) != "Sandbox.Timedout" || !strings.Contains(aws.ToString(res.complete.ErrorDetails), "timed out") {
			t.Fatalf("status %d, %d chunks, complete %+v", res.out.StatusCode, len(res.chunks), res.complete)
		}
	})

	t.Run("client context and request id reach the function", func(t *testing.T) {
		cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
		res, err := invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("ctx"), ClientContext: aws.String(cc)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			RequestID     string `json:"request_id"`
			InvokedARN    string `json:"invoked_arn"`
			ClientContext struct {
				Custom map[string]string `json:"custom"`
			} `json:"client_context"`
		}
		if err := json.Unmarshal(res.payload(), &rep); err != nil {
			t.Fatalf("%v: %q", err, res.payload())
		}
		requestID, _ := awsmiddleware.GetRequestIDMetadata(res.out.ResultMetadata)
		if rep.RequestID == "" || rep.RequestID != requestID || rep.ClientContext.Custom["k"] != "v" ||
			rep.InvokedARN != "arn:aws:lambda:"+e2eRegion+":"+e2eAccount+":function:ctx" {
			t.Fatalf("function saw %s; x-amzn-RequestId %q", res.payload(), requestID)
		}
	})

	t.Run("DryRun validates without running", func(t *testing.T) {
		res, err := invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("echo"), InvocationType: types.ResponseStreamingInvocationTypeDryRun}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.out.StatusCode != 204 || len(res.chunks) != 0 || res.complete != nil {
			t.Fatalf("DryRun: status %d, %d chunks, complete %+v", res.out.StatusCode, len(res.chunks), res.complete)
		}
	})

	t.Run("refusals before the stream are Lambda errors", func(t *testing.T) {
		_, err := invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("missing")}, nil)
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("unknown function: %v, want ResourceNotFoundException", err)
		}
		_, err = invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("echo"), Qualifier: aws.String("7")}, nil)
		if !errors.As(err, &nf) {
			t.Fatalf("unknown qualifier: %v, want ResourceNotFoundException", err)
		}
		_, err = invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("echo"), Payload: []byte(`{not json`)}, nil)
		var bad *types.InvalidRequestContentException
		if !errors.As(err, &bad) {
			t.Fatalf("non-JSON payload: %v, want InvalidRequestContentException", err)
		}
		_, err = invokeStream(t, c, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("echo"), InvocationType: "Event"}, nil)
		var inval *types.InvalidParameterValueException
		if !errors.As(err, &inval) {
			t.Fatalf("InvocationType Event: %v, want InvalidParameterValueException", err)
		}
	})

	t.Run("SigV4 is enforced", func(t *testing.T) {
		for _, creds := range []struct{ key, secret, code string }{
			{e2eAccessKey, "wrong-secret", "InvalidSignatureException"},
			{"AKIDUNKNOWN", e2eSecretKey, "UnrecognizedClientException"},
		} {
			wrong := lambda.New(lambda.Options{
				Region: e2eRegion, BaseEndpoint: aws.String(g.base), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider(creds.key, creds.secret, ""),
			})
			_, err := invokeStream(t, wrong, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)}, nil)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != creds.code {
				t.Fatalf("key %s: %v, want %s", creds.key, err, creds.code)
			}
		}
	})
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
