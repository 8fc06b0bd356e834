package main

import (
	"archive/zip"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit/submittest"
)

// bundleOf reads the bundle the job of fn fetches from bundles (written by
// --bundle-dir) and returns it with its entry names, sorted.
func bundleOf(t *testing.T, srv *submittest.Server, fn, bundles string) (string, []string, *zip.Reader) {
	t.Helper()
	job := srv.Job("default", "nimbus-"+fn)
	if job == nil {
		t.Fatalf("job nimbus-%s not registered", fn)
	}
	art := jobs.Bundles(job.TaskGroups[0].Tasks[0])[0]
	sum := strings.TrimPrefix(art.Checksum, "sha256:")
	path := filepath.Join(bundles, sum+".zip")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the bundle the job fetches: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return path, names, zr
}

func deployVars(srv *submittest.Server) map[string]string {
	vars := baseEnv()
	vars["NOMAD_ADDR"] = srv.URL
	return vars
}

// nimbus deploy examples/hello-go packages a linux bootstrap built from
// main.go (not main.go itself), writes nothing into the example, and the
// bootstrap in the bundle answers an invocation.
func TestDeployBuildsHelloGo(t *testing.T) {
	srv := submittest.New(t)
	example := filepath.Join("..", "..", "examples", "hello-go")
	bundles := t.TempDir()
	r := runCLI(t, deployVars(srv), "deploy", "--artifact-base-url", "https://bundles.example.com", "--bundle-dir", bundles, example)
	if r.code != 0 {
		t.Fatalf("deploy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "function hello-go: built `CGO_ENABLED=0 GOOS=linux go build") {
		t.Errorf("deploy does not say what it built:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(example, "bootstrap")); err == nil {
		t.Fatal("the build wrote a bootstrap into examples/hello-go")
	}
	path, names, zr := bundleOf(t, srv, "hello-go", bundles)
	if len(names) != 1 || names[0] != "bootstrap" {
		t.Fatalf("the bundle holds %v, want just the built bootstrap", names)
	}
	f := zr.File[0]
	if f.Mode().Perm()&0o111 == 0 {
		t.Fatalf("bootstrap mode %v is not executable", f.Mode())
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	magic := make([]byte, 4)
	_, err = rc.Read(magic)
	rc.Close()
	if err != nil || string(magic) != "\x7fELF" {
		t.Fatalf("bootstrap starts %q, not an ELF header (%v)", magic, err)
	}
	if runtime.GOOS != "linux" {
		t.Skip("the linux bootstrap only runs on linux")
	}
	code := t.TempDir()
	if err := bundle.Extract(path, code, bundle.Limits{}); err != nil {
		t.Fatal(err)
	}
	c, out, errOut := runLocalCLI(t, `{"name":"bundle"}`, "local", "invoke", "--event", "-", code)
	if c != 0 || out != "{\"message\":\"hello, bundle\"}\n" {
		t.Fatalf("invoking the packaged bootstrap: exit %d\nstdout %q\nstderr %q", c, out, errOut)
	}
}

// A build block's command runs in the code dir and its output directory is
// what the bundle holds.
func TestBuildBlockOutputIsPackaged(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"src/app.py":    "def handler(event, context):\n    return event\n",
		"src/notes.txt": "left out",
		"nimbus.hcl": `function "py" {
  runtime = "python3.12"
  handler = "app.handler"
  code {
    dir = "src"
  }
  build {
    command = "mkdir -p out && cp app.py out/ && echo generated > out/gen.txt"
    output  = "out"
  }
}
`,
	})
	bundles := t.TempDir()
	r := runCLI(t, baseEnv(), "render", "--artifact-base-url", "https://b.example.com", "--bundle-dir", bundles, dir)
	if r.code != 0 {
		t.Fatalf("render: exit %d\n%s", r.code, r.stderr)
	}
	ents, err := filepath.Glob(filepath.Join(bundles, "*.zip"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("bundles written: %v %v", ents, err)
	}
	zr, err := zip.OpenReader(ents[0])
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if strings.Join(names, " ") != "app.py gen.txt" {
		t.Fatalf("the bundle holds %v, want the build output (app.py gen.txt)", names)
	}
}

// build { skip = true } packages the code dir as it is, Go sources and all.
func TestBuildBlockSkipsTheDefault(t *testing.T) {
	srv := submittest.New(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"fn/main.go": "package main\n\nfunc main() {}\n",
		"fn/go.mod":  "module fn\n\ngo 1.22\n",
		"nimbus.hcl": `function "raw" {
  runtime = "provided.al2023"
  code {
    dir = "fn"
  }
  build {
    skip = true
  }
}
`,
	})
	bundles := t.TempDir()
	r := runCLI(t, deployVars(srv), "deploy", "--artifact-base-url", "https://b.example.com", "--bundle-dir", bundles, dir)
	if r.code != 0 {
		t.Fatalf("deploy: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "built") {
		t.Errorf("a skipped build ran:\n%s", r.stderr)
	}
	if _, names, _ := bundleOf(t, srv, "raw", bundles); strings.Join(names, " ") != "go.mod main.go" {
		t.Fatalf("the bundle holds %v, want the code dir as it is", names)
	}
}

// A failing build stops deploy before anything is registered; the error
// names the function, the build's place in the spec and the command's output.
func TestFailingBuildRegistersNothing(t *testing.T) {
	srv := submittest.New(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"custom/good.hcl": urlSpec, // deployable, but not alone
		"custom/nimbus.hcl": `function "custom" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  build {
    command = "echo compiling; echo 'error: no such target' >&2; exit 2"
  }
}
`,
		"gofn/main.go": "package main\n\nfunc main() { undefinedThing() }\n",
		"gofn/go.mod":  "module gofn\n\ngo 1.22\n",
		"gofn/nimbus.hcl": `function "gofn" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
}
`,
	})
	custom := filepath.Join(dir, "custom", "nimbus.hcl")
	r := runCLI(t, deployVars(srv), "deploy", "--artifact-base-url", "https://b.example.com", "--bundle-dir", t.TempDir(), filepath.Dir(custom))
	want := custom + `:6:3: function "custom": build: build step ` + "`echo compiling; echo 'error: no such target' >&2; exit 2`"
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "exit status 2\ncompiling\nerror: no such target") {
		t.Errorf("failing build command: exit %d, want %q in stderr:\n%s", r.code, want, r.stderr)
	}
	gofn := filepath.Join(dir, "gofn", "nimbus.hcl")
	r = runCLI(t, deployVars(srv), "deploy", "--artifact-base-url", "https://b.example.com", "--bundle-dir", t.TempDir(), filepath.Dir(gofn))
	want = gofn + `:1:1: function "gofn": default build for runtime provided.al2023: build step ` + "`CGO_ENABLED=0 GOOS=linux go build"
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "undefinedThing") {
		t.Errorf("failing go build: exit %d, want %q in stderr:\n%s", r.code, want, r.stderr)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests to Nomad after a failed build", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "gofn", "bootstrap")); err == nil {
		t.Fatal("the failed build left a bootstrap in the code dir")
	}
}

// The nodejs default installs production dependencies (not dev ones) into
// a copy of the code dir; the bundle holds them. The dependencies are local
// tarballs, so no registry is needed.
func TestDeployBuildsNodeDependencies(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not on PATH; the nodejs default build (npm ci --omit=dev) is not tested")
	}
	srv := submittest.New(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"fn/index.mjs": "import dep from 'dep';\nexport const handler = async () => dep;\n",
		"fn/package.json": `{"name":"fn","version":"1.0.0","dependencies":{"dep":"file:dep-1.0.0.tgz"},` +
			`"devDependencies":{"devdep":"file:devdep-1.0.0.tgz"}}`,
		"dep/package.json":    `{"name":"dep","version":"1.0.0","main":"index.js"}`,
		"dep/index.js":        "module.exports = 'from dep';\n",
		"devdep/package.json": `{"name":"devdep","version":"1.0.0","main":"index.js"}`,
		"devdep/index.js":     "module.exports = 'dev only';\n",
		"nimbus.hcl": `function "node" {
  runtime = "nodejs20.x"
  handler = "index.handler"
  code {
    dir = "fn"
  }
}
`,
	})
	for _, dep := range []string{"dep", "devdep"} {
		npmRun(t, filepath.Join(dir, dep), "pack", "--pack-destination", filepath.Join(dir, "fn"))
	}
	npmRun(t, filepath.Join(dir, "fn"), "install", "--package-lock-only", "--offline", "--no-audit", "--no-fund")
	bundles := t.TempDir()
	r := runCLI(t, deployVars(srv), "deploy", "--artifact-base-url", "https://b.example.com", "--bundle-dir", bundles, dir)
	if r.code != 0 {
		t.Fatalf("deploy: exit %d\n%s", r.code, r.stderr)
	}
	_, names, _ := bundleOf(t, srv, "node", bundles)
	joined := " " + strings.Join(names, " ") + " "
	if !strings.Contains(joined, " index.mjs ") || !strings.Contains(joined, " node_modules/dep/index.js ") ||
		strings.Contains(joined, "node_modules/devdep/") {
		t.Fatalf("the bundle holds %v, want index.mjs and node_modules/dep without node_modules/devdep", names)
	}
	if _, err := os.Stat(filepath.Join(dir, "fn", "node_modules")); err == nil {
		t.Fatal("npm ci ran in the code dir")
	}
}

func npmRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("npm", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// nimbus local invoke (and nimbus dev, through the same launcher) runs the
// output of the spec's build block, as deploy packages it.
func TestLocalInvokeRunsTheBuildOutput(t *testing.T) {
	echo := filepath.Join(testfn.Dir(t, "echo"), "bootstrap")
	dir := writeLocalSpec(t, `function "built" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  build {
    command = "mkdir -p out && cp '`+echo+`' out/bootstrap"
    output  = "out"
  }
}
`)
	code, out, errOut := runLocalCLI(t, `{"built":true}`, "local", "invoke", "--event", "-", dir)
	if code != 0 || out != "{\"built\":true}\n" {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "bootstrap")); err != nil {
		t.Fatalf("the build command did not run: %v", err)
	}
}
