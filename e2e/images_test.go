package e2e

// Image functions end to end under a real `nimbus dev`: images built by
// `nimbus build --image` from real aws-lambda-go functions and pushed to a
// loopback OCI registry (go-containerregistry's), deployed through a spec
// and through the management API with aws-sdk-go-v2, invoked, updated to
// a new image, and an update refused with Lambda's ImageDeleted once the
// image is gone from the registry.

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// pushFunctionImage builds testfn fn as an image with the nimbus binary
// and pushes it to tag; it returns the pinned reference build printed.
func pushFunctionImage(t *testing.T, fn, tag string) string {
	t.Helper()
	out, err := exec.Command(nimbusOnce(t), "build", "--image", "--runtime", "provided.al2023", "--tag", tag, "--push", testfn.Dir(t, fn)).CombinedOutput()
	if err != nil {
		t.Fatalf("nimbus build --image %s: %v\n%s", fn, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if ref, ok := strings.CutPrefix(line, "image "); ok {
			return ref
		}
	}
	t.Fatalf("nimbus build --push printed no image reference:\n%s", out)
	return ""
}

func waitFunction(t *testing.T, lc *lambda.Client, fn string, done func(*lambda.GetFunctionConfigurationOutput) bool) *lambda.GetFunctionConfigurationOutput {
	t.Helper()
	var last *lambda.GetFunctionConfigurationOutput
	eventually(t, 30*time.Second, func() bool {
		out, err := lc.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fn)})
		if err != nil {
			return false
		}
		last = out
		return done(out)
	}, "function "+fn+" to settle")
	return last
}

// createImageFunction creates fn through the API from the image uri.
func createImageFunction(lc *lambda.Client, fn, uri string) error {
	_, err := lc.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(fn), Role: aws.String("r"), PackageType: types.PackageTypeImage,
		Code: &types.FunctionCode{ImageUri: aws.String(uri)},
	})
	return err
}

func TestImageFunctionsUnderDev(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	echoRef := pushFunctionImage(t, "echo", host+"/team/echo:v1")
	ctxRef := pushFunctionImage(t, "ctxcheck", host+"/team/ctx:v1")

	d := startManagedDev(t, map[string]string{"spec.hcl": `function "spec-img" {
  code {
    image = "` + host + `/team/echo:v1"
  }
}
`})
	lc := d.client(e2eAccessKey, e2eSecretKey)
	ctx := context.Background()

	// Through the spec: the tag runs.
	out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("spec-img"), Payload: []byte(`{"via":"spec"}`)})
	if err != nil || out.FunctionError != nil || string(out.Payload) != `{"via":"spec"}` {
		t.Fatalf("invoking the spec's image function: %v %+v %s", err, out, payloadOf(out))
	}

	// Through the API: CreateFunction with the tag; GetFunction pins it.
	if err := createImageFunction(lc, "api-img", host+"/team/echo:v1"); err != nil {
		t.Fatal(err)
	}
	waitFunction(t, lc, "api-img", func(c *lambda.GetFunctionConfigurationOutput) bool { return c.State == types.StateActive })
	got, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("api-img")})
	if err != nil || aws.ToString(got.Code.ResolvedImageUri) != echoRef {
		t.Fatalf("GetFunction: %v ResolvedImageUri %q, want %q", err, aws.ToString(got.Code.ResolvedImageUri), echoRef)
	}
	out, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("api-img"), Payload: []byte(`{"via":"api"}`)})
	if err != nil || out.FunctionError != nil || string(out.Payload) != `{"via":"api"}` {
		t.Fatalf("invoking the API's image function: %v %s", err, payloadOf(out))
	}

	// A new image: the function now runs ctxcheck.
	if _, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("api-img"), ImageUri: aws.String(host + "/team/ctx:v1")}); err != nil {
		t.Fatal(err)
	}
	waitFunction(t, lc, "api-img", func(c *lambda.GetFunctionConfigurationOutput) bool {
		return c.LastUpdateStatus == types.LastUpdateStatusSuccessful
	})
	eventually(t, 30*time.Second, func() bool {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("api-img"), Payload: []byte(`{}`)})
		return err == nil && out.FunctionError == nil && strings.Contains(string(out.Payload), `"function_name":"api-img"`)
	}, "the updated image (ctxcheck) to answer")
	got, err = lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("api-img")})
	if err != nil || aws.ToString(got.Code.ResolvedImageUri) != ctxRef {
		t.Fatalf("after UpdateFunctionCode: %v ResolvedImageUri %q, want %q", err, aws.ToString(got.Code.ResolvedImageUri), ctxRef)
	}

	// The image is deleted from the registry: the next update fails with
	// Lambda's ImageDeleted and the running revision keeps serving.
	ref, err := name.ParseReference(ctxRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(ref); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("api-img"), MemorySize: aws.Int32(256)}); err != nil {
		t.Fatal(err)
	}
	cfg := waitFunction(t, lc, "api-img", func(c *lambda.GetFunctionConfigurationOutput) bool {
		return c.LastUpdateStatus != types.LastUpdateStatusInProgress
	})
	if cfg.LastUpdateStatus != types.LastUpdateStatusFailed || cfg.LastUpdateStatusReasonCode != types.LastUpdateStatusReasonCodeImageDeleted {
		t.Fatalf("update with the image gone: %s %s (%s)", cfg.LastUpdateStatus, cfg.LastUpdateStatusReasonCode, aws.ToString(cfg.LastUpdateStatusReason))
	}
	// A create from a tag the registry does not hold is refused at once.
	err = createImageFunction(lc, "no-img", host+"/team/none:v1")
	if apiErrorCode(err) != "InvalidParameterValueException" {
		t.Fatalf("creating from a missing image: %v", err)
	}

	// An image deleted after its function became Active: the first
	// instance cannot pull it, and the function's State says so (Failed,
	// ImageDeleted) where GetFunction shows it; an update to an image the
	// registry holds makes it Active again.
	lateRef := pushFunctionImage(t, "stamp", host+"/team/late:v1")
	if err := createImageFunction(lc, "late-img", host+"/team/late:v1"); err != nil {
		t.Fatal(err)
	}
	waitFunction(t, lc, "late-img", func(c *lambda.GetFunctionConfigurationOutput) bool { return c.State == types.StateActive })
	lref, err := name.ParseReference(lateRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(lref); err != nil {
		t.Fatal(err)
	}
	out, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("late-img"), Payload: []byte(`{}`)})
	if err != nil || out.FunctionError == nil || !strings.Contains(string(out.Payload), `"errorType":"ImageDeleted"`) {
		t.Fatalf("invoking a function whose image is gone: %v %s", err, payloadOf(out))
	}
	cfg = waitFunction(t, lc, "late-img", func(c *lambda.GetFunctionConfigurationOutput) bool { return c.State != types.StateActive })
	if cfg.State != types.StateFailed || cfg.StateReasonCode != types.StateReasonCodeImageDeleted || !strings.Contains(aws.ToString(cfg.StateReason), lateRef) {
		t.Fatalf("state with the image gone: %s %s (%s)", cfg.State, cfg.StateReasonCode, aws.ToString(cfg.StateReason))
	}
	if _, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("late-img"), ImageUri: aws.String(host + "/team/echo:v1")}); err != nil {
		t.Fatal(err)
	}
	cfg = waitFunction(t, lc, "late-img", func(c *lambda.GetFunctionConfigurationOutput) bool {
		return c.LastUpdateStatus == types.LastUpdateStatusSuccessful
	})
	if cfg.State != types.StateActive || cfg.StateReasonCode != "" {
		t.Fatalf("state after an update to a present image: %s %s", cfg.State, cfg.StateReasonCode)
	}
	eventually(t, 30*time.Second, func() bool {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("late-img"), Payload: []byte(`{"via":"late"}`)})
		return err == nil && out.FunctionError == nil && string(out.Payload) == `{"via":"late"}`
	}, "the updated image (echo) to answer")

	// nimbus deploy --endpoint sends a spec's image function through the
	// same API: the gateway pins the tag.
	specDir := t.TempDir()
	writeTree(t, specDir, map[string]string{"spec.hcl": `function "deployed-img" {
  code {
    image = "` + host + `/team/echo:v1"
  }
}
`})
	deploy := exec.Command(nimbusOnce(t), "deploy", "--endpoint", d.base, specDir)
	deploy.Dir = specDir
	deploy.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+e2eAccessKey, "AWS_SECRET_ACCESS_KEY="+e2eSecretKey, "AWS_REGION="+e2eRegion)
	if out, err := deploy.CombinedOutput(); err != nil {
		t.Fatalf("nimbus deploy --endpoint: %v\n%s", err, out)
	}
	got, err = lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("deployed-img")})
	if err != nil || got.Configuration.PackageType != types.PackageTypeImage || aws.ToString(got.Code.ResolvedImageUri) != echoRef {
		t.Fatalf("the deployed image function: %v %+v", err, got)
	}
	out, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("deployed-img"), Payload: []byte(`{"via":"deploy"}`)})
	if err != nil || out.FunctionError != nil || string(out.Payload) != `{"via":"deploy"}` {
		t.Fatalf("invoking the deployed image function: %v %s", err, payloadOf(out))
	}
}
