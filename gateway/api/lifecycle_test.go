package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
	"github.com/nimbus-fn/nimbus/gateway/versions"
)

// storeEnv is a gateway API over a function store and version store with
// no controller: the test moves functions into service itself (serve).
func storeEnv(t *testing.T) (*lambda.Client, func(name string)) {
	t.Helper()
	local, err := versions.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := functions.NewStore(local)
	a := api.New(api.Options{Region: region, AccountID: account,
		Verifier: &sigv4.Verifier{Keys: map[string]string{accessKey: secretKey}, Region: region},
		Manage:   &api.Management{Functions: fs, Versions: versions.New(local, nil), Code: urlCode{}}},
		snapCatalog{catalog.NewSnapshot(nil)}, nil, fixedLimits{}, metrics.New(), nil)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	serve := func(name string) {
		t.Helper()
		f, err := fs.Get(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.SetStatus(context.Background(), name, f.RevisionID, func(n *functions.Function) {
			n.Applied, n.Serving = n.RevisionID, n.Spec
			n.State, n.LastUpdateStatus = functions.StateActive, functions.UpdateSuccessful
		}); err != nil {
			t.Fatal(err)
		}
	}
	return (&env{srv: srv}).client(accessKey, secretKey), serve
}

// fixedLimits is an account of 1000 concurrent executions.
type fixedLimits struct{}

func (fixedLimits) AccountConcurrency() int { return 1000 }
func (fixedLimits) UnreservedLimit() int    { return 1000 }

func bootstrapZip(t *testing.T, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(body))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Writes that are not function updates (reserved concurrency, tags) leave
// LastUpdateStatus alone and are not refused while an update is in
// progress, as in Lambda; a second update during the first is.
func TestConfigWritesAreNotUpdates(t *testing.T) {
	c, serve := storeEnv(t)
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("fn"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: bootstrapZip(t, "#!/bin/sh\n")},
	}); err != nil {
		t.Fatal(err)
	}
	serve("fn")
	arn := "arn:aws:lambda:" + region + ":" + account + ":function:fn"
	if _, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: map[string]string{"team": "a"}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("fn")})
	if err != nil || got.Configuration.LastUpdateStatus != types.LastUpdateStatusSuccessful || got.Tags["team"] != "a" {
		t.Fatalf("after TagResource: %v %+v", err, got)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"), MemorySize: aws.Int32(256)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("fn"), ReservedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatalf("PutFunctionConcurrency during an update: %v", err)
	}
	got, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("fn")})
	if err != nil || got.Configuration.LastUpdateStatus != types.LastUpdateStatusInProgress ||
		aws.ToInt32(got.Configuration.MemorySize) != 256 || got.Concurrency == nil || aws.ToInt32(got.Concurrency.ReservedConcurrentExecutions) != 2 {
		t.Fatalf("after an update and a concurrency write: %v %+v", err, got)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"), MemorySize: aws.Int32(512)}); errCode(err) != "ResourceConflictException" {
		t.Fatalf("a second update while the first is in progress: %v", err)
	}
}

// Lambda numbers versions from 1 again for a function deleted and created
// anew, and PublishLayerVersion always makes a new layer version.
func TestNumberingAfterDeleteAndLayerRepublish(t *testing.T) {
	c, serve := storeEnv(t)
	ctx := context.Background()
	create := func() {
		t.Helper()
		if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("fn"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: bootstrapZip(t, "#!/bin/sh\n")},
		}); err != nil {
			t.Fatal(err)
		}
		serve("fn")
	}
	publish := func(want string) {
		t.Helper()
		v, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("fn")})
		if err != nil || aws.ToString(v.Version) != want {
			t.Fatalf("PublishVersion: %v %+v, want version %s", err, v, want)
		}
	}
	create()
	publish("1")
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"), ZipFile: bootstrapZip(t, "#!/bin/sh\n# two\n")}); err != nil {
		t.Fatal(err)
	}
	serve("fn")
	publish("2")
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	create()
	publish("1")

	layer := func() int64 {
		t.Helper()
		out, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("deps"),
			Content: &types.LayerVersionContentInput{ZipFile: bootstrapZip(t, "same")}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Version
	}
	if a, b := layer(), layer(); a != 1 || b != 2 {
		t.Fatalf("identical PublishLayerVersion calls made versions %d and %d, want 1 and 2", a, b)
	}
}
