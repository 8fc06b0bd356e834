package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/artifacts/artifactstest"
	"github.com/nimbus-fn/nimbus/gateway/versions/versionstest"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
)

const clusterSpec = `function "echo" {
  runtime = "provided.al2023"
  code {
    dir = "src"
  }
  layers = ["deps"]
  alias "live" {
    version = "1"
  }
}

function "urlfn" {
  runtime = "provided.al2023"
  code {
    url      = "https://elsewhere.example.com/urlfn.zip"
    checksum = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
  }
  layers = ["deps"]
}

layer "deps" {
  code {
    dir = "deps"
  }
}
`

// The cluster path end to end against doubles of exactly the Nomad
// endpoints used (jobs from submittest, variables from versionstest) and a
// real artifact store: deploy uploads and registers $LATEST, layer publish
// records a layer version, publish snapshots the deployed job into
// nimbus-echo-1, aliases and deletes go through Nomad Variables.
func TestPublishCluster(t *testing.T) {
	store := artifactstest.Open(t)
	gw := httptest.NewServer(artifacts.NewHandler(store, nil))
	defer gw.Close()

	jobsDouble := submittest.New(t)
	vars := versionstest.New(t)
	target, _ := url.Parse(jobsDouble.URL)
	mux := http.NewServeMux()
	mux.Handle("/v1/var/", vars)
	mux.Handle("/v1/vars", vars)
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	nomad := httptest.NewServer(mux)
	defer nomad.Close()

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "nimbus.hcl"), clusterSpec)
	writeFile(t, filepath.Join(dir, "src", "bootstrap"), "#!/bin/sh\n")
	writeFile(t, filepath.Join(dir, "deps", "bin", "tool"), "#!/bin/sh\n")
	env := baseEnv()
	env["NOMAD_ADDR"] = nomad.URL
	env["NIMBUS_ENDPOINT"] = gw.URL

	if r := runCLI(t, env, "publish", "--nomad", "echo"); r.code != 1 || !strings.Contains(r.stderr, "deploy it first") {
		t.Fatalf("publish before deploy: %d %s", r.code, r.stderr)
	}
	mustRun(t, env, "deploy", "--nomad", "--bundle-dir", filepath.Join(dir, "b"), dir)
	latest := jobsDouble.Job("default", "nimbus-echo")
	if latest == nil {
		t.Fatal("deploy registered no job")
	}
	if r := runCLI(t, env, "publish", "--nomad", "echo"); r.code != 1 || !strings.Contains(r.stderr, "layer deps has no published version") {
		t.Fatalf("publish before layer publish: %d %s", r.code, r.stderr)
	}
	if r := mustRun(t, env, "layer", "publish", "--nomad", "deps", dir); !strings.Contains(r.stdout, "published layer deps version 1") || !strings.Contains(r.stderr, "new: false") {
		t.Fatalf("layer publish: %s / %s", r.stdout, r.stderr)
	}
	r := mustRun(t, env, "publish", "--nomad", "--description", "first", "echo")
	if !strings.Contains(r.stdout, "registered job nimbus-echo-1") || !strings.Contains(r.stdout, "published echo version 1") || !strings.Contains(r.stdout, "alias live -> 1") {
		t.Fatalf("publish: %s", r.stdout)
	}
	v1 := jobsDouble.Job("default", "nimbus-echo-1")
	if v1 == nil {
		t.Fatal("version job not registered")
	}
	if v1.Meta[jobs.MetaVersion] != "1" || v1.Meta[jobs.MetaCodeSHA256] != latest.Meta[jobs.MetaCodeSHA256] {
		t.Fatalf("version job meta %v", v1.Meta)
	}
	lc, vc := latest.TaskGroups[0].Tasks[0].Config, v1.TaskGroups[0].Tasks[0].Config
	vl, _ := vc["layer_urls"].([]any)
	if vc["code_url"] != lc["code_url"] || fmt.Sprint(vc["layer_urls"]) != fmt.Sprint(lc["layer_urls"]) || len(vl) != 1 ||
		!strings.HasPrefix(fmt.Sprint(vl[0]), gw.URL+artifacts.Path) {
		t.Fatalf("version job bundles differ from $LATEST's: %v %v vs %v %v", vc["code_url"], vc["layer_urls"], lc["code_url"], lc["layer_urls"])
	}
	if items := vars.Items("nimbus/functions/echo/versions/1"); items["code_sha256"] != latest.Meta[jobs.MetaCodeSHA256] || items["description"] != "first" {
		t.Fatalf("version variable %v", items)
	}
	if items := vars.Items("nimbus/functions/echo/aliases/live"); items["version"] != "1" {
		t.Fatalf("alias variable %v", items)
	}
	// Each job's invoke secret is in its own variable, not in the job.
	for id, version := range map[string]string{"nimbus-echo": "$LATEST", "nimbus-echo-1": "1"} {
		if items := vars.Items("nomad/jobs/" + id); items["invoke_secret"] != invokeapi.DeriveSecret([]byte("cli-test-key"), "echo", version) {
			t.Fatalf("variable of %s: %v", id, items)
		}
	}

	jobsDouble.Reset()
	if r := mustRun(t, env, "publish", "--nomad", "echo"); !strings.Contains(r.stdout, "unchanged since version 1") || strings.Contains(r.stdout, "registered job") {
		t.Fatalf("publish unchanged: %s", r.stdout)
	}
	for _, req := range jobsDouble.Requests() {
		if req.Method != http.MethodGet {
			t.Errorf("an unchanged publish wrote to Nomad: %s %s", req.Method, req.Path)
		}
	}
	if r := runCLI(t, env, "versions", "delete", "--nomad", "echo", "1"); r.code != 1 || !strings.Contains(r.stderr, "alias live points at it") {
		t.Fatalf("delete in use: %d %s", r.code, r.stderr)
	}
	mustRun(t, env, "alias", "delete", "--nomad", "echo", "live")
	mustRun(t, env, "versions", "delete", "--nomad", "echo", "1")
	if jobsDouble.Job("default", "nimbus-echo-1") != nil {
		t.Fatal("version job still registered after delete")
	}
	if got := vars.Items("nimbus/functions/echo/versions/1"); got != nil {
		t.Fatalf("version variable left: %v", got)
	}
	if got := vars.Items("nomad/jobs/nimbus-echo-1"); got != nil {
		t.Fatalf("the deleted version's job variable is left: %v", got)
	}
	// Code from a URL outside the store: the layer's base URL comes from
	// --endpoint / NIMBUS_ENDPOINT.
	noGW := baseEnv()
	noGW["NOMAD_ADDR"] = nomad.URL
	if r := runCLI(t, noGW, "publish", "--nomad", "urlfn"); r.code != 1 || !strings.Contains(r.stderr, "pass --endpoint") {
		t.Fatalf("url code with layers, no endpoint: %d %s", r.code, r.stderr)
	}
	mustRun(t, noGW, "publish", "--nomad", "--endpoint", gw.URL, "urlfn")
	u1 := jobsDouble.Job("default", "nimbus-urlfn-1")
	if u1 == nil {
		t.Fatal("nimbus-urlfn-1 not registered")
	}
	ua := jobs.Bundles(u1.TaskGroups[0].Tasks[0])
	if len(ua) != 2 || ua[0].Source != "https://elsewhere.example.com/urlfn.zip" || !strings.HasPrefix(ua[1].Source, gw.URL+artifacts.Path) {
		t.Fatalf("urlfn bundles %+v", ua)
	}
	if u := jobsDouble.Unexpected(); len(u) > 0 {
		t.Fatalf("unexpected Nomad requests: %+v", u)
	}
}
