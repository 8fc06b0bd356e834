package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/artifacts/artifactstest"
	"github.com/nimbus-fn/nimbus/gateway/sigv4"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
)

const publishSpec = `function "hello" {
  runtime = "python3.12"
  handler = "app.handler"
  code {
    dir = "src"
  }
  layers = ["deps"]
  alias "live" {
    version = "1"
  }
}

layer "deps" {
  code {
    dir = "deps"
  }
  compatible_runtimes = ["python3.12"]
}
`

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRun(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	r := runCLI(t, env, args...)
	if r.code != 0 {
		t.Fatalf("nimbus %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func TestPublishAliasVersionsLocal(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "state")
	env := map[string]string{envStateDir: state}
	writeFile(t, filepath.Join(dir, "nimbus.hcl"), publishSpec)
	writeFile(t, filepath.Join(dir, "src", "app.py"), "import helper\ndef handler(e, c):\n    return helper.v()\n")
	writeFile(t, filepath.Join(dir, "deps", "python", "helper.py"), "def v():\n    return 1\n")

	// The function's layer must be published first, with a clear error.
	r := runCLI(t, env, "publish", "hello", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "layer deps has no published version (nimbus layer publish)") {
		t.Fatalf("publish before the layer: %d %s", r.code, r.stderr)
	}
	r = mustRun(t, env, "layer", "publish", "deps", dir)
	if !strings.Contains(r.stdout, "published layer deps version 1") {
		t.Fatalf("layer publish: %s", r.stdout)
	}
	if r = mustRun(t, env, "layer", "publish", "deps", dir); !strings.Contains(r.stdout, "unchanged since version 1") {
		t.Fatalf("layer publish again: %s", r.stdout)
	}

	r = mustRun(t, env, "publish", "--description", "first", "hello", dir)
	if !strings.Contains(r.stdout, "published hello version 1") || !strings.Contains(r.stdout, "alias live -> 1") {
		t.Fatalf("publish: %s", r.stdout)
	}
	if r = mustRun(t, env, "publish", "hello", dir); !strings.Contains(r.stdout, "$LATEST is unchanged since version 1") {
		t.Fatalf("publish unchanged: %s", r.stdout)
	}
	writeFile(t, filepath.Join(dir, "src", "app.py"), "import helper\ndef handler(e, c):\n    return helper.v() + 1\n")
	if r = mustRun(t, env, "publish", "hello", dir); !strings.Contains(r.stdout, "published hello version 2") {
		t.Fatalf("publish changed code: %s", r.stdout)
	}

	// The frozen version runs its own unpacked copy with pinned layers.
	b, _ := versions.NewLocal(state)
	st := versions.New(b, hclog.NewNullLogger())
	v1, err := st.Version(context.Background(), "hello", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(v1.Spec.Code.Dir) || !strings.HasPrefix(v1.Spec.Code.Dir, state) || len(v1.Spec.Layers) != 1 || v1.Spec.Layers[0] != "deps:1" {
		t.Fatalf("version 1 spec: code %+v layers %v", v1.Spec.Code, v1.Spec.Layers)
	}
	frozen, err := os.ReadFile(filepath.Join(v1.Spec.Code.Dir, "app.py"))
	if err != nil || strings.Contains(string(frozen), "+ 1") {
		t.Fatalf("version 1's code changed with $LATEST: %q %v", frozen, err)
	}
	lv, _ := st.LayerVersion(context.Background(), "deps", 1)
	if _, err := os.Stat(filepath.Join(state, "unpacked", lv.CodeSHA256, "python", "helper.py")); err != nil {
		t.Fatalf("layer not unpacked: %v", err)
	}

	mustRun(t, env, "alias", "set", "hello", "live", "1", "--weight", "v2=0.25")
	r = mustRun(t, env, "versions", "hello")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "live") || !strings.Contains(lines[1], "first") || !strings.Contains(lines[2], "live (0.25)") {
		t.Fatalf("versions table:\n%s", r.stdout)
	}
	if r = mustRun(t, env, "alias", "list", "hello"); !strings.Contains(r.stdout, "live   1        2=0.25") {
		t.Fatalf("alias list:\n%s", r.stdout)
	}
	for _, bad := range [][]string{
		{"alias", "set", "hello", "live", "1", "--weight", "2=1.5"},
		{"alias", "set", "hello", "live", "$LATEST"},
		{"alias", "set", "hello", "live", "7"},
		{"alias", "set", "hello", "live", "1", "--weight", "two=0.1"},
	} {
		if r := runCLI(t, env, bad...); r.code != 1 || r.stderr == "" {
			t.Errorf("%v: exit %d %s", bad, r.code, r.stderr)
		}
	}
	r = runCLI(t, env, "versions", "delete", "hello", "2")
	if r.code != 1 || !strings.Contains(r.stderr, "alias live routes to it") {
		t.Fatalf("deleting a routed version: %d %s", r.code, r.stderr)
	}
	mustRun(t, env, "alias", "set", "hello", "live", "2")
	if r = mustRun(t, env, "versions", "delete", "hello", "1"); !strings.Contains(r.stdout, "deleted version 1 of hello") {
		t.Fatal(r.stdout)
	}
	mustRun(t, env, "alias", "delete", "hello", "live")
	if r = mustRun(t, env, "versions", "hello"); strings.Contains(r.stdout, "live") || !strings.HasPrefix(strings.Split(r.stdout, "\n")[1], "2 ") {
		t.Fatalf("after deletes:\n%s", r.stdout)
	}
}

// Code and layers together may not unzip beyond Lambda's 250 MB.
func TestPublishRefusesOversizedLayers(t *testing.T) {
	dir := t.TempDir()
	state := t.TempDir()
	big := "\nlayer \"big1\" {\n  code {\n    dir = \"deps\"\n  }\n}\nlayer \"big2\" {\n  code {\n    dir = \"deps\"\n  }\n}\n"
	writeFile(t, filepath.Join(dir, "nimbus.hcl"), strings.Replace(publishSpec, `layers = ["deps"]`, `layers = ["deps", "big1:1", "big2"]`, 1)+big)
	writeFile(t, filepath.Join(dir, "src", "app.py"), "x = 1\n")
	writeFile(t, filepath.Join(dir, "deps", "python", "helper.py"), "y = 1\n")
	b, _ := versions.NewLocal(state)
	st := versions.New(b, nil)
	for _, c := range []string{"1", "2"} {
		if _, _, err := st.PublishLayer(context.Background(), "big"+c, versions.LayerSnapshot{CodeSHA256: strings.Repeat(c, 64), Size: 130 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{envStateDir: state}
	mustRun(t, env, "layer", "publish", "deps", dir)
	r := runCLI(t, env, "publish", "hello", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "code and 3 layers unzip to 260.0 MB, more than Lambda's 250 MB") {
		t.Fatalf("oversized: %d %s", r.code, r.stderr)
	}
	if vs, _ := st.Versions(context.Background(), "hello"); len(vs) != 0 {
		t.Fatalf("a refused publish stored version %d", vs[0].Number)
	}
}

// deploy --endpoint uploads the packaged bundles to a real artifact store
// (SigV4-authenticated, as a gateway with keys runs it) before registering
// a job that fetches them from there.
func TestDeployUploadsToArtifactStore(t *testing.T) {
	store := artifactstest.Open(t)
	v := &sigv4.Verifier{Keys: map[string]string{"AKIDDEPLOY": "deploy-secret"}, Region: "us-east-1", Service: "lambda"}
	gw := httptest.NewServer(artifacts.NewHandler(store, func(r *http.Request, body []byte) error {
		_, err := v.Verify(r, body)
		return err
	}))
	defer gw.Close()
	nomad := submittest.New(t)

	dir := t.TempDir()
	spec := writeSpec(t, dir, "echo.hcl", dirSpec)
	writeFile(t, filepath.Join(dir, "src", "bootstrap"), "#!/bin/sh\n")
	env := baseEnv()
	env["NOMAD_ADDR"] = nomad.URL
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "AKIDDEPLOY", "wrong"
	if r := runCLI(t, env, "deploy", "--nomad", "--endpoint", gw.URL, "--bundle-dir", filepath.Join(dir, "b"), spec); r.code != 1 || !strings.Contains(r.stderr, "AccessDenied") {
		t.Fatalf("deploy with a wrong key: %d %s", r.code, r.stderr)
	}
	if j := nomad.Job("default", "nimbus-echo"); j != nil {
		t.Fatal("a job was registered although its bundle was not stored")
	}
	env["AWS_SECRET_ACCESS_KEY"] = "deploy-secret"
	r := mustRun(t, env, "deploy", "--nomad", "--endpoint", gw.URL, "--bundle-dir", filepath.Join(dir, "b"), spec)
	if !strings.Contains(r.stderr, " uploaded (") {
		t.Fatalf("deploy stderr: %s", r.stderr)
	}
	job := nomad.Job("default", "nimbus-echo")
	if job == nil {
		t.Fatal("job not registered")
	}
	art := jobs.Bundles(job.TaskGroups[0].Tasks[0])[0]
	sum := strings.TrimPrefix(art.Checksum, "sha256:")
	if art.Source != gw.URL+artifacts.Path+sum+".zip" {
		t.Fatalf("bundle source %s", art.Source)
	}
	resp, err := http.Get(art.Source)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(artifacts.HeaderSHA256) != sum || len(body) == 0 {
		t.Fatalf("the job's artifact URL answers %s", resp.Status)
	}
	r = mustRun(t, env, "deploy", "--nomad", "--endpoint", gw.URL, "--bundle-dir", filepath.Join(dir, "b"), spec)
	if !strings.Contains(r.stderr, "already stored") {
		t.Fatalf("second deploy should dedupe: %s", r.stderr)
	}
}

// A zip whose entries climb out of the extraction root is refused and
// writes nothing outside it (zip slip).
func TestPublishRefusesZipSlip(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "state")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"bootstrap", "../../escaped.txt"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, "x")
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "evil.zip"), buf.String())
	writeFile(t, filepath.Join(dir, "nimbus.hcl"), "function \"evil\" {\n  runtime = \"provided.al2023\"\n  code {\n    zip = \"evil.zip\"\n  }\n}\n")
	r := runCLI(t, map[string]string{envStateDir: state}, "publish", "evil", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "unsafe path") {
		t.Fatalf("zip slip: %d %s", r.code, r.stderr)
	}
	for _, p := range []string{filepath.Join(state, "..", "escaped.txt"), filepath.Join(state, "escaped.txt"), filepath.Join(filepath.Dir(state), "..", "escaped.txt")} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s was written", p)
		}
	}
	b, _ := versions.NewLocal(state)
	if vs, _ := versions.New(b, nil).Versions(context.Background(), "evil"); len(vs) != 0 {
		t.Fatal("a refused bundle was published")
	}
}
