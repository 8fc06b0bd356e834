package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// Keys of the management tests: an admin key and one that may only invoke.
const (
	manageInvokeKey    = "AKIDNIMBUSINVOKE"
	manageInvokeSecret = "nimbus-e2e-invoke-only"
)

// managedDev is a real `nimbus dev` whose state dir outlives it, so that a
// test can kill and restart it.
type managedDev struct {
	specDir, stateDir, conf string
	proc                    *nimbusProc
	base                    string
}

func startManagedDev(t *testing.T, specFiles map[string]string) *managedDev {
	t.Helper()
	d := &managedDev{specDir: t.TempDir(), stateDir: filepath.Join(t.TempDir(), "state"), conf: filepath.Join(t.TempDir(), "gateway.hcl")}
	writeTree(t, d.specDir, specFiles)
	writeTree(t, filepath.Dir(d.conf), map[string]string{filepath.Base(d.conf): fmt.Sprintf(`region = %q
account_id = %q
invoke_key = %q
access_key %q {
  secret = %q
}
access_key %q {
  secret = %q
  scope  = "invoke"
}
`, e2eRegion, e2eAccount, e2eInvokeKey, e2eAccessKey, e2eSecretKey, manageInvokeKey, manageInvokeSecret)})
	d.start(t)
	return d
}

func (d *managedDev) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(nimbusOnce(t), "dev", "--listen", "127.0.0.1:0", "--config", d.conf, "--state-dir", d.stateDir, "--log-level", "warn", d.specDir)
	cmd.Dir = d.specDir
	p := startNimbusProc(t, cmd)
	d.proc, d.base = p, p.endpoint
	// Registered after startNimbusProc's kill, so it runs first: a process
	// still running at the end must exit cleanly on SIGINT.
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return // killed or stopped by the test
		default:
		}
		if err := p.stop(syscall.SIGINT); err != nil {
			t.Errorf("nimbus dev exit on SIGINT: %v\n%s", err, p.stderr)
		}
	})
}

func (d *managedDev) client(key, secret string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region: e2eRegion, BaseEndpoint: aws.String(d.base), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""),
	})
}

// zipDir packages a directory as CreateFunction's ZipFile.
func zipDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := bundle.Zip(dir, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ctxReport is what internal/testfn/ctxcheck answers.
type ctxReport struct {
	FunctionName    string            `json:"function_name"`
	FunctionVersion string            `json:"function_version"`
	MemoryMB        int               `json:"memory_mb"`
	Env             map[string]string `json:"env"`
}

func invokeReport(t *testing.T, lc *lambda.Client, name, qualifier string) ctxReport {
	t.Helper()
	r, _ := invokeJSON[ctxReport](t, lc, name, qualifier)
	return r
}

// invokeJSON invokes name (at qualifier, "" for none) with {}, fails the
// test on any error or function error, and decodes the answer; it also
// returns the version that ran.
func invokeJSON[T any](t *testing.T, lc *lambda.Client, name, qualifier string) (T, string) {
	t.Helper()
	var r T
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{}`)}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	out, err := lc.Invoke(context.Background(), in)
	if err != nil {
		t.Fatalf("invoke %s:%s: %v", name, qualifier, err)
	}
	if out.FunctionError != nil {
		t.Fatalf("invoke %s:%s: function error %s: %s", name, qualifier, *out.FunctionError, out.Payload)
	}
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		t.Fatalf("invoke %s:%s answered %s: %v", name, qualifier, out.Payload, err)
	}
	return r, aws.ToString(out.ExecutedVersion)
}

func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestManageFunctionsThroughSDK manages the whole life of functions with
// aws-sdk-go-v2 against `nimbus dev` started on an empty directory, and
// checks every step by what the function then does, not only by what the
// API answers.
func TestManageFunctionsThroughSDK(t *testing.T) {
	ctxZip := zipDir(t, testfn.Dir(t, "ctxcheck"))
	echoZip := zipDir(t, testfn.Dir(t, "echo"))
	d := startManagedDev(t, nil)
	lc := d.client(e2eAccessKey, e2eSecretKey)
	ctx := context.Background()
	waitActive := func(name string) {
		t.Helper()
		w := lambda.NewFunctionActiveV2Waiter(lc, func(o *lambda.FunctionActiveV2WaiterOptions) {
			o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
		})
		if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
			t.Fatalf("waiting for %s to be Active: %v", name, err)
		}
	}
	waitUpdated := func(name string) {
		t.Helper()
		w := lambda.NewFunctionUpdatedV2Waiter(lc, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
			o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
		})
		if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
			t.Fatalf("waiting for %s's update: %v", name, err)
		}
	}

	// Create: Pending first, then Active, and the function runs with its
	// configuration.
	created, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("api-fn"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role:        aws.String("arn:aws:iam::123456789012:role/api-fn"),
		Code:        &types.FunctionCode{ZipFile: ctxZip},
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "hello"}},
		MemorySize:  aws.Int32(256), Timeout: aws.Int32(10), Description: aws.String("made by the SDK"),
		Tags: map[string]string{"team": "e2e"},
	})
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	sum := sha256.Sum256(ctxZip)
	if created.State != types.StatePending || aws.ToString(created.CodeSha256) != base64.StdEncoding.EncodeToString(sum[:]) ||
		created.CodeSize != int64(len(ctxZip)) || aws.ToString(created.Role) != "arn:aws:iam::123456789012:role/api-fn" ||
		aws.ToString(created.FunctionArn) != "arn:aws:lambda:"+e2eRegion+":"+e2eAccount+":function:api-fn" {
		t.Fatalf("CreateFunction answered %+v", created)
	}
	waitActive("api-fn")
	r := invokeReport(t, lc, "api-fn", "")
	if r.FunctionName != "api-fn" || r.MemoryMB != 256 || r.Env["GREETING"] != "hello" || r.FunctionVersion != "$LATEST" {
		t.Fatalf("the created function runs with %+v", r)
	}

	// GetFunction: Code.Location serves the very zip that was uploaded.
	got, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("api-fn")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Configuration.State != types.StateActive || got.Configuration.LastUpdateStatus != types.LastUpdateStatusSuccessful ||
		got.Tags["team"] != "e2e" || aws.ToString(got.Configuration.Description) != "made by the SDK" {
		t.Fatalf("GetFunction: %+v tags %v", got.Configuration, got.Tags)
	}
	resp, err := http.Get(aws.ToString(got.Code.Location))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, ctxZip) {
		t.Fatalf("Code.Location %s: %d, %d bytes (want the %d uploaded)", aws.ToString(got.Code.Location), resp.StatusCode, len(body), len(ctxZip))
	}

	// UpdateFunctionConfiguration: a stale RevisionId is refused and
	// changes nothing; the current one applies.
	rev := aws.ToString(got.Configuration.RevisionId)
	_, err = lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("api-fn"), RevisionId: aws.String("stale"),
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "never"}},
	})
	if apiErrorCode(err) != "PreconditionFailedException" {
		t.Fatalf("update with a stale revision: %v", err)
	}
	upd, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("api-fn"), RevisionId: aws.String(rev), MemorySize: aws.Int32(512),
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "bonjour"}},
	})
	if err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %v", err)
	}
	if aws.ToString(upd.RevisionId) == rev || upd.LastUpdateStatus != types.LastUpdateStatusInProgress {
		t.Fatalf("update answered revision %s (was %s), status %s", aws.ToString(upd.RevisionId), rev, upd.LastUpdateStatus)
	}
	waitUpdated("api-fn")
	if r := invokeReport(t, lc, "api-fn", ""); r.MemoryMB != 512 || r.Env["GREETING"] != "bonjour" {
		t.Fatalf("after the configuration update the function runs with %+v", r)
	}

	// UpdateFunctionCode with Publish: new code in $LATEST and version 1.
	code, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("api-fn"), ZipFile: echoZip, Publish: true})
	if err != nil {
		t.Fatalf("UpdateFunctionCode: %v", err)
	}
	if aws.ToString(code.Version) != "1" {
		t.Fatalf("UpdateFunctionCode with Publish answered version %s", aws.ToString(code.Version))
	}
	waitUpdated("api-fn")
	for _, q := range []string{"", "1"} {
		in := &lambda.InvokeInput{FunctionName: aws.String("api-fn"), Payload: []byte(`{"echo":"new code"}`)}
		if q != "" {
			in.Qualifier = aws.String(q)
		}
		out, err := lc.Invoke(ctx, in)
		if err != nil {
			t.Fatalf("invoke %q after the code update: %v", q, err)
		}
		if string(out.Payload) != `{"echo":"new code"}` {
			t.Fatalf("invoke %q after the code update answered %s", q, out.Payload)
		}
	}

	// A second function; ListFunctions pages through both.
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("api-fn2"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoZip},
	}); err != nil {
		t.Fatal(err)
	}
	var names []string
	pages := lambda.NewListFunctionsPaginator(lc, &lambda.ListFunctionsInput{MaxItems: aws.Int32(1)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Functions) > 1 {
			t.Fatalf("a page of MaxItems=1 held %d functions", len(page.Functions))
		}
		for _, f := range page.Functions {
			names = append(names, aws.ToString(f.FunctionName))
		}
	}
	if strings.Join(names, ",") != "api-fn,api-fn2" {
		t.Fatalf("ListFunctions pages: %v", names)
	}

	// Bad input: Lambda's error types, and nothing created.
	unsafeZip := func() []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create("../escape")
		_, _ = w.Write([]byte("x"))
		_ = zw.Close()
		return b.Bytes()
	}()
	bad := []struct {
		name string
		in   *lambda.CreateFunctionInput
		want string
	}{
		{"duplicate", &lambda.CreateFunctionInput{FunctionName: aws.String("api-fn"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("b"), Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoZip}}, "ResourceConflictException"},
		{"bad-runtime", &lambda.CreateFunctionInput{FunctionName: aws.String("bad1"), Runtime: types.Runtime("cobol"), Handler: aws.String("b"), Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoZip}}, "InvalidParameterValueException"},
		{"memory", &lambda.CreateFunctionInput{FunctionName: aws.String("bad2"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("b"), Role: aws.String("r"), MemorySize: aws.Int32(64), Code: &types.FunctionCode{ZipFile: echoZip}}, "InvalidParameterValueException"},
		{"unsafe-zip", &lambda.CreateFunctionInput{FunctionName: aws.String("bad3"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("b"), Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: unsafeZip}}, "InvalidZipFileException"},
		{"not-a-zip", &lambda.CreateFunctionInput{FunctionName: aws.String("bad4"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("b"), Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: []byte("plain text")}}, "InvalidZipFileException"},
		{"s3-code", &lambda.CreateFunctionInput{FunctionName: aws.String("bad5"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("b"), Role: aws.String("r"), Code: &types.FunctionCode{S3Bucket: aws.String("b"), S3Key: aws.String("k")}}, "InvalidParameterValueException"},
		{"vpc", &lambda.CreateFunctionInput{FunctionName: aws.String("bad6"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("b"), Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoZip}, VpcConfig: &types.VpcConfig{SubnetIds: []string{"subnet-1"}}}, "InvalidParameterValueException"},
		{"arm64", &lambda.CreateFunctionInput{FunctionName: aws.String("bad7"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("b"), Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoZip}, Architectures: []types.Architecture{types.ArchitectureArm64}}, "InvalidParameterValueException"},
	}
	for _, tc := range bad {
		t.Run("refuses/"+tc.name, func(t *testing.T) {
			_, err := lc.CreateFunction(ctx, tc.in)
			if got := apiErrorCode(err); got != tc.want {
				t.Fatalf("CreateFunction %s: %v (code %q), want %s", tc.name, err, got, tc.want)
			}
			if tc.name == "duplicate" {
				return
			}
			if _, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: tc.in.FunctionName}); apiErrorCode(err) != "ResourceNotFoundException" {
				t.Fatalf("a refused CreateFunction left %s behind: %v", aws.ToString(tc.in.FunctionName), err)
			}
		})
	}

	// An invoke-only key invokes but may not manage.
	ic := d.client(manageInvokeKey, manageInvokeSecret)
	if _, err := ic.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("api-fn2"), Payload: []byte(`{"a":1}`)}); err != nil {
		t.Fatalf("invoke with the invoke-only key: %v", err)
	}
	if _, err := ic.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("sneaky"), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("b"), Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoZip}}); apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("CreateFunction with an invoke-only key: %v", err)
	}
	if _, err := ic.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("api-fn2")}); apiErrorCode(err) != "AccessDeniedException" {
		t.Fatalf("DeleteFunction with an invoke-only key: %v", err)
	}

	// A restart keeps API-created functions: they come back from the store.
	if err := d.proc.stop(syscall.SIGINT); err != nil {
		t.Fatalf("stopping nimbus dev: %v", err)
	}
	d.start(t)
	lc = d.client(e2eAccessKey, e2eSecretKey)
	out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("api-fn"), Payload: []byte(`{"after":"restart"}`)})
	if err != nil {
		t.Fatalf("invoke after restart: %v", err)
	}
	if string(out.Payload) != `{"after":"restart"}` {
		t.Fatalf("invoke after restart answered %s", out.Payload)
	}

	// DeleteFunction: versions, aliases and provisioned configs too, gone
	// from the API and from invoke.
	if _, err := lc.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("api-fn"), Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(1),
	}); err != nil {
		t.Fatalf("PutProvisionedConcurrencyConfig: %v", err)
	}
	if _, err := lc.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("api-fn")}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("api-fn")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("GetFunction after delete: %v", err)
	}
	if _, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("api-fn"), Qualifier: aws.String("1")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("GetFunction of version 1 after delete: %v", err)
	}
	eventually(t, 10*time.Second, func() bool {
		_, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("api-fn")})
		return apiErrorCode(err) == "ResourceNotFoundException"
	}, "the deleted function to stop answering")
	// A function created again under the name starts clean.
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("api-fn"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoZip},
	}); err != nil {
		t.Fatalf("creating api-fn again: %v", err)
	}
	waitActive("api-fn")
	pcs, err := lc.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("api-fn")})
	if err != nil || len(pcs.ProvisionedConcurrencyConfigs) != 0 {
		t.Fatalf("the new api-fn inherited provisioned configs: %v %v", err, pcs)
	}
	vs, err := lc.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("api-fn")})
	if err != nil || len(vs.Versions) != 1 || aws.ToString(vs.Versions[0].Version) != "$LATEST" {
		t.Fatalf("the new api-fn inherited versions: %v %+v", err, vs)
	}
}

// TestManageSpecAndAPILastWriteWins: a function declared in a spec file
// and changed through the API runs the API's configuration until the spec
// file is saved again; it cannot be deleted through the API.
func TestManageSpecAndAPILastWriteWins(t *testing.T) {
	dir := testfn.Dir(t, "ctxcheck")
	spec := func(greeting string) string {
		return fmt.Sprintf(`function "spec-fn" {
  runtime = "provided.al2023"
  code { dir = %q }
  environment = { GREETING = %q }
}
`, dir, greeting)
	}
	d := startManagedDev(t, map[string]string{"nimbus.hcl": spec("from-spec")})
	lc := d.client(e2eAccessKey, e2eSecretKey)
	ctx := context.Background()
	if r := invokeReport(t, lc, "spec-fn", ""); r.Env["GREETING"] != "from-spec" {
		t.Fatalf("spec function runs with %v", r.Env)
	}
	if _, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("spec-fn"), Environment: &types.Environment{Variables: map[string]string{"GREETING": "from-api"}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool { return invokeReport(t, lc, "spec-fn", "").Env["GREETING"] == "from-api" }, "the API's configuration to run")
	if _, err := lc.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("spec-fn")}); apiErrorCode(err) != "ResourceConflictException" {
		t.Fatalf("deleting a spec-declared function: %v", err)
	}
	// Saving the spec file is a later write: it wins.
	writeTree(t, d.specDir, map[string]string{"nimbus.hcl": spec("spec-again")})
	future := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(filepath.Join(d.specDir, "nimbus.hcl"), future, future); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool { return invokeReport(t, lc, "spec-fn", "").Env["GREETING"] == "spec-again" }, "the saved spec to run")
}

// TestManageSurvivesKillDuringUpdates SIGKILLs nimbus dev while clients
// keep updating a function: after a restart the function is whole — one of
// the configurations written, serving it — never a mix or a broken one.
func TestManageSurvivesKillDuringUpdates(t *testing.T) {
	d := startManagedDev(t, nil)
	lc := d.client(e2eAccessKey, e2eSecretKey)
	ctx := context.Background()
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("churn"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String("r"),
		Code: &types.FunctionCode{ZipFile: zipDir(t, testfn.Dir(t, "ctxcheck"))},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() bool {
		g, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("churn")})
		return err == nil && g.Configuration.State == types.StateActive
	}, "churn to be Active")
	// Writers: each update sets GREETING and MEMO to the same value; an
	// update in progress is refused (ResourceConflictException) and retried.
	var mu sync.Mutex
	written := map[string]bool{"": true}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	accepted := 0
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("w%d-%d", w, i)
				mu.Lock()
				written[v] = true
				mu.Unlock()
				_, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
					FunctionName: aws.String("churn"), Environment: &types.Environment{Variables: map[string]string{"GREETING": v, "MEMO": v}},
				})
				if err == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		}()
	}
	eventually(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return accepted >= 5 }, "a few updates to be accepted")
	d.proc.kill()
	close(stop)
	wg.Wait()
	d.start(t)
	lc = d.client(e2eAccessKey, e2eSecretKey)
	var g *lambda.GetFunctionOutput
	eventually(t, 30*time.Second, func() bool {
		var err error
		g, err = lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("churn")})
		return err == nil && g.Configuration.State == types.StateActive && g.Configuration.LastUpdateStatus == types.LastUpdateStatusSuccessful
	}, "churn to be Active and updated after the restart")
	env := map[string]string{}
	if g.Configuration.Environment != nil {
		env = g.Configuration.Environment.Variables
	}
	mu.Lock()
	known := written[env["GREETING"]]
	mu.Unlock()
	if !known || env["GREETING"] != env["MEMO"] {
		t.Fatalf("after SIGKILL the configuration is %v: not one that was written whole", env)
	}
	r := invokeReport(t, lc, "churn", "")
	if r.Env["GREETING"] != env["GREETING"] || r.Env["MEMO"] != env["MEMO"] {
		t.Fatalf("the function runs with %v, the API says %v", r.Env, env)
	}
	t.Logf("%d updates accepted before the kill; the survivor is %q", accepted, env["GREETING"])
}
