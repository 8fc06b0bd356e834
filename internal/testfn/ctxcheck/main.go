// Command ctxcheck is a real aws-lambda-go function that reports what the
// platform gave it: the invocation context (deadline, request id, invoked
// ARN, client context, identity, tenant), lambdacontext's function facts and
// the Lambda environment variables.
package main

import (
	"context"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Report is the function's answer.
type Report struct {
	DeadlineMs      int64                       `json:"deadline_ms"`
	RequestID       string                      `json:"request_id"`
	InvokedARN      string                      `json:"invoked_arn"`
	ClientContext   lambdacontext.ClientContext `json:"client_context"`
	CognitoID       string                      `json:"cognito_identity_id"`
	TenantID        string                      `json:"tenant_id"`
	TraceID         string                      `json:"trace_id"`
	FunctionName    string                      `json:"function_name"`
	FunctionVersion string                      `json:"function_version"`
	MemoryMB        int                         `json:"memory_mb"`
	LogGroup        string                      `json:"log_group"`
	LogStream       string                      `json:"log_stream"`
	Cwd             string                      `json:"cwd"`
	Env             map[string]string           `json:"env"`
}

func main() {
	lambda.Start(func(ctx context.Context) (*Report, error) {
		r := &Report{
			FunctionName:    lambdacontext.FunctionName,
			FunctionVersion: lambdacontext.FunctionVersion,
			MemoryMB:        lambdacontext.MemoryLimitInMB,
			LogGroup:        lambdacontext.LogGroupName,
			LogStream:       lambdacontext.LogStreamName,
			Env:             map[string]string{},
		}
		if d, ok := ctx.Deadline(); ok {
			r.DeadlineMs = d.UnixMilli()
		}
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			r.RequestID = lc.AwsRequestID
			r.InvokedARN = lc.InvokedFunctionArn
			r.ClientContext = lc.ClientContext
			r.CognitoID = lc.Identity.CognitoIdentityID
			r.TenantID = lc.TenantID
		}
		if v, ok := ctx.Value("x-amzn-trace-id").(string); ok {
			r.TraceID = v
		}
		r.Cwd, _ = os.Getwd()
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			r.Env[k] = v
		}
		return r, nil
	})
}
