package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// A function created through the API and not in service yet (no
// controller runs here, so it stays Pending): management reads answer for
// it, an invoke is a conflict naming the state, and it can be deleted.
func TestPendingFunction(t *testing.T) {
	c, _ := listEnv(t)
	ctx := context.Background()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("bootstrap")
	_, _ = w.Write([]byte("#!/bin/sh\n"))
	_ = zw.Close()
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("pending"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: buf.Bytes()},
	}); err != nil {
		t.Fatal(err)
	}
	code := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("pending")})
	if err != nil || got.Configuration.State != types.StatePending {
		t.Fatalf("GetFunction of a pending function: %v %+v", err, got)
	}
	pcs, err := c.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("pending")})
	if err != nil || len(pcs.ProvisionedConcurrencyConfigs) != 0 {
		t.Fatalf("ListProvisionedConcurrencyConfigs of a pending function: %v %+v", err, pcs)
	}
	vs, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("pending")})
	if err != nil || len(vs.Versions) != 1 {
		t.Fatalf("ListVersionsByFunction of a pending function: %v %+v", err, vs)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pending")})
	if code(err) != "ResourceConflictException" {
		t.Fatalf("invoking a pending function: %v", err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("pending")}); err != nil {
		t.Fatalf("deleting a pending function: %v", err)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("pending")}); code(err) != "ResourceNotFoundException" {
		t.Fatalf("GetFunction after delete: %v", err)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pending")}); code(err) != "ResourceNotFoundException" {
		t.Fatalf("invoke after delete: %v", err)
	}
}
