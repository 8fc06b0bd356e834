package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/images"
	"github.com/nimbus-fn/nimbus/gateway/metrics"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
	"github.com/nimbus-fn/nimbus/gateway/versions"
)

// imageEnv is the management API over a loopback OCI registry (go-
// containerregistry's) holding two images, team/fn:v1 and team/fn:v2, with
// a controller whose applier checks a function's pinned image is still in
// the registry, as the dev and cluster appliers do.
type imageEnv struct {
	c        *lambda.Client
	host     string
	digests  map[string]string // tag → manifest digest
	ctl      *functions.Controller
	resolver *images.Resolver
}

func newImageEnv(t *testing.T) *imageEnv {
	t.Helper()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	e := &imageEnv{host: strings.TrimPrefix(reg.URL, "http://"), digests: map[string]string{}}
	for _, tag := range []string{"v1", "v2"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		e.push(t, "team/fn:"+tag, img)
	}
	e.resolver = images.NewResolver(oci.DockerConfig(func(string) string { return "" }))
	local, err := versions.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fstore := functions.NewStore(local)
	e.ctl = functions.NewController(fstore, functions.ApplierFunc(func(ctx context.Context, f *functions.Function) error {
		if !f.Spec.IsImage() {
			return nil
		}
		_, err := e.resolver.Resolve(ctx, f.Spec.Code.PinnedImage())
		return err
	}), 0, nil)
	a := api.New(api.Options{Region: region, AccountID: account,
		Verifier: &sigv4.Verifier{Keys: map[string]string{accessKey: secretKey}, Region: region},
		Manage: &api.Management{Functions: fstore, Versions: versions.New(local, nil), Code: urlCode{},
			ResolveImage: e.resolver.Resolve}},
		snapCatalog{catalog.NewSnapshot(nil)}, nil, nil, metrics.New(), nil)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	e.c = (&env{srv: srv}).client(accessKey, secretKey)
	return e
}

func (e *imageEnv) push(t *testing.T, repoTag string, img v1.Image) {
	t.Helper()
	ref, err := name.ParseReference(e.host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	e.digests[repoTag[strings.LastIndex(repoTag, ":")+1:]] = d.String()
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// An image function through the SDK: created from a tag that is pinned to
// its digest, described with Lambda's image fields, its code and image
// config updated, and Lambda's refusals for every mix of the two package
// types.
func TestImageFunctionLifecycle(t *testing.T) {
	e := newImageEnv(t)
	ctx := context.Background()
	uri := e.host + "/team/fn:v1"
	pinned := e.host + "/team/fn@" + e.digests["v1"]
	out, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("img"), Role: aws.String("r"), PackageType: types.PackageTypeImage,
		Code:        &types.FunctionCode{ImageUri: aws.String(uri)},
		ImageConfig: &types.ImageConfig{EntryPoint: []string{"/main"}, Command: []string{"serve"}, WorkingDirectory: aws.String("/var/task")},
		MemorySize:  aws.Int32(256),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.PackageType != types.PackageTypeImage || out.Runtime != "" || out.Handler != nil {
		t.Errorf("CreateFunction answered PackageType %q Runtime %q Handler %v", out.PackageType, out.Runtime, out.Handler)
	}
	if ic := out.ImageConfigResponse; ic == nil || ic.ImageConfig == nil || strings.Join(ic.ImageConfig.EntryPoint, " ") != "/main" ||
		strings.Join(ic.ImageConfig.Command, " ") != "serve" || aws.ToString(ic.ImageConfig.WorkingDirectory) != "/var/task" {
		t.Errorf("CreateFunction's ImageConfigResponse: %+v", out.ImageConfigResponse)
	}
	e.ctl.Pass(ctx)
	got, err := e.c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("img")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Configuration.State != types.StateActive {
		t.Errorf("state after apply: %s (%s)", got.Configuration.State, aws.ToString(got.Configuration.StateReason))
	}
	if aws.ToString(got.Code.ImageUri) != uri || aws.ToString(got.Code.ResolvedImageUri) != pinned {
		t.Errorf("GetFunction Code: ImageUri %q ResolvedImageUri %q; want %q and %q", aws.ToString(got.Code.ImageUri), aws.ToString(got.Code.ResolvedImageUri), uri, pinned)
	}
	if got.Code.Location != nil && *got.Code.Location != "" {
		t.Errorf("an image function has no code location: %q", *got.Code.Location)
	}

	// A new image: the tag is pinned again.
	up, err := e.c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("img"), ImageUri: aws.String(e.host + "/team/fn:v2")})
	if err != nil {
		t.Fatal(err)
	}
	if up.LastUpdateStatus != types.LastUpdateStatusInProgress {
		t.Errorf("UpdateFunctionCode answered LastUpdateStatus %s", up.LastUpdateStatus)
	}
	e.ctl.Pass(ctx)
	got, err = e.c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("img")})
	if err != nil || aws.ToString(got.Code.ResolvedImageUri) != e.host+"/team/fn@"+e.digests["v2"] {
		t.Fatalf("after UpdateFunctionCode: %v %+v", err, got.Code)
	}
	// ImageConfig changes through UpdateFunctionConfiguration; an empty
	// one clears it.
	if _, err := e.c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("img"), ImageConfig: &types.ImageConfig{Command: []string{"other"}}}); err != nil {
		t.Fatal(err)
	}
	e.ctl.Pass(ctx)
	cfg, err := e.c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("img")})
	if err != nil || cfg.ImageConfigResponse == nil || strings.Join(cfg.ImageConfigResponse.ImageConfig.Command, " ") != "other" || len(cfg.ImageConfigResponse.ImageConfig.EntryPoint) != 0 {
		t.Fatalf("after UpdateFunctionConfiguration: %v %+v", err, cfg)
	}
	// Publishing pins the image in the version.
	v, err := e.c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("img")})
	if err != nil || aws.ToString(v.Version) != "1" || v.PackageType != types.PackageTypeImage {
		t.Fatalf("PublishVersion: %v %+v", err, v)
	}

	refusals := []struct {
		what string
		call func() error
		want string
	}{
		{"ZipFile with ImageUri", func() error {
			_, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"), PackageType: types.PackageTypeImage,
				Code: &types.FunctionCode{ImageUri: aws.String(uri), ZipFile: []byte("PK")}})
			return err
		}, "only one source"},
		{"Runtime with Image", func() error {
			_, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"), PackageType: types.PackageTypeImage,
				Runtime: types.RuntimePython312, Code: &types.FunctionCode{ImageUri: aws.String(uri)}})
			return err
		}, "Please don't provide Handler or Runtime or Layer"},
		{"Layers with Image", func() error {
			_, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"), PackageType: types.PackageTypeImage,
				Layers: []string{"arn:aws:lambda:us-east-1:123456789012:layer:l:1"}, Code: &types.FunctionCode{ImageUri: aws.String(uri)}})
			return err
		}, "Please don't provide Handler or Runtime or Layer"},
		{"ImageUri without PackageType", func() error {
			_, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"),
				Runtime: types.RuntimeProvidedal2023, Code: &types.FunctionCode{ImageUri: aws.String(uri)}})
			return err
		}, "needs PackageType Image"},
		{"ImageConfig on a Zip function", func() error {
			_, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"),
				Runtime: types.RuntimeProvidedal2023, Code: &types.FunctionCode{ZipFile: []byte("PK")}, ImageConfig: &types.ImageConfig{Command: []string{"x"}}})
			return err
		}, "ImageConfig applies to functions with PackageType Image only"},
		{"an image the registry does not hold", func() error {
			_, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"), PackageType: types.PackageTypeImage,
				Code: &types.FunctionCode{ImageUri: aws.String(e.host + "/team/fn:nope")}})
			return err
		}, "does not exist"},
		{"a reference without a registry", func() error {
			_, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("x"), Role: aws.String("r"), PackageType: types.PackageTypeImage,
				Code: &types.FunctionCode{ImageUri: aws.String("team/fn:v1")}})
			return err
		}, "registry host"},
		{"ZipFile for an image function", func() error {
			_, err := e.c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("img"), ZipFile: []byte("PK")})
			return err
		}, "Please provide ImageUri when updating a function with packageType Image."},
		{"Runtime for an image function", func() error {
			_, err := e.c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("img"), Runtime: types.RuntimePython312})
			return err
		}, "Please don't provide Handler or Runtime or Layer"},
	}
	for _, r := range refusals {
		err := r.call()
		if errorCode(err) != "InvalidParameterValueException" || !strings.Contains(err.Error(), r.want) {
			t.Errorf("%s: %v; want InvalidParameterValueException with %q", r.what, err, r.want)
		}
	}
	// A Zip function takes no ImageUri.
	zipFn := zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\n"})
	if _, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("zip"), Role: aws.String("r"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: zipFn}}); err != nil {
		t.Fatal(err)
	}
	e.ctl.Pass(ctx)
	_, err = e.c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("zip"), ImageUri: aws.String(uri)})
	if errorCode(err) != "InvalidParameterValueException" || !strings.Contains(err.Error(), "Please don't provide ImageUri when updating a function with packageType Zip.") {
		t.Errorf("ImageUri for a Zip function: %v", err)
	}
	_, err = e.c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("zip"), ImageConfig: &types.ImageConfig{Command: []string{"x"}}})
	if errorCode(err) != "InvalidParameterValueException" {
		t.Errorf("ImageConfig for a Zip function: %v", err)
	}
}

// An image deleted from the registry between CreateFunction and the apply
// leaves the function Failed with Lambda's ImageDeleted, and an invoke is
// Lambda's conflict naming the state.
func TestImageDeletedFailsFunction(t *testing.T) {
	e := newImageEnv(t)
	ctx := context.Background()
	if _, err := e.c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("gone"), Role: aws.String("r"), PackageType: types.PackageTypeImage,
		Code: &types.FunctionCode{ImageUri: aws.String(e.host + "/team/fn:v1")},
	}); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(e.host+"/team/fn@"+e.digests["v1"], name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(ref); err != nil {
		t.Fatal(err)
	}
	e.ctl.Pass(ctx)
	got, err := e.c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("gone")})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != types.StateFailed || got.StateReasonCode != types.StateReasonCodeImageDeleted {
		t.Fatalf("state %s reason %s (%s); want Failed, ImageDeleted", got.State, got.StateReasonCode, aws.ToString(got.StateReason))
	}
	_, err = e.c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("gone")})
	if errorCode(err) != "ResourceConflictException" || !strings.Contains(err.Error(), "Failed") {
		t.Fatalf("invoking a Failed image function: %v", err)
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, body := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
