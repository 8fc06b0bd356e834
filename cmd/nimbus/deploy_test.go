package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
)

const urlSpec = `function "hello" {
  runtime = "provided.al2023"
  memory_mb = 256
  code {
    url      = "https://artifacts.example.com/hello.zip"
    checksum = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
  }
}
`

func writeSpec(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	code := run(context.Background(), env, args)
	return result{code, out.String(), errb.String()}
}

func baseEnv() map[string]string {
	return map[string]string{envSecretKey: "cli-test-key"}
}

func TestRenderHCLAndJSON(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, "hello.hcl", urlSpec)

	r := runCLI(t, baseEnv(), "render", spec)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, `job "nimbus-hello" {`) || !strings.Contains(r.stdout, `driver       = "nimbus"`) {
		t.Errorf("HCL output:\n%s", r.stdout)
	}

	r = runCLI(t, baseEnv(), "render", "--format", "json", "--version", "7", "--service-provider", "nomad", spec)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var doc struct{ Job *api.Job }
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("JSON output does not decode: %v", err)
	}
	j := doc.Job
	if *j.ID != "nimbus-hello-7" || j.TaskGroups[0].Services[0].Provider != "nomad" || j.Meta[jobs.MetaVersion] != "7" {
		t.Errorf("job %s provider %s", *j.ID, j.TaskGroups[0].Services[0].Provider)
	}
	// The job holds no secret, and render prints none unless asked.
	secret := invokeapi.DeriveSecret([]byte("cli-test-key"), "hello", "7")
	if _, ok := j.TaskGroups[1].Tasks[0].Config["invoke_secret"]; ok || j.TaskGroups[1].Tasks[0].Config["invoke_secret_file"] != jobs.InvokeSecretFile {
		t.Errorf("task config %v, want invoke_secret_file only", j.TaskGroups[1].Tasks[0].Config)
	}
	if strings.Contains(r.stdout+r.stderr, secret) {
		t.Error("render printed the invoke secret without --print-var-command")
	}
	if !strings.Contains(r.stderr, "Nomad Variable nomad/jobs/nimbus-hello-7 (item invoke_secret), which must exist") || strings.Contains(r.stderr, "invoke_secret=") {
		t.Errorf("stderr does not say the variable must exist (or prints the command unasked):\n%s", r.stderr)
	}
	if j.TaskGroups[0].Tasks[0].Config["memory_mb"] != float64(256) {
		t.Errorf("memory_mb %v", j.TaskGroups[0].Tasks[0].Config["memory_mb"])
	}
}

// Render needs no key: the job holds no secret. Only --print-var-command
// needs it, and prints the exact `nomad var put` command to stderr.
func TestRenderVarCommandOnlyWhenAsked(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, "hello.hcl", urlSpec)
	r := runCLI(t, nil, "render", spec)
	if r.code != 0 || !strings.HasPrefix(r.stdout, `job "nimbus-hello" {`) {
		t.Errorf("without a key: exit %d, stderr %s", r.code, r.stderr)
	}
	r = runCLI(t, nil, "render", "--print-var-command", spec)
	if r.code != 1 || !strings.Contains(r.stderr, envSecretKey) {
		t.Errorf("--print-var-command without a key: exit %d, stderr %s", r.code, r.stderr)
	}
	keyFile := writeSpec(t, dir, "key", "from-file\n")
	secret := invokeapi.DeriveSecret([]byte("from-file"), "hello", "$LATEST")
	r = runCLI(t, nil, "render", "--secret-key-file", keyFile, "--print-var-command", "--format", "json", spec)
	want := "nomad var put -namespace default nomad/jobs/nimbus-hello invoke_secret=" + secret + "\n"
	if r.code != 0 || !strings.HasSuffix(r.stderr, want) || strings.Contains(r.stdout, secret) {
		t.Errorf("key file: exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestRenderOneFunction(t *testing.T) {
	dir := t.TempDir()
	two := writeSpec(t, dir, "two.hcl", urlSpec+strings.ReplaceAll(urlSpec, `"hello"`, `"bye"`))
	r := runCLI(t, baseEnv(), "render", two)
	if r.code != 1 || !strings.Contains(r.stderr, "pick one with --function") {
		t.Errorf("two functions: exit %d, stderr %s", r.code, r.stderr)
	}
	r = runCLI(t, baseEnv(), "render", "--function", "bye", two)
	if r.code != 0 || !strings.HasPrefix(r.stdout, `job "nimbus-bye"`) {
		t.Errorf("--function bye: exit %d, stderr %s", r.code, r.stderr)
	}
	r = runCLI(t, baseEnv(), "render", "--function", "nope", two)
	if r.code != 1 || !strings.Contains(r.stderr, `no function "nope" (functions: `) {
		t.Errorf("--function nope: exit %d, stderr %s", r.code, r.stderr)
	}
}

const dirSpec = `function "echo" {
  runtime = "provided.al2023"
  code {
    dir = "src"
  }
}
`

// Rendering a directory of code without a place to fetch it from says where
// bundles can go: a gateway's artifact store (deploy --endpoint) or a URL of
// your own.
func TestDirCodeWithoutArtifactStore(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, "echo.hcl", dirSpec)
	if err := os.Mkdir(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, baseEnv(), "render", spec)
	if r.code != 1 {
		t.Fatalf("exit %d", r.code)
	}
	for _, want := range []string{spec + ":1:1", `function "echo"`, "nimbus deploy --endpoint GATEWAY", "artifact store", "--artifact-base-url"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// With --artifact-base-url the real aws-lambda-go bootstrap is packaged into
// a content-addressed bundle the job fetches with its checksum.
func TestDirCodeWithArtifactBaseURL(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, "echo.hcl", dirSpec)
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(testfn.Dir(t, "echo"), "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bootstrap"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	bundles := filepath.Join(dir, "out")
	args := []string{"render", "--format", "json", "--artifact-base-url", "https://bundles.example.com/v1/", "--bundle-dir", bundles, spec}
	r := runCLI(t, baseEnv(), args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var doc struct{ Job *api.Job }
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	art := jobs.Bundles(doc.Job.TaskGroups[0].Tasks[0])[0]
	sum := strings.TrimPrefix(art.Checksum, "sha256:")
	if art.Source != "https://bundles.example.com/v1/"+sum+".zip" {
		t.Errorf("bundle source %s", art.Source)
	}
	data, err := os.ReadFile(filepath.Join(bundles, sum+".zip"))
	if err != nil {
		t.Fatalf("bundle not written: %v", err)
	}
	got := sha256.Sum256(data)
	if hex.EncodeToString(got[:]) != sum {
		t.Error("bundle's sha256 is not the artifact checksum")
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode().Perm() != 0o755 {
		t.Fatalf("bundle contents: %v", err)
	}
	if !strings.Contains(r.stderr, "must be served at https://bundles.example.com/v1/"+sum+".zip") {
		t.Errorf("stderr does not say where to place the bundle:\n%s", r.stderr)
	}
	// Packaging again gives the same job (content addressing).
	again := runCLI(t, baseEnv(), args...)
	if again.stdout != r.stdout {
		t.Error("rendering twice gave different jobs")
	}
}

func TestDeployRegistersJobs(t *testing.T) {
	srv := submittest.New(t)
	dir := t.TempDir()
	writeSpec(t, dir, "a.hcl", urlSpec)
	writeSpec(t, dir, "b.hcl", strings.ReplaceAll(urlSpec, `"hello"`, `"bye"`))
	vars := baseEnv()
	vars["NOMAD_ADDR"] = srv.URL
	vars["NOMAD_TOKEN"] = "secret-token"

	r := runCLI(t, vars, "deploy", "--namespace", "fns", dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "created job nimbus-bye") || !strings.Contains(r.stdout, "created job nimbus-hello") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	for _, id := range []string{"nimbus-hello", "nimbus-bye"} {
		if srv.Job("fns", id) == nil {
			t.Errorf("%s not registered in namespace fns", id)
		}
	}
	for _, req := range srv.Requests() {
		if req.Token != "secret-token" {
			t.Errorf("%s %s without NOMAD_TOKEN", req.Method, req.Path)
		}
		if req.Query.Get("namespace") != "fns" {
			t.Errorf("%s %s namespace %q", req.Method, req.Path, req.Query.Get("namespace"))
		}
	}
	if u := srv.Unexpected(); len(u) > 0 {
		t.Errorf("unexpected requests %+v", u)
	}
	// Each job's variable holds its secret and was written before the job.
	for _, fn := range []string{"hello", "bye"} {
		v := srv.Variable("fns", "nomad/jobs/nimbus-"+fn)
		if v == nil || v.Items["invoke_secret"] != invokeapi.DeriveSecret([]byte("cli-test-key"), fn, "$LATEST") {
			t.Errorf("variable of nimbus-%s: %+v", fn, v)
		}
	}
	varAt, jobAt := -1, -1
	for i, req := range srv.Requests() {
		if req.Method == "PUT" && req.Path == "/v1/var/nomad/jobs/nimbus-hello" && varAt < 0 {
			varAt = i
		}
		if req.Method == "PUT" && req.Path == "/v1/jobs" && strings.Contains(string(req.Body), `"nimbus-hello"`) && jobAt < 0 {
			jobAt = i
		}
	}
	if varAt < 0 || jobAt < 0 || varAt > jobAt {
		t.Errorf("variable written at request %d, job registered at %d: the variable must come first", varAt, jobAt)
	}

	// The gateway scales; a redeploy keeps its count.
	j := srv.Job("fns", "nimbus-hello")
	*j.TaskGroups[1].Count = 3
	srv.Put(j)
	r = runCLI(t, vars, "deploy", "--namespace", "fns", "--function", "hello", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "updated job nimbus-hello") || !strings.Contains(r.stdout, "ondemand=3") {
		t.Errorf("redeploy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if *srv.Job("fns", "nimbus-hello").TaskGroups[1].Count != 3 {
		t.Error("redeploy reset the ondemand count")
	}
}

// Nothing is registered when any function fails validation or compilation,
// and the error names the file and place.
func TestDeployRegistersNothingOnError(t *testing.T) {
	srv := submittest.New(t)
	vars := baseEnv()
	vars["NOMAD_ADDR"] = srv.URL

	dir := t.TempDir()
	writeSpec(t, dir, "good.hcl", urlSpec)
	bad := writeSpec(t, dir, "bad.hcl", "function \"bad\" {\n  runtime = \"provided.al2023\"\n  memory_mb = 64\n  code {\n    dir = \".\"\n  }\n}\n")
	r := runCLI(t, vars, "deploy", dir)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":3:") {
		t.Errorf("invalid spec: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests to Nomad after a validation error", n)
	}

	dir2 := t.TempDir()
	writeSpec(t, dir2, "good.hcl", urlSpec)
	noStore := writeSpec(t, dir2, "echo.hcl", dirSpec)
	r = runCLI(t, vars, "deploy", dir2)
	if r.code != 1 || !strings.Contains(r.stderr, noStore+":1:1") {
		t.Errorf("uncompilable function: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests to Nomad after a compile error", n)
	}

	// Without the cluster key the job's variable cannot be written.
	noKey := map[string]string{"NOMAD_ADDR": srv.URL}
	r = runCLI(t, noKey, "deploy", writeSpec(t, t.TempDir(), "good.hcl", urlSpec))
	if r.code != 1 || !strings.Contains(r.stderr, envSecretKey) {
		t.Errorf("without a key: exit %d, stderr %s", r.code, r.stderr)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests to Nomad without a key", n)
	}
}

func TestPlanPrintsDiff(t *testing.T) {
	srv := submittest.New(t)
	vars := baseEnv()
	vars["NOMAD_ADDR"] = srv.URL
	dir := t.TempDir()
	spec := writeSpec(t, dir, "hello.hcl", urlSpec)
	r := runCLI(t, vars, "plan", spec)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "job nimbus-hello (new):") || !strings.Contains(r.stdout, `+ job "nimbus-hello"`) {
		t.Errorf("plan output:\n%s", r.stdout)
	}
	if srv.Job("default", "nimbus-hello") != nil {
		t.Error("plan registered the job")
	}
	for _, req := range srv.Requests() {
		if req.Method != "GET" && !strings.HasSuffix(req.Path, "/plan") {
			t.Errorf("plan made a %s %s request", req.Method, req.Path)
		}
	}
}
