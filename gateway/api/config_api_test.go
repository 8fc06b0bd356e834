package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/specs"
)

// The configuration reads answer from the catalog on a gateway without a
// function store, and its writes are refused rather than dropped; the tag
// routes take the (percent-encoded) function ARN as their path segment.
func TestConfigReadsWithoutAStore(t *testing.T) {
	reserved := 3
	s := fnSpec("tagged")
	s.ReservedConcurrency = &reserved
	s.Tags = map[string]string{"team": "core"}
	fns := append(basicFunctions(), &catalog.Function{Name: "tagged", Versions: map[string]*specs.Function{catalog.Latest: s}})
	e := newEnv(t, fns, nil)
	c := e.client(accessKey, secretKey)
	ctx := context.Background()
	arn := "arn:aws:lambda:" + region + ":" + account + ":function:tagged"

	cc, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("tagged")})
	if err != nil || aws.ToInt32(cc.ReservedConcurrentExecutions) != 3 {
		t.Fatalf("GetFunctionConcurrency: %v %+v", err, cc)
	}
	cc, err = c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("ok")})
	if err != nil || cc.ReservedConcurrentExecutions != nil {
		t.Fatalf("GetFunctionConcurrency of an unreserved function: %v %+v", err, cc)
	}
	tags, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn)})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["team"] != "core" {
		t.Fatalf("ListTags: %v %+v", err, tags)
	}
	pcs, err := c.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("ok")})
	if err != nil || len(pcs.ProvisionedConcurrencyConfigs) != 0 {
		t.Fatalf("ListProvisionedConcurrencyConfigs: %v %+v", err, pcs)
	}

	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"tags of another account's function", func() error {
			_, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String("arn:aws:lambda:" + region + ":999999999999:function:tagged")})
			return err
		}, "ResourceNotFoundException"},
		{"tags of a version", func() error {
			_, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn + ":1")})
			return err
		}, "InvalidParameterValueException"},
		{"concurrency of an unknown function", func() error {
			_, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("nope")})
			return err
		}, "ResourceNotFoundException"},
		{"a write without a store", func() error {
			_, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("ok"), ReservedConcurrentExecutions: aws.Int32(1)})
			return err
		}, "ServiceException"},
		{"provisioned config without a store", func() error {
			_, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("ok"), Qualifier: aws.String("1")})
			return err
		}, "InvalidParameterValueException"},
	}
	for _, tc := range cases {
		var ae smithy.APIError
		if err := tc.call(); !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
			t.Fatalf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("tagged")}); !errors.As(err, &nf) {
		t.Fatalf("GetFunctionUrlConfig without URL: %v", err)
	}
}

// Every configuration operation is in the route table (so the server's
// unsigned-request walk covers it), with Lambda's method and path.
func TestConfigRoutes(t *testing.T) {
	want := map[string]string{
		"PutFunctionConcurrency":       http.MethodPut + " /2017-10-31/functions/{FunctionName}/concurrency",
		"GetFunctionConcurrency":       http.MethodGet + " /2019-09-30/functions/{FunctionName}/concurrency",
		"DeleteFunctionConcurrency":    http.MethodDelete + " /2017-10-31/functions/{FunctionName}/concurrency",
		"ProvisionedConcurrencyConfig": http.MethodGet + " /2019-09-30/functions/{FunctionName}/provisioned-concurrency",
		"CreateFunctionUrlConfig":      http.MethodPost + " /2021-10-31/functions/{FunctionName}/url",
		"UpdateFunctionUrlConfig":      http.MethodPut + " /2021-10-31/functions/{FunctionName}/url",
		"DeleteFunctionUrlConfig":      http.MethodDelete + " /2021-10-31/functions/{FunctionName}/url",
		"GetFunctionUrlConfig":         http.MethodGet + " /2021-10-31/functions/{FunctionName}/url",
		"ListFunctionUrlConfigs":       http.MethodGet + " /2021-10-31/functions/{FunctionName}/urls",
		"TagResource":                  http.MethodPost + " /2017-03-31/tags/{ARN}",
		"UntagResource":                http.MethodDelete + " /2017-03-31/tags/{ARN}",
		"ListTags":                     http.MethodGet + " /2017-03-31/tags/{ARN}",
		"GetAccountSettings":           http.MethodGet + " /2016-08-19/account-settings",
	}
	seen := map[string]int{}
	for _, rt := range api.Routes() {
		seen[rt.Operation]++
		w, ok := want[rt.Operation]
		if !ok {
			continue
		}
		if got := rt.Methods[0] + " " + rt.Path; got != w {
			t.Errorf("%s: %s, want %s", rt.Operation, got, w)
		}
	}
	for op := range want {
		if seen[op] != 1 {
			t.Errorf("%s is in the route table %d times, want once", op, seen[op])
		}
	}
}
