package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/specs"
)

// TestManageExport (issue 12): a function created through the Lambda API
// of a real `nimbus dev` is exported by the real `nimbus export` into a
// spec and a code directory; the spec loads with the configuration the API
// was given, and `nimbus local invoke` runs the exported function.
func TestManageExport(t *testing.T) {
	echoDir := testfn.Dir(t, "echo")
	echoZip := zipDir(t, echoDir)
	// A function from a spec file, whose code is a directory: the gateway
	// keeps no bundle of it.
	d := startManagedDev(t, map[string]string{"nimbus.hcl": `function "from-file" {
  runtime = "provided.al2023"
  memory_mb = 192
  code {
    dir = "` + echoDir + `"
  }
}
`})
	lc := d.client(e2eAccessKey, e2eSecretKey)
	ctx := context.Background()

	env := map[string]string{"GREETING": "hello", "TEMPLATE": "${not.a.template}", "QUOTED": `a "b" \ c`}
	_, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("exported"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role:        aws.String("arn:aws:iam::123456789012:role/exported"),
		Code:        &types.FunctionCode{ZipFile: echoZip},
		Environment: &types.Environment{Variables: env},
		MemorySize:  aws.Int32(256), Timeout: aws.Int32(10), Description: aws.String("made by the SDK, kept as HCL"),
		Tags: map[string]string{"team": "e2e", "cost:center": "42"},
	})
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	w := lambda.NewFunctionActiveV2Waiter(lc, func(o *lambda.FunctionActiveV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("exported")}, time.Minute); err != nil {
		t.Fatalf("waiting for the function to be Active: %v", err)
	}

	bin := nimbusOnce(t)
	work := t.TempDir()
	nimbus := func(args ...string) (stdout, stderr string, err error) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+e2eAccessKey, "AWS_SECRET_ACCESS_KEY="+e2eSecretKey,
			"AWS_REGION="+e2eRegion, "NIMBUS_ENDPOINT="+d.base, "TMPDIR="+t.TempDir())
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err = cmd.Run()
		return o.String(), e.String(), err
	}

	// Default DIR is ./FUNCTION; the endpoint comes from NIMBUS_ENDPOINT.
	stdout, stderr, err := nimbus("export", "exported")
	if err != nil {
		t.Fatalf("nimbus export: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
	out := filepath.Join(work, "exported")
	if !strings.Contains(stdout, "wrote exported/nimbus.hcl (function exported, version $LATEST)") ||
		!strings.Contains(stdout, "wrote exported/code/ (code, sha256 ") || stderr != "" {
		t.Errorf("nimbus export printed\n%s\nstderr %s", stdout, stderr)
	}
	f, diags := specs.Load(filepath.Join(out, "nimbus.hcl"), nil)
	if f == nil || len(diags) > 0 {
		t.Fatalf("the exported spec does not load: %s", specs.FormatDiagnostics(diags, nil))
	}
	fn := f.Function("exported")
	if len(f.Functions) != 1 || fn == nil {
		t.Fatalf("exported functions: %+v", f.Functions)
	}
	if fn.Runtime != "provided.al2023" || fn.Handler != "bootstrap" || fn.MemoryMB != 256 || fn.Timeout != "10s" ||
		fn.Description != "made by the SDK, kept as HCL" || !reflect.DeepEqual(fn.Environment, env) ||
		!reflect.DeepEqual(fn.Tags, map[string]string{"team": "e2e", "cost:center": "42"}) {
		t.Errorf("the exported spec says %+v", fn)
	}
	if *fn.Code != (specs.Code{Dir: "code"}) || fn.Build == nil || !fn.Build.Skip {
		t.Errorf("exported code %+v build %+v, want code { dir = \"code\" } and build { skip = true }", fn.Code, fn.Build)
	}
	// The code directory holds what was uploaded, executable bits included.
	for _, name := range []string{"bootstrap"} {
		want, err := os.Stat(filepath.Join(echoDir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.Stat(filepath.Join(out, "code", name))
		if err != nil || got.Size() != want.Size() || got.Mode().Perm()&0o111 == 0 {
			t.Errorf("exported %s: %v (mode %v), want %d bytes, executable", name, err, got, want.Size())
		}
	}

	// The exported directory runs on its own.
	payload := `{"exported":true,"n":12}`
	cmd := exec.Command(bin, "local", "invoke", "--event", "-", out)
	cmd.Stdin = strings.NewReader(payload)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("nimbus local invoke of the export: %v\n%s", err, got)
	}
	if strings.TrimSpace(string(got)) != payload {
		t.Errorf("the exported function answered %q, want %q", got, payload)
	}

	// A second export into the same directory is refused without --force
	// and leaves it as it was.
	before, _ := os.ReadFile(filepath.Join(out, "nimbus.hcl"))
	if _, stderr, err := nimbus("export", "exported"); err == nil || !strings.Contains(stderr, "exported is not empty") {
		t.Errorf("export into a non-empty dir: %v %s", err, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(out, "nimbus.hcl")); !bytes.Equal(before, after) {
		t.Error("the refused export changed nimbus.hcl")
	}

	// --qualifier: a published version, into --out with --force, after
	// the function changed.
	waitUpdated := func() {
		t.Helper()
		w := lambda.NewFunctionUpdatedV2Waiter(lc, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
			o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
		})
		if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("exported")}, time.Minute); err != nil {
			t.Fatalf("waiting for the update: %v", err)
		}
	}
	published, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("exported"), ZipFile: echoZip, Publish: true})
	if err != nil || aws.ToString(published.Version) != "1" {
		t.Fatalf("UpdateFunctionCode with Publish: %v %+v", err, published)
	}
	waitUpdated()
	if _, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("exported"), MemorySize: aws.Int32(512),
	}); err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %v", err)
	}
	waitUpdated()
	stdout, stderr, err = nimbus("export", "--qualifier", "1", "--out", out, "--force", "exported")
	if err != nil || !strings.Contains(stdout, "(function exported, version 1)") {
		t.Fatalf("export --qualifier 1: %v\n%s\n%s", err, stdout, stderr)
	}
	if v1, _ := specs.Load(filepath.Join(out, "nimbus.hcl"), nil); v1 == nil || v1.Functions[0].MemoryMB != 256 {
		t.Errorf("version 1 exported as %+v", v1)
	}
	stdout, stderr, err = nimbus("export", "--out", filepath.Join(work, "latest"), "exported")
	if err != nil {
		t.Fatalf("export $LATEST: %v\n%s", err, stderr)
	}
	if latest, _ := specs.Load(filepath.Join(work, "latest", "nimbus.hcl"), nil); latest == nil || latest.Functions[0].MemoryMB != 512 {
		t.Errorf("$LATEST after the update exported as %+v (%s)", latest, stdout)
	}

	// A function from a spec file: the spec, and a note that its code must
	// be supplied.
	stdout, stderr, err = nimbus("export", "from-file")
	if err != nil {
		t.Fatalf("export from-file: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "no code: the gateway keeps no bundle of from-file; supply its code in from-file/code/") {
		t.Errorf("export from-file printed %s", stdout)
	}
	ff, diags := specs.Load(filepath.Join(work, "from-file", "nimbus.hcl"), nil)
	if ff == nil || ff.Functions[0].MemoryMB != 192 || ff.Functions[0].Code.Dir != "code" || ff.Functions[0].Build != nil {
		t.Errorf("from-file exported as %+v %s", ff, specs.FormatDiagnostics(diags, nil))
	}
	if _, err := os.Stat(filepath.Join(work, "from-file", "code")); !os.IsNotExist(err) {
		t.Errorf("a code dir was made for a function without a bundle: %v", err)
	}

	// Unknown functions and wrong keys are the gateway's errors, and
	// nothing is written.
	if _, stderr, err := nimbus("export", "missing"); err == nil || !strings.Contains(stderr, "404") {
		t.Errorf("export of a missing function: %v %s", err, stderr)
	}
	cmd = exec.Command(bin, "export", "--endpoint", d.base, "--out", filepath.Join(work, "denied"), "exported")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+e2eAccessKey, "AWS_SECRET_ACCESS_KEY=wrong", "AWS_REGION="+e2eRegion)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "403") {
		t.Errorf("export with a wrong secret: %v %s", err, b)
	}
	for _, name := range []string{"missing", "denied"} {
		if _, err := os.Stat(filepath.Join(work, name)); !os.IsNotExist(err) {
			t.Errorf("%s: a directory was written: %v", name, err)
		}
	}
}
