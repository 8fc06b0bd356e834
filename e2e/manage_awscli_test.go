package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// TestManageWithAWSCLI runs the real AWS CLI, when it is on PATH, through
// a function's life against nimbus dev: create, wait, invoke, update,
// publish, alias, invoke through the alias, delete.
func TestManageWithAWSCLI(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI (aws) is not on PATH: skipping the AWS CLI management script")
	}
	zipPath := filepath.Join(t.TempDir(), "fn.zip")
	if err := os.WriteFile(zipPath, zipDir(t, testfn.Dir(t, "echo")), 0o644); err != nil {
		t.Fatal(err)
	}
	// AWS CLI v2 reads --payload as base64 unless told otherwise; v1
	// takes it raw and knows no --cli-binary-format.
	ver, _ := exec.Command(awsBin, "--version").CombinedOutput()
	v2 := strings.HasPrefix(string(ver), "aws-cli/2")
	d := startManagedDev(t, nil)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(awsBin, append(args, "--endpoint-url", d.base, "--output", "json")...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+e2eAccessKey, "AWS_SECRET_ACCESS_KEY="+e2eSecretKey,
			"AWS_DEFAULT_REGION="+e2eRegion, "AWS_REGION="+e2eRegion, "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	field := func(out, key string) string {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("aws answered %s: %v", out, err)
		}
		s, _ := m[key].(string)
		return s
	}
	invoke := func(qualifier, payload string) (string, string) {
		t.Helper()
		outFile := filepath.Join(t.TempDir(), "out.json")
		args := []string{"lambda", "invoke", "--function-name", "cli-fn", "--payload", payload}
		if v2 {
			args = append(args, "--cli-binary-format", "raw-in-base64-out")
		}
		if qualifier != "" {
			args = append(args, "--qualifier", qualifier)
		}
		meta := run(append(args, outFile)...)
		body, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		return string(body), field(meta, "ExecutedVersion")
	}

	out := run("lambda", "create-function", "--function-name", "cli-fn", "--runtime", "provided.al2023", "--handler", "bootstrap",
		"--role", "arn:aws:iam::123456789012:role/cli", "--zip-file", "fileb://"+zipPath)
	if field(out, "State") != "Pending" {
		t.Fatalf("create-function: %s", out)
	}
	run("lambda", "wait", "function-active-v2", "--function-name", "cli-fn")
	if body, v := invoke("", `{"step":"created"}`); body != `{"step":"created"}` || v != "$LATEST" {
		t.Fatalf("invoke after create: %s (version %s)", body, v)
	}
	run("lambda", "update-function-configuration", "--function-name", "cli-fn", "--description", "via the AWS CLI")
	run("lambda", "wait", "function-updated-v2", "--function-name", "cli-fn")
	if v := field(run("lambda", "publish-version", "--function-name", "cli-fn"), "Version"); v != "1" {
		t.Fatalf("publish-version gave version %q", v)
	}
	if arn := field(run("lambda", "create-alias", "--function-name", "cli-fn", "--name", "live", "--function-version", "1"), "AliasArn"); !strings.HasSuffix(arn, ":function:cli-fn:live") {
		t.Fatalf("create-alias ARN %q", arn)
	}
	if body, v := invoke("live", `{"step":"alias"}`); body != `{"step":"alias"}` || v != "1" {
		t.Fatalf("invoke through the alias: %s (version %s)", body, v)
	}
	if desc := field(run("lambda", "get-function-configuration", "--function-name", "cli-fn"), "Description"); desc != "via the AWS CLI" {
		t.Fatalf("description %q", desc)
	}
	run("lambda", "delete-function", "--function-name", "cli-fn")
	cmd := exec.Command(awsBin, "lambda", "get-function", "--function-name", "cli-fn", "--endpoint-url", d.base)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+e2eAccessKey, "AWS_SECRET_ACCESS_KEY="+e2eSecretKey, "AWS_DEFAULT_REGION="+e2eRegion,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "ResourceNotFoundException") {
		t.Fatalf("get-function after delete: %v\n%s", err, out)
	}
}
