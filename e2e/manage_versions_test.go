package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// Versions, aliases and layers through the Lambda management API alone:
// aws-sdk-go-v2's lambda client against a real `nimbus dev`, a real
// aws-lambda-go function created with CreateFunction, a python function
// whose layer was published with PublishLayerVersion, and a function a
// spec file declares.

// zipFiles packages name → content files (zipDir: manage_functions_test.go).
func zipFiles(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, files)
	return zipDir(t, dir)
}

// awaitActive waits until fn's $LATEST has been applied.
func awaitActive(t *testing.T, c *lambda.Client, fn string) *types.FunctionConfiguration {
	t.Helper()
	var cfg *types.FunctionConfiguration
	eventually(t, 60*time.Second, func() bool {
		out, err := c.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fn)})
		if is[*types.ResourceNotFoundException](err) {
			return false // the gateway lists a created function once it is applied
		}
		if err != nil {
			t.Fatalf("GetFunctionConfiguration %s: %v", fn, err)
		}
		if out.State == types.StateFailed || out.LastUpdateStatus == types.LastUpdateStatusFailed {
			t.Fatalf("%s failed: %s %s", fn, aws.ToString(out.StateReason), aws.ToString(out.LastUpdateStatusReason))
		}
		cfg = &types.FunctionConfiguration{RevisionId: out.RevisionId, CodeSha256: out.CodeSha256}
		return out.State == types.StateActive && out.LastUpdateStatus == types.LastUpdateStatusSuccessful
	}, fn+" active")
	// nimbus dev reports Active a moment before its catalog routes the
	// function (the store's status is written before the catalog reloads):
	// wait for the invoke path too.
	eventually(t, 10*time.Second, func() bool {
		_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{}`), InvocationType: types.InvocationTypeDryRun})
		return !is[*types.ResourceNotFoundException](err)
	}, fn+" invocable")
	return cfg
}

// expectAPIError asserts err is the Lambda error T.
func expectAPIError[T error](t *testing.T, what string, err error) {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Errorf("%s: got %v, want %T", what, err, target)
	}
}

type aliasReport struct {
	FunctionVersion string `json:"function_version"`
	MemoryMB        int    `json:"memory_mb"`
	InvokedARN      string `json:"invoked_arn"`
}

func invokeAlias(t *testing.T, c *lambda.Client, fn, qualifier string) (aliasReport, string) {
	t.Helper()
	return invokeJSON[aliasReport](t, c, fn, qualifier)
}

const specPyFiles = `function "specpy" {
  runtime = "python3.12"
  handler = "app.handler"
  code {
    dir = "specpy"
  }
}
`

func TestManageVersionsAliasesLayersWithSDK(t *testing.T) {
	g := startVersionsGateway(t, map[string]string{
		"nimbus.hcl":     specPyFiles,
		"specpy/app.py":  "def handler(event, context):\n    return {\"v\": \"one\"}\n",
		"specpy/keep.md": "kept\n",
	})
	c := g.lambda()
	ctx := context.Background()

	// A real aws-lambda-go function, created and changed through the API.
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("ctx"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::" + e2eAccount + ":role/x"), MemorySize: aws.Int32(128),
		Code: &types.FunctionCode{ZipFile: zipDir(t, testfn.Dir(t, "ctxcheck"))},
	}); err != nil {
		t.Fatal(err)
	}
	latest := awaitActive(t, c, "ctx")

	// PublishVersion preconditions.
	wrongSHA := base64.StdEncoding.EncodeToString(make([]byte, 32))
	_, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ctx"), CodeSha256: aws.String(wrongSHA)})
	expectAPIError[*types.InvalidParameterValueException](t, "PublishVersion with another CodeSha256", err)
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ctx"), RevisionId: aws.String("stale")})
	expectAPIError[*types.PreconditionFailedException](t, "PublishVersion with a stale RevisionId", err)

	v1, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ctx"), Description: aws.String("first"),
		CodeSha256: latest.CodeSha256, RevisionId: latest.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(v1.Version) != "1" || aws.ToString(v1.Description) != "first" || aws.ToString(v1.CodeSha256) != aws.ToString(latest.CodeSha256) ||
		aws.ToString(v1.FunctionArn) != "arn:aws:lambda:"+e2eRegion+":"+e2eAccount+":function:ctx:1" {
		t.Fatalf("version 1: %+v", v1)
	}
	// Unchanged $LATEST: the same version again, as Lambda does.
	if again, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ctx")}); err != nil || aws.ToString(again.Version) != "1" {
		t.Fatalf("republishing unchanged $LATEST: %+v %v", again, err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("ctx"), MemorySize: aws.Int32(256)}); err != nil {
		t.Fatal(err)
	}
	awaitActive(t, c, "ctx")
	v2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ctx")})
	if err != nil || aws.ToString(v2.Version) != "2" || aws.ToInt32(v2.MemorySize) != 256 {
		t.Fatalf("version 2: %+v %v", v2, err)
	}

	lv, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("ctx")})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, v := range lv.Versions {
		listed = append(listed, aws.ToString(v.Version))
	}
	if strings.Join(listed, ",") != "$LATEST,1,2" {
		t.Fatalf("ListVersionsByFunction: %v", listed)
	}

	// A weighted alias: 1 with half the traffic on 2.
	live, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		Description: aws.String("canary"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.5}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(live.AliasArn) != "arn:aws:lambda:"+e2eRegion+":"+e2eAccount+":function:ctx:live" || aws.ToString(live.RevisionId) == "" ||
		live.RoutingConfig == nil || live.RoutingConfig.AdditionalVersionWeights["2"] != 0.5 {
		t.Fatalf("CreateAlias: %+v", live)
	}
	seen := map[string]int{}
	for range 40 {
		r, executed := invokeAlias(t, c, "ctx", "live")
		if r.FunctionVersion != executed {
			t.Fatalf("X-Amz-Executed-Version %s, the function ran as version %s", executed, r.FunctionVersion)
		}
		if want := map[string]int{"1": 128, "2": 256}[executed]; r.MemoryMB != want {
			t.Fatalf("version %s ran with %d MB, want %d", executed, r.MemoryMB, want)
		}
		if !strings.HasSuffix(r.InvokedARN, ":function:ctx:live") {
			t.Fatalf("invoked ARN %s", r.InvokedARN)
		}
		seen[executed]++
	}
	if seen["1"] == 0 || seen["2"] == 0 || len(seen) != 2 {
		t.Fatalf("40 invocations of a 50/50 alias ran versions %v", seen)
	}

	// A write changes the alias's revision: live.RevisionId is stale now.
	bumped, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("live"), Description: aws.String("canary 50%"), RevisionId: live.RevisionId})
	if err != nil || aws.ToString(bumped.RevisionId) == aws.ToString(live.RevisionId) || aws.ToString(bumped.FunctionVersion) != "1" ||
		bumped.RoutingConfig == nil || bumped.RoutingConfig.AdditionalVersionWeights["2"] != 0.5 {
		t.Fatalf("UpdateAlias of the description: %+v %v", bumped, err)
	}

	// Alias errors, table-driven.
	for _, tc := range []struct {
		name string
		call func() error
		want func(error) bool
	}{
		{"alias to a missing version", func() error {
			_, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("nope"), FunctionVersion: aws.String("99")})
			return err
		}, is[*types.ResourceNotFoundException]},
		{"routing to a missing version", func() error {
			_, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("nope"), FunctionVersion: aws.String("1"),
				RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"98": 0.1}}})
			return err
		}, is[*types.ResourceNotFoundException]},
		{"a weight over 1", func() error {
			_, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("nope"), FunctionVersion: aws.String("1"),
				RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 1.5}}})
			return err
		}, is[*types.InvalidParameterValueException]},
		{"duplicate alias", func() error {
			_, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("live"), FunctionVersion: aws.String("2")})
			return err
		}, is[*types.ResourceConflictException]},
		{"stale alias revision", func() error {
			_, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("live"), FunctionVersion: aws.String("2"),
				RevisionId: live.RevisionId})
			return err
		}, is[*types.PreconditionFailedException]},
		{"deleting a version an alias routes to", func() error {
			_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ctx"), Qualifier: aws.String("2")})
			return err
		}, is[*types.ResourceConflictException]},
		{"missing alias", func() error {
			_, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("absent")})
			return err
		}, is[*types.ResourceNotFoundException]},
		{"alias of a missing function", func() error {
			_, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("absent")})
			return err
		}, is[*types.ResourceNotFoundException]},
	} {
		if err := tc.call(); !tc.want(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}

	// UpdateAlias at the current revision moves all traffic to 2.
	moved, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("live"), FunctionVersion: aws.String("2"),
		RoutingConfig: &types.AliasRoutingConfiguration{}, RevisionId: bumped.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(moved.RevisionId) == aws.ToString(bumped.RevisionId) || aws.ToString(moved.Description) != "canary 50%" || moved.RoutingConfig != nil {
		t.Fatalf("UpdateAlias: %+v", moved)
	}
	got, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("live")})
	if err != nil || aws.ToString(got.FunctionVersion) != "2" || aws.ToString(got.RevisionId) != aws.ToString(moved.RevisionId) {
		t.Fatalf("GetAlias: %+v %v", got, err)
	}
	// nimbus dev answers a write once it serves it: no waiting.
	for range 10 {
		if _, executed := invokeAlias(t, c, "ctx", "live"); executed != "2" {
			t.Fatalf("live moved to 2 alone ran version %s", executed)
		}
	}
	// Version 1 is free now.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ctx"), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("deleting version 1: %v", err)
	}
	for range 2 { // deleting is idempotent
		if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("ctx"), Name: aws.String("live")}); err != nil {
			t.Fatal(err)
		}
	}
	if als, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("ctx")}); err != nil || len(als.Aliases) != 0 {
		t.Fatalf("aliases after delete: %+v %v", als, err)
	}

	// Layers: published through the API, used by a python function.
	layerZip := zipFiles(t, map[string]string{"python/greet.py": "def hello():\n    return \"hello from an API layer\"\n", "data.txt": "layer data\n"})
	_, err = c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("pyshared"),
		Content: &types.LayerVersionContentInput{ZipFile: layerZip}, CompatibleArchitectures: []types.Architecture{types.ArchitectureArm64}})
	expectAPIError[*types.InvalidParameterValueException](t, "arm64 layer", err)
	layer, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("pyshared"),
		Content: &types.LayerVersionContentInput{ZipFile: layerZip}, Description: aws.String("greetings"), LicenseInfo: aws.String("MIT"),
		CompatibleRuntimes: []types.Runtime{types.RuntimePython312}, CompatibleArchitectures: []types.Architecture{types.ArchitectureX8664}})
	if err != nil {
		t.Fatal(err)
	}
	if layer.Version != 1 || aws.ToString(layer.LicenseInfo) != "MIT" || layer.Content == nil || aws.ToString(layer.Content.Location) == "" ||
		aws.ToString(layer.LayerVersionArn) != "arn:aws:lambda:"+e2eRegion+":"+e2eAccount+":layer:pyshared:1" {
		t.Fatalf("PublishLayerVersion: %+v", layer)
	}
	byArn, err := c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: layer.LayerVersionArn})
	if err != nil || aws.ToString(byArn.Description) != "greetings" || aws.ToString(byArn.Content.CodeSha256) != aws.ToString(layer.Content.CodeSha256) {
		t.Fatalf("GetLayerVersionByArn: %+v %v", byArn, err)
	}
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("pyfn"), Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Role: aws.String("arn:aws:iam::" + e2eAccount + ":role/x"),
		Layers: []string{aws.ToString(layer.LayerVersionArn)},
		Code: &types.FunctionCode{ZipFile: zipFiles(t, map[string]string{"app.py": "import os\nimport greet\n\n" +
			// The layers' root: /opt in a sandbox, the instance's merged
			// layer directory in dev mode (PYTHONPATH's <root>/python).
			"ROOT = os.path.dirname(os.path.dirname(greet.__file__))\n\n" +
			"def handler(event, context):\n" +
			"    return {\"msg\": greet.hello(), \"data\": open(os.path.join(ROOT, \"data.txt\")).read().strip()}\n"})},
	}); err != nil {
		t.Fatal(err)
	}
	awaitActive(t, c, "pyfn")
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pyfn"), Payload: []byte(`{}`)})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("pyfn with the API layer: %v %+v", err, out)
	}
	var py struct{ Msg, Data string }
	if err := json.Unmarshal(out.Payload, &py); err != nil || py.Msg != "hello from an API layer" || py.Data != "layer data" {
		t.Fatalf("pyfn with the API layer answered %s", out.Payload)
	}
	lls, err := c.ListLayers(ctx, &lambda.ListLayersInput{CompatibleRuntime: types.RuntimePython312})
	if err != nil || len(lls.Layers) != 1 || aws.ToString(lls.Layers[0].LayerName) != "pyshared" || lls.Layers[0].LatestMatchingVersion.Version != 1 {
		t.Fatalf("ListLayers: %+v %v", lls, err)
	}
	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("pyshared"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("pyshared"), VersionNumber: aws.Int64(1)})
	expectAPIError[*types.ResourceNotFoundException](t, "deleted layer version", err)
	if llv, err := c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("pyshared")}); err != nil || len(llv.LayerVersions) != 0 {
		t.Fatalf("ListLayerVersions after delete: %+v %v", llv, err)
	}

	// A function a spec file declares publishes its code directory as it is
	// now; $LATEST keeps running the directory.
	spec, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("specpy")})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("specpy"), RevisionId: spec.Configuration.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := base64.StdEncoding.DecodeString(aws.ToString(sv.CodeSha256))
	if err != nil || aws.ToString(sv.Version) != "1" || len(sum) != 32 {
		t.Fatalf("spec function version: %+v (sha %s) %v", sv, hex.EncodeToString(sum), err)
	}
	writeTree(t, g.specDir, map[string]string{"specpy/app.py": "def handler(event, context):\n    return {\"v\": \"two\"}\n"})
	invokeV := func(q string) string {
		in := &lambda.InvokeInput{FunctionName: aws.String("specpy"), Payload: []byte(`{}`)}
		if q != "" {
			in.Qualifier = aws.String(q)
		}
		out, err := c.Invoke(ctx, in)
		if err != nil || out.FunctionError != nil {
			t.Fatalf("specpy:%s: %v %+v", q, err, out)
		}
		var r struct{ V string }
		if err := json.Unmarshal(out.Payload, &r); err != nil {
			t.Fatalf("specpy:%s answered %s", q, out.Payload)
		}
		return r.V
	}
	eventually(t, 30*time.Second, func() bool { return invokeV("") == "two" }, "$LATEST runs the edited directory")
	g.awaitQualifier(t, "specpy", "1", true)
	if got := invokeV("1"); got != "one" {
		t.Fatalf("specpy:1 = %s, want the code as published", got)
	}
}

func is[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}
