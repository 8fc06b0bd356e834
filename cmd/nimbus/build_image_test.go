package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// loopbackRegistry serves go-containerregistry's OCI registry on loopback
// and returns its host:port.
func loopbackRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// nimbus build --image packs a real aws-lambda-go function onto an empty
// base with Lambda's conventions, reproducibly (the OCI layout and the
// pushed image have one digest), and render pins the pushed tag to it.
func TestBuildImagePushAndRender(t *testing.T) {
	host := loopbackRegistry(t)
	code := testfn.Dir(t, "echo")
	tag := host + "/team/echo:v1"
	r := runCLI(t, baseEnv(), "build", "--image", "--runtime", "provided.al2023", "--tag", tag, "--push", code)
	if r.code != 0 {
		t.Fatalf("build --push: exit %d: %s", r.code, r.stderr)
	}
	ref, err := name.ParseReference(tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pulling the pushed image: %v", err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout, host+"/team/echo@"+digest.String()) {
		t.Errorf("build --push does not print the pinned reference:\n%s", r.stdout)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/var/task/bootstrap" || cf.Config.WorkingDir != "/var/task" || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("image config: entrypoint %q workdir %q platform %s/%s", got, cf.Config.WorkingDir, cf.OS, cf.Architecture)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one code layer", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	want, err := os.ReadFile(filepath.Join(code, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(rc)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "var/task/bootstrap" {
			found = true
			got, _ := io.ReadAll(tr)
			if h.Mode != 0o755 || len(got) != len(want) {
				t.Errorf("var/task/bootstrap: mode %o, %d bytes; want 0755, %d bytes", h.Mode, len(got), len(want))
			}
		}
	}
	if !found {
		t.Fatal("the code layer has no var/task/bootstrap")
	}

	// The same code gives the same image: the OCI layout holds this digest.
	out := filepath.Join(t.TempDir(), "layout")
	r = runCLI(t, baseEnv(), "build", "--image", "--runtime", "provided.al2023", "--output", out, code)
	if r.code != 0 {
		t.Fatalf("build to a layout: exit %d: %s", r.code, r.stderr)
	}
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest != digest {
		t.Fatalf("layout index: %v %+v; want one manifest %s", err, im, digest)
	}

	// render pins the tag in the job.
	dir := t.TempDir()
	spec := writeSpec(t, dir, "img.hcl", "function \"img\" {\n  code {\n    image = \""+tag+"\"\n  }\n}\n")
	r = runCLI(t, baseEnv(), "render", "--format", "json", spec)
	if r.code != 0 {
		t.Fatalf("render: exit %d: %s", r.code, r.stderr)
	}
	var doc struct{ Job *api.Job }
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	task := doc.Job.TaskGroups[0].Tasks[0]
	if task.Config["image"] != host+"/team/echo@"+digest.String() || len(task.Artifacts) != 0 {
		t.Errorf("rendered task: image %v, %d artifacts", task.Config["image"], len(task.Artifacts))
	}

	// A tag the registry does not hold fails render with Lambda's reason.
	spec = writeSpec(t, dir, "img.hcl", "function \"img\" {\n  code {\n    image = \""+host+"/team/echo:nope\"\n  }\n}\n")
	if r = runCLI(t, baseEnv(), "render", spec); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("render of a missing tag: exit %d: %s", r.code, r.stderr)
	}
}

func TestBuildImageRefusals(t *testing.T) {
	code := testfn.Dir(t, "echo")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"build", code}, "pass --image"},
		{[]string{"build", "--image", "--push", code}, "--push needs --tag"},
		{[]string{"build", "--image", code}, "pass --runtime"},
		{[]string{"build", "--image", "--runtime", "python3.12", "--handler", "app.handler", code}, "--base"},
	} {
		r := runCLI(t, baseEnv(), c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

// An image built by nimbus build --image runs under nimbus local invoke
// --image through the driver's image path (pulled from the registry into
// the cache, the image's filesystem as the environment's root).
func TestLocalInvokeImage(t *testing.T) {
	host := loopbackRegistry(t)
	tag := host + "/team/echo:v1"
	if r := runCLI(t, baseEnv(), "build", "--image", "--runtime", "provided.al2023", "--tag", tag, "--push", testfn.Dir(t, "echo")); r.code != 0 {
		t.Fatalf("build --push: exit %d: %s", r.code, r.stderr)
	}
	ev := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(ev, []byte(`{"k":"image"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runLocalCLI(t, "", "local", "invoke", "--image", tag, "--image-cache", t.TempDir(), "--event", ev)
	if code != 0 || out != "{\"k\":\"image\"}\n" {
		t.Fatalf("local invoke --image: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	code, _, errOut = runLocalCLI(t, "", "local", "invoke", "--image", host+"/team/echo:nope", "--image-cache", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("local invoke of a missing image: exit %d stderr %q", code, errOut)
	}
}
