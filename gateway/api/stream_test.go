package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
)

// The real-function cases of InvokeWithResponseStream are in
// e2e/stream_invoke_test.go; these cover what a real instance does not
// readily do: a throttle before the stream, and an instance connection
// that breaks in the middle of one.

func TestInvokeWithResponseStreamThrottleIsAnAPIError(t *testing.T) {
	fns := basicFunctions()
	zero := 0
	fns[0].Versions[catalog.Latest].ReservedConcurrency = &zero
	e := newEnv(t, fns, nil)
	_, err := e.client(accessKey, secretKey).InvokeWithResponseStream(context.Background(),
		&lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("ok"), Payload: []byte(`1`)})
	var tooMany *types.TooManyRequestsException
	if !errors.As(err, &tooMany) {
		t.Fatalf("reserved concurrency 0: %v, want TooManyRequestsException", err)
	}
}

func TestInvokeWithResponseStreamBrokenInstanceEndsInInvokeComplete(t *testing.T) {
	broken := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // cut the connection mid-body
	}
	e := newEnv(t, basicFunctions(), map[string]gatewaytest.Handler{"ok": broken})
	out, err := e.client(accessKey, secretKey).InvokeWithResponseStream(context.Background(),
		&lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("ok"), Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var payload []byte
	var complete *types.InvokeWithResponseStreamCompleteEvent
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			payload = append(payload, v.Value.Payload...)
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			complete = &v.Value
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("event stream: %v", err)
	}
	if string(payload) != "partial" || complete == nil || aws.ToString(complete.ErrorCode) != "ServiceException" {
		t.Fatalf("payload %q, InvokeComplete %+v; want the bytes that came and a ServiceException", payload, complete)
	}
}
