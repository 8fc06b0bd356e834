package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// zipTestfn zips a real aws-lambda-go test function's directory.
func zipTestfn(t *testing.T, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := bundle.Zip(testfn.Dir(t, name), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// createAPIFunction creates a function through CreateFunction and waits
// until it is Active.
func createAPIFunction(t *testing.T, lc *lambda.Client, in *lambda.CreateFunctionInput) *lambda.CreateFunctionOutput {
	t.Helper()
	if in.Runtime == "" {
		in.Runtime = types.RuntimeProvidedal2023
	}
	if in.Handler == nil {
		in.Handler = aws.String("bootstrap")
	}
	if in.Role == nil {
		in.Role = aws.String("arn:aws:iam::" + e2eAccount + ":role/nimbus-test")
	}
	out, err := lc.CreateFunction(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", aws.ToString(in.FunctionName), err)
	}
	waitUpdated(t, lc, aws.ToString(in.FunctionName))
	return out
}

// waitUpdated waits until the function is Active and its last update
// finished (the gateway refuses writes while one is in progress, as Lambda
// does).
func waitUpdated(t *testing.T, lc *lambda.Client, name string) {
	t.Helper()
	eventually(t, 30*time.Second, func() bool {
		out, err := lc.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
		if err != nil {
			t.Logf("GetFunctionConfiguration %s: %v", name, err)
			return false
		}
		if out.LastUpdateStatus == types.LastUpdateStatusFailed || out.State == types.StateFailed {
			t.Fatalf("update of %s failed: %s %s", name, aws.ToString(out.StateReason), aws.ToString(out.LastUpdateStatusReason))
		}
		return out.State == types.StateActive && out.LastUpdateStatus == types.LastUpdateStatusSuccessful
	}, name+" active with its last update applied")
}

// apiCode is the Lambda error code of err ("" if none).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want %s", what, err, got, code)
	}
}

func (g *versionsGateway) invokeRaw(name, qualifier string) (*lambda.InvokeOutput, error) {
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{"hello":"config"}`)}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	return g.lambda().Invoke(context.Background(), in)
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestManageConfigAPI drives the concurrency, provisioned concurrency,
// function URL, tag and account-settings operations with aws-sdk-go-v2's
// Lambda client against a real `nimbus dev` started on an empty
// directory, on functions created through the API with real aws-lambda-go
// code, and checks what each does to invocations, not just the echo.
func TestManageConfigAPI(t *testing.T) {
	g := startVersionsGateway(t, map[string]string{"declared.hcl": fmt.Sprintf(`
function "declared" {
  runtime = "provided.al2023"
  handler = "bootstrap"
  code {
    dir = %q
  }
}
`, testfn.Dir(t, "echo"))})
	lc := g.lambda()
	ctx := context.Background()
	echoZip := zipTestfn(t, "echo")
	checkZip := zipTestfn(t, "ctxcheck")
	arn := func(name string) string {
		return "arn:aws:lambda:" + e2eRegion + ":" + e2eAccount + ":function:" + name
	}

	createAPIFunction(t, lc, &lambda.CreateFunctionInput{FunctionName: aws.String("cc"), Code: &types.FunctionCode{ZipFile: echoZip}})
	createAPIFunction(t, lc, &lambda.CreateFunctionInput{FunctionName: aws.String("web"), Code: &types.FunctionCode{ZipFile: echoZip}})
	createAPIFunction(t, lc, &lambda.CreateFunctionInput{FunctionName: aws.String("tagged"), Code: &types.FunctionCode{ZipFile: echoZip},
		Tags: map[string]string{"team": "core"}})
	prov := createAPIFunction(t, lc, &lambda.CreateFunctionInput{FunctionName: aws.String("prov"), Code: &types.FunctionCode{ZipFile: checkZip}, Publish: true})
	if aws.ToString(prov.Version) != "1" {
		t.Fatalf("CreateFunction Publish=true gave version %q, want 1", aws.ToString(prov.Version))
	}

	t.Run("reserved concurrency", func(t *testing.T) {
		if _, err := g.invokeRaw("cc", ""); err != nil {
			t.Fatalf("invoke before any reservation: %v", err)
		}
		out, err := lc.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("cc"), ReservedConcurrentExecutions: aws.Int32(0)})
		if err != nil || aws.ToInt32(out.ReservedConcurrentExecutions) != 0 {
			t.Fatalf("PutFunctionConcurrency 0: %v %+v", err, out)
		}
		got, err := lc.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("cc")})
		if err != nil || got.ReservedConcurrentExecutions == nil || *got.ReservedConcurrentExecutions != 0 {
			t.Fatalf("GetFunctionConcurrency: %v %+v", err, got)
		}
		var lastErr error
		eventually(t, 30*time.Second, func() bool {
			_, lastErr = g.invokeRaw("cc", "")
			var tm *types.TooManyRequestsException
			return errors.As(lastErr, &tm)
		}, "reserved 0 throttles invocations")
		waitUpdated(t, lc, "cc")
		eventually(t, 30*time.Second, func() bool {
			fn, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("cc")})
			return err == nil && fn.Concurrency != nil && aws.ToInt32(fn.Concurrency.ReservedConcurrentExecutions) == 0
		}, "GetFunction's Concurrency shows the reservation")

		if _, err := lc.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("cc")}); err != nil {
			t.Fatal(err)
		}
		got, err = lc.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("cc")})
		if err != nil || got.ReservedConcurrentExecutions != nil {
			t.Fatalf("GetFunctionConcurrency after delete: %v %+v", err, got)
		}
		eventually(t, 30*time.Second, func() bool {
			out, err := g.invokeRaw("cc", "")
			return err == nil && out.FunctionError == nil
		}, "invocations run again once the reservation is gone")
		waitUpdated(t, lc, "cc")

		errorCases := []struct {
			name string
			in   *lambda.PutFunctionConcurrencyInput
			code string
			msg  string
		}{
			{"unknown function", &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("nope"), ReservedConcurrentExecutions: aws.Int32(1)}, "ResourceNotFoundException", ""},
			{"negative", &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("cc"), ReservedConcurrentExecutions: aws.Int32(-1)}, "InvalidParameterValueException", ""},
			{"beyond the unreserved minimum", &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("cc"), ReservedConcurrentExecutions: aws.Int32(950)}, "InvalidParameterValueException",
				"decreases account's UnreservedConcurrentExecution below its minimum value of [100]"},
		}
		for _, tc := range errorCases {
			_, err := lc.PutFunctionConcurrency(ctx, tc.in)
			wantCode(t, tc.name, err, tc.code)
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%s: %v, want message with %q", tc.name, err, tc.msg)
			}
		}
		_, err = lc.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("nope")})
		wantCode(t, "GetFunctionConcurrency of an unknown function", err, "ResourceNotFoundException")

		// A function declared in a spec is adopted into the store and
		// throttled the same way.
		if _, err := g.invokeRaw("declared", ""); err != nil {
			t.Fatalf("invoke declared: %v", err)
		}
		if _, err := lc.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("declared"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() bool {
			_, err := g.invokeRaw("declared", "")
			var tm *types.TooManyRequestsException
			return errors.As(err, &tm)
		}, "reserved 0 throttles the spec-declared function")
		waitUpdated(t, lc, "declared")
	})

	t.Run("function URL config", func(t *testing.T) {
		urlPath := g.base + "/url/web/"
		if code, _ := httpGet(t, urlPath); code != http.StatusNotFound {
			t.Fatalf("function URL before CreateFunctionUrlConfig: status %d, want 404", code)
		}
		created, err := lc.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{
			FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone,
			Cors: &types.Cors{AllowOrigins: []string{"https://example.com"}, MaxAge: aws.Int32(60)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(created.FunctionUrl) == "" || created.AuthType != types.FunctionUrlAuthTypeNone || created.InvokeMode != types.InvokeModeBuffered {
			t.Fatalf("CreateFunctionUrlConfig: %+v", created)
		}
		createdAt, err := time.Parse("2006-01-02T15:04:05.000Z", aws.ToString(created.CreationTime))
		if err != nil {
			t.Fatalf("CreationTime %q: %v", aws.ToString(created.CreationTime), err)
		}
		eventually(t, 30*time.Second, func() bool {
			code, _ := httpGet(t, urlPath)
			return code == http.StatusOK
		}, "the function URL answers once its config is created")
		waitUpdated(t, lc, "web")

		_, err = lc.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone})
		wantCode(t, "second CreateFunctionUrlConfig", err, "ResourceConflictException")

		upd, err := lc.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeAwsIam})
		if err != nil {
			t.Fatal(err)
		}
		if upd.AuthType != types.FunctionUrlAuthTypeAwsIam || upd.Cors == nil || len(upd.Cors.AllowOrigins) != 1 {
			t.Fatalf("UpdateFunctionUrlConfig kept the CORS and changed the auth? %+v", upd)
		}
		if aws.ToString(upd.CreationTime) != aws.ToString(created.CreationTime) {
			t.Fatalf("update changed CreationTime: %q → %q", aws.ToString(created.CreationTime), aws.ToString(upd.CreationTime))
		}
		modified, err := time.Parse("2006-01-02T15:04:05.000Z", aws.ToString(upd.LastModifiedTime))
		if err != nil || modified.Before(createdAt) {
			t.Fatalf("LastModifiedTime %q (err %v) before CreationTime %q", aws.ToString(upd.LastModifiedTime), err, aws.ToString(created.CreationTime))
		}
		eventually(t, 30*time.Second, func() bool {
			code, _ := httpGet(t, urlPath)
			return code == http.StatusForbidden
		}, "an AWS_IAM function URL refuses unsigned requests")
		waitUpdated(t, lc, "web")
		got, err := lc.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")})
		if err != nil || got.AuthType != types.FunctionUrlAuthTypeAwsIam || aws.ToString(got.LastModifiedTime) != aws.ToString(upd.LastModifiedTime) {
			t.Fatalf("GetFunctionUrlConfig: %v %+v", err, got)
		}
		list, err := lc.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web")})
		if err != nil || len(list.FunctionUrlConfigs) != 1 {
			t.Fatalf("ListFunctionUrlConfigs: %v %+v", err, list)
		}

		errorCases := []struct {
			name string
			call func() error
			code string
		}{
			{"create on an unknown function", func() error {
				_, err := lc.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("nope"), AuthType: types.FunctionUrlAuthTypeNone})
				return err
			}, "ResourceNotFoundException"},
			{"bad auth type", func() error {
				_, err := lc.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: "KERBEROS"})
				return err
			}, "InvalidParameterValueException"},
			{"bad invoke mode", func() error {
				_, err := lc.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), InvokeMode: "SOMETIMES"})
				return err
			}, "InvalidParameterValueException"},
			{"a version number", func() error {
				_, err := lc.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("1"), AuthType: types.FunctionUrlAuthTypeNone})
				return err
			}, "InvalidParameterValueException"},
			{"get a config the function lacks", func() error {
				_, err := lc.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("cc")})
				return err
			}, "ResourceNotFoundException"},
		}
		for _, tc := range errorCases {
			wantCode(t, tc.name, tc.call(), tc.code)
		}

		if _, err := lc.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); err != nil {
			t.Fatal(err)
		}
		_, err = lc.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")})
		wantCode(t, "GetFunctionUrlConfig after delete", err, "ResourceNotFoundException")
		eventually(t, 30*time.Second, func() bool {
			code, _ := httpGet(t, urlPath)
			return code == http.StatusNotFound
		}, "the function URL is gone once its config is deleted")
		waitUpdated(t, lc, "web")
		_, err = lc.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")})
		wantCode(t, "second DeleteFunctionUrlConfig", err, "ResourceNotFoundException")
	})

	t.Run("tags", func(t *testing.T) {
		tags := func() map[string]string {
			t.Helper()
			out, err := lc.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn("tagged"))})
			if err != nil {
				t.Fatalf("ListTags: %v", err)
			}
			return out.Tags
		}
		if got := tags(); len(got) != 1 || got["team"] != "core" {
			t.Fatalf("tags from CreateFunction: %v", got)
		}
		if _, err := lc.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn("tagged")), Tags: map[string]string{"env": "dev", "team": "edge"}}); err != nil {
			t.Fatal(err)
		}
		if got := tags(); len(got) != 2 || got["team"] != "edge" || got["env"] != "dev" {
			t.Fatalf("tags after TagResource: %v", got)
		}
		waitUpdated(t, lc, "tagged")
		if _, err := lc.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(arn("tagged")), TagKeys: []string{"team", "absent"}}); err != nil {
			t.Fatal(err)
		}
		if got := tags(); len(got) != 1 || got["env"] != "dev" {
			t.Fatalf("tags after UntagResource: %v", got)
		}
		waitUpdated(t, lc, "tagged")
		// GetFunction reads what serves, which follows the applied write.
		eventually(t, 30*time.Second, func() bool {
			fn, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("tagged")})
			return err == nil && len(fn.Tags) == 1 && fn.Tags["env"] == "dev"
		}, "GetFunction's Tags follow UntagResource")

		errorCases := []struct {
			name string
			call func() error
			code string
		}{
			{"unknown function", func() error {
				_, err := lc.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn("nope"))})
				return err
			}, "ResourceNotFoundException"},
			{"qualified ARN", func() error {
				_, err := lc.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn("prov") + ":1"), Tags: map[string]string{"a": "b"}})
				return err
			}, "InvalidParameterValueException"},
			{"reserved prefix", func() error {
				_, err := lc.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn("tagged")), Tags: map[string]string{"aws:owner": "x"}})
				return err
			}, "InvalidParameterValueException"},
			{"a name, not an ARN", func() error {
				_, err := lc.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String("tagged")})
				return err
			}, "InvalidParameterValueException"},
		}
		for _, tc := range errorCases {
			wantCode(t, tc.name, tc.call(), tc.code)
		}
	})

	t.Run("provisioned concurrency", func(t *testing.T) {
		put := func(q string, n int32) (*lambda.PutProvisionedConcurrencyConfigOutput, error) {
			return lc.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
				FunctionName: aws.String("prov"), Qualifier: aws.String(q), ProvisionedConcurrentExecutions: aws.Int32(n)})
		}
		errorCases := []struct {
			name      string
			qualifier string
			n         int32
			code      string
		}{
			{"$LATEST", "$LATEST", 1, "InvalidParameterValueException"},
			{"unknown version", "9", 1, "ResourceNotFoundException"},
			{"zero", "1", 0, "InvalidParameterValueException"},
			{"beyond the account", "1", 5000, "InvalidParameterValueException"},
		}
		for _, tc := range errorCases {
			_, err := put(tc.qualifier, tc.n)
			wantCode(t, tc.name, err, tc.code)
		}
		_, err := lc.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("nope"), Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(1)})
		wantCode(t, "unknown function", err, "ResourceNotFoundException")
		_, err = lc.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("1")})
		wantCode(t, "Get before Put", err, "ProvisionedConcurrencyConfigNotFoundException")

		out, err := put("1", 1)
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != types.ProvisionedConcurrencyStatusEnumInProgress || aws.ToInt32(out.RequestedProvisionedConcurrentExecutions) != 1 {
			t.Fatalf("PutProvisionedConcurrencyConfig: %+v", out)
		}
		eventually(t, 60*time.Second, func() bool {
			got, err := lc.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("1")})
			if err != nil {
				t.Logf("GetProvisionedConcurrencyConfig: %v", err)
				return false
			}
			if got.Status == types.ProvisionedConcurrencyStatusEnumFailed {
				t.Fatalf("provisioned config FAILED: %s", aws.ToString(got.StatusReason))
			}
			return got.Status == types.ProvisionedConcurrencyStatusEnumReady && aws.ToInt32(got.AllocatedProvisionedConcurrentExecutions) == 1
		}, "the provisioned config reaches READY")

		list, err := lc.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("prov")})
		if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 || aws.ToString(list.ProvisionedConcurrencyConfigs[0].FunctionArn) != arn("prov")+":1" {
			t.Fatalf("ListProvisionedConcurrencyConfigs: %v %+v", err, list)
		}

		inv, err := g.invokeRaw("prov", "1")
		if err != nil || inv.FunctionError != nil {
			t.Fatalf("invoke prov:1: %v %+v", err, inv)
		}
		var rep struct {
			FunctionVersion string            `json:"function_version"`
			Env             map[string]string `json:"env"`
		}
		if err := json.Unmarshal(inv.Payload, &rep); err != nil {
			t.Fatalf("payload %s: %v", inv.Payload, err)
		}
		if rep.FunctionVersion != "1" || rep.Env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "provisioned-concurrency" {
			t.Fatalf("prov:1 ran version %q with init type %q, want a provisioned instance of version 1", rep.FunctionVersion, rep.Env["AWS_LAMBDA_INITIALIZATION_TYPE"])
		}
		// $LATEST is not provisioned by the version's config.
		inv, err = g.invokeRaw("prov", "")
		if err != nil || inv.FunctionError != nil {
			t.Fatalf("invoke prov: %v %+v", err, inv)
		}
		if err := json.Unmarshal(inv.Payload, &rep); err != nil {
			t.Fatal(err)
		}
		if got := rep.Env["AWS_LAMBDA_INITIALIZATION_TYPE"]; got != "on-demand" {
			t.Fatalf("$LATEST ran with init type %q, want on-demand", got)
		}

		if _, err := lc.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("1")}); err != nil {
			t.Fatal(err)
		}
		_, err = lc.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("1")})
		wantCode(t, "Get after Delete", err, "ProvisionedConcurrencyConfigNotFoundException")
	})

	t.Run("account settings", func(t *testing.T) {
		var want int64
		for _, name := range []string{"cc", "web", "tagged", "prov"} {
			fn, err := lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			want += fn.CodeSize
			if name == "prov" {
				want += fn.CodeSize // version 1 shares $LATEST's code
			}
		}
		out, err := lc.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if out.AccountUsage.FunctionCount != 5 || out.AccountUsage.TotalCodeSize != want || want == 0 {
			t.Fatalf("AccountUsage = %d functions, %d bytes; want 5 functions (4 created, 1 declared), %d bytes", out.AccountUsage.FunctionCount, out.AccountUsage.TotalCodeSize, want)
		}
		if out.AccountLimit.ConcurrentExecutions != 1000 || aws.ToInt32(out.AccountLimit.UnreservedConcurrentExecutions) != 1000 {
			t.Fatalf("AccountLimit = %+v", out.AccountLimit)
		}
	})
}
