package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// TestManageCLIThroughAPI (issue 12): the real `nimbus` binary, given only
// NIMBUS_ENDPOINT and AWS keys, publishes versions, sets and deletes
// aliases and publishes layers through the management API of a real
// `nimbus dev`. The effects are read back with aws-sdk-go-v2 and by
// invoking; an invoke-only key is refused and changes nothing.
func TestManageCLIThroughAPI(t *testing.T) {
	ctxDir := testfn.Dir(t, "ctxcheck")
	d := startManagedDev(t, map[string]string{"nimbus.hcl": `function "from-file" {
  runtime = "provided.al2023"
  code {
    dir = "` + ctxDir + `"
  }
  alias "stable" {
    version = "1"
  }
}
`})
	lc := d.client(e2eAccessKey, e2eSecretKey)
	ctx := context.Background()
	bin := nimbusOnce(t)
	// The CLI runs in a directory of its own holding only a layer's spec:
	// nothing of the gateway's is reachable through the file system.
	work := t.TempDir()
	writeTree(t, work, map[string]string{
		"nimbus.hcl": `layer "shared" {
  description = "shared code"
  code {
    dir = "layer"
  }
  compatible_runtimes = ["python3.12"]
}
`,
		"layer/python/greet.py": "def hello():\n    return 'hi'\n",
	})
	nimbus := func(key, secret string, args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = work
		env := []string{"NIMBUS_ENDPOINT=" + d.base, "AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_REGION=" + e2eRegion,
			"TMPDIR=" + t.TempDir()}
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "NIMBUS_") && !strings.HasPrefix(k, "AWS_") {
				env = append(env, kv)
			}
		}
		cmd.Env = env
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		return o.String(), e.String(), err
	}
	admin := func(args ...string) string {
		t.Helper()
		out, errOut, err := nimbus(e2eAccessKey, e2eSecretKey, args...)
		if err != nil {
			t.Fatalf("nimbus %s: %v\nstdout %s\nstderr %s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	versionsOf := func(fn string) []string {
		t.Helper()
		out, err := lc.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(fn)})
		if err != nil {
			t.Fatalf("ListVersionsByFunction %s: %v", fn, err)
		}
		var vs []string
		for _, v := range out.Versions {
			vs = append(vs, aws.ToString(v.Version)+":"+aws.ToString(v.Description))
		}
		return vs
	}
	getAlias := func(fn, name string) *lambda.GetAliasOutput {
		t.Helper()
		a, err := lc.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(fn), Name: aws.String(name)})
		if err != nil {
			t.Fatalf("GetAlias %s:%s: %v", fn, name, err)
		}
		return a
	}

	// A spec-declared function: publish snapshots the gateway's $LATEST and
	// sets the alias its spec declares.
	out := admin("publish", "from-file", "--description", "first")
	if !regexp.MustCompile(`published from-file version 1 \(code sha256:[0-9a-f]{64}\)`).MatchString(out) || !strings.Contains(out, "alias stable -> 1") {
		t.Fatalf("publish from-file: %s", out)
	}
	if got := strings.Join(versionsOf("from-file"), ","); got != "$LATEST:,1:first" {
		t.Fatalf("versions of from-file after publish: %s", got)
	}
	if a := getAlias("from-file", "stable"); aws.ToString(a.FunctionVersion) != "1" {
		t.Fatalf("alias stable: %+v", a)
	}
	if r := invokeReport(t, lc, "from-file", "stable"); r.FunctionVersion != "1" {
		t.Fatalf("from-file:stable ran version %s", r.FunctionVersion)
	}
	if _, err := os.Stat(filepath.Join(work, ".nimbus")); !os.IsNotExist(err) {
		t.Fatalf("publish through the API wrote a local store: %v", err)
	}

	// A function made through the API: two versions with different
	// configuration, a weighted alias, then the alias moved.
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("cli-fn"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: zipDir(t, ctxDir)},
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "one"}},
	}); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	waitUpdated := func() {
		t.Helper()
		w := lambda.NewFunctionUpdatedV2Waiter(lc, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
			o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
		})
		if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("cli-fn")}, time.Minute); err != nil {
			t.Fatalf("waiting for cli-fn: %v", err)
		}
	}
	waitUpdated()
	if out := admin("publish", "cli-fn"); !strings.Contains(out, "published cli-fn version 1") {
		t.Fatalf("publish cli-fn 1: %s", out)
	}
	if _, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("cli-fn"),
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "two"}}}); err != nil {
		t.Fatal(err)
	}
	waitUpdated()
	if out := admin("publish", "cli-fn", "--description", "greets two"); !strings.Contains(out, "published cli-fn version 2") {
		t.Fatalf("publish cli-fn 2: %s", out)
	}
	if out := admin("publish", "cli-fn"); !strings.Contains(out, "cli-fn: $LATEST is unchanged since version 2") {
		t.Fatalf("publish of an unchanged $LATEST: %s", out)
	}
	if got := strings.Join(versionsOf("cli-fn"), ","); got != "$LATEST:,1:,2:greets two" {
		t.Fatalf("versions of cli-fn: %s", got)
	}

	if out := admin("alias", "set", "cli-fn", "live", "1", "--weight", "2=0.25", "--description", "canary"); !strings.Contains(out, "alias live of cli-fn -> 1 (25% to 2)") {
		t.Fatalf("alias set (create): %s", out)
	}
	a := getAlias("cli-fn", "live")
	if aws.ToString(a.FunctionVersion) != "1" || aws.ToString(a.Description) != "canary" || a.RoutingConfig == nil ||
		a.RoutingConfig.AdditionalVersionWeights["2"] != 0.25 {
		t.Fatalf("alias live after create: %+v %+v", a, a.RoutingConfig)
	}
	if out := admin("alias", "set", "cli-fn", "live", "2"); !strings.Contains(out, "alias live of cli-fn -> 2") {
		t.Fatalf("alias set (update): %s", out)
	}
	a = getAlias("cli-fn", "live")
	if aws.ToString(a.FunctionVersion) != "2" || aws.ToString(a.Description) != "" ||
		(a.RoutingConfig != nil && len(a.RoutingConfig.AdditionalVersionWeights) > 0) {
		t.Fatalf("alias live after update: %+v %+v", a, a.RoutingConfig)
	}
	// The alias routes to the version it names, with that version's
	// configuration.
	eventually(t, 20*time.Second, func() bool {
		return invokeReport(t, lc, "cli-fn", "live").FunctionVersion == "2"
	}, "cli-fn:live runs version 2")
	if r := invokeReport(t, lc, "cli-fn", "live"); r.Env["GREETING"] != "two" {
		t.Fatalf("cli-fn:live runs with %+v", r)
	}
	if r := invokeReport(t, lc, "cli-fn", "1"); r.Env["GREETING"] != "one" || r.FunctionVersion != "1" {
		t.Fatalf("cli-fn:1 runs with %+v", r)
	}

	// The listings read the API, in the local store's format.
	out = admin("versions", "cli-fn")
	if !regexp.MustCompile(`(?m)^1\s+[0-9a-f]{12}\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s*$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^2\s+[0-9a-f]{12}\s+\S+ \S+\s+live\s+greets two$`).MatchString(out) {
		t.Fatalf("nimbus versions cli-fn:\n%s", out)
	}
	if out := admin("alias", "list", "cli-fn"); !regexp.MustCompile(`(?m)^live\s+2\s*$`).MatchString(out) {
		t.Fatalf("nimbus alias list cli-fn:\n%s", out)
	}

	// A version an alias points at is not deleted; once the alias is gone
	// it is.
	if o, e, err := nimbus(e2eAccessKey, e2eSecretKey, "versions", "delete", "cli-fn", "2"); err == nil ||
		!strings.Contains(e, "ResourceConflictException") || !strings.Contains(e, "move the alias first") {
		t.Fatalf("deleting a version an alias names: %v\n%s\n%s", err, o, e)
	}
	if out := admin("alias", "delete", "cli-fn", "live"); !strings.Contains(out, "deleted alias live of cli-fn") {
		t.Fatalf("alias delete: %s", out)
	}
	if _, err := lc.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("cli-fn"), Name: aws.String("live")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("GetAlias after alias delete: %v", err)
	}
	if out := admin("versions", "delete", "cli-fn", "2"); !strings.Contains(out, "deleted version 2 of cli-fn") {
		t.Fatalf("versions delete: %s", out)
	}
	if got := strings.Join(versionsOf("cli-fn"), ","); got != "$LATEST:,1:" {
		t.Fatalf("versions of cli-fn after delete: %s", got)
	}

	// Layers: the layer block's directory, zipped, with its runtimes.
	if out := admin("layer", "publish", "shared"); !regexp.MustCompile(`published layer shared version 1 \(sha256:[0-9a-f]{64}, `).MatchString(out) {
		t.Fatalf("layer publish: %s", out)
	}
	if out := admin("layer", "publish", "shared"); !strings.Contains(out, "layer shared is unchanged since version 1") {
		t.Fatalf("layer publish of unchanged code: %s", out)
	}
	lvs, err := lc.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("shared")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lvs.LayerVersions) != 1 || lvs.LayerVersions[0].Version != 1 || aws.ToString(lvs.LayerVersions[0].Description) != "shared code" ||
		len(lvs.LayerVersions[0].CompatibleRuntimes) != 1 || lvs.LayerVersions[0].CompatibleRuntimes[0] != types.RuntimePython312 {
		t.Fatalf("ListLayerVersions: %+v", lvs.LayerVersions)
	}
	lv, err := lc.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	zr := downloadZip(t, aws.ToString(lv.Content.Location))
	if zr["python/greet.py"] != "def hello():\n    return 'hi'\n" {
		t.Fatalf("the published layer holds %v", zr)
	}
	if out := admin("layer", "versions", "shared"); !regexp.MustCompile(`(?m)^1\s+[0-9a-f]{12}\s+0\.0 MB\s+python3\.12\s+shared code$`).MatchString(out) {
		t.Fatalf("nimbus layer versions shared:\n%s", out)
	}

	// An invoke-only key: every command is refused with Lambda's error and
	// changes nothing.
	for _, args := range [][]string{
		{"publish", "cli-fn"},
		{"alias", "set", "cli-fn", "live", "1"},
		{"alias", "delete", "from-file", "stable"},
		{"versions", "delete", "cli-fn", "1"},
		{"versions", "cli-fn"},
		{"layer", "publish", "shared"},
	} {
		o, e, err := nimbus(manageInvokeKey, manageInvokeSecret, args...)
		if err == nil || !strings.Contains(e, "AccessDeniedException") {
			t.Fatalf("nimbus %s with an invoke-only key: %v\nstdout %s\nstderr %s", strings.Join(args, " "), err, o, e)
		}
	}
	if got := strings.Join(versionsOf("cli-fn"), ","); got != "$LATEST:,1:" {
		t.Fatalf("versions of cli-fn after the refused calls: %s", got)
	}
	if _, err := lc.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("cli-fn"), Name: aws.String("live")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("a refused alias set left an alias: %v", err)
	}
	if a := getAlias("from-file", "stable"); aws.ToString(a.FunctionVersion) != "1" {
		t.Fatalf("alias stable after a refused delete: %+v", a)
	}
	if lvs, err := lc.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("shared")}); err != nil || len(lvs.LayerVersions) != 1 {
		t.Fatalf("layer versions after a refused publish: %v %+v", err, lvs)
	}

	// Flags that would do nothing are refused before anything is sent.
	if o, e, err := nimbus(e2eAccessKey, e2eSecretKey, "publish", "--state-dir", t.TempDir(), "--endpoint", d.base, "cli-fn"); err == nil ||
		!strings.Contains(e, "different version stores") {
		t.Fatalf("publish with --state-dir and --endpoint: %v\n%s\n%s", err, o, e)
	}
	if o, e, err := nimbus(e2eAccessKey, e2eSecretKey, "publish", "cli-fn", "."); err == nil || !strings.Contains(e, "deploy them first") {
		t.Fatalf("publish with a spec path through the API: %v\n%s\n%s", err, o, e)
	}
}

// downloadZip fetches a zip and returns its files' contents by name.
func downloadZip(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s is not a zip: %v", url, err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		c, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = string(c)
	}
	return files
}
