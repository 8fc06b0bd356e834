package instance

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/driver/oci/ocitest"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/runtimes"
)

// needSandbox skips where environments cannot be isolated (image
// functions run only isolated).
func needSandbox(t *testing.T) {
	t.Helper()
	if m := sandbox.Missing(); len(m) > 0 {
		t.Skipf("image functions need isolation; this host lacks: %v", m)
	}
}

// imageFnConfig is an instance config for the image ref, its cache in cache.
func imageFnConfig(t *testing.T, ref, cache string) *Config {
	t.Helper()
	c := testConfig(t, "echo")
	c.Function = "img-fn"
	c.Runtime, c.CodeDir = "", ""
	c.Image = &ImageConfig{Ref: ref, CacheDir: cache}
	return c
}

// fnAs is testfn fn's built bootstrap as the image file /name.
func fnAs(t *testing.T, fn, name string) []ocitest.Entry {
	t.Helper()
	e := ocitest.DirEntries(t, testfn.Dir(t, fn), "/")
	e[0].Name = name
	return e
}

// ctxReport is what internal/testfn/ctxcheck answers.
type ctxReport struct {
	Cwd string            `json:"cwd"`
	Env map[string]string `json:"env"`
}

func ctxInvoke(t *testing.T, in *Instance) ctxReport {
	t.Helper()
	r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{}`)})
	if r.resp.FunctionError != "" {
		t.Fatalf("function error: %s", r.body)
	}
	var rep ctxReport
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	return rep
}

func TestImageFunctionWithGoEntrypoint(t *testing.T) {
	needSandbox(t)
	reg := ocitest.NewRegistry(t, "", "")
	bin := fnAs(t, "ctxcheck", "main") // the built "bootstrap", as a plain image's /main
	img := ocitest.Image(t, v1.Config{
		Entrypoint: []string{"/main"},
		Env:        []string{"FROM_IMAGE=1", "SHARED=image", "AWS_LAMBDA_FUNCTION_NAME=spoofed", "PATH=/usr/bin:/bin"},
		WorkingDir: "/app",
	}, ocitest.Layer(t, bin...))
	ref := reg.Push(t, "plain/go:v1", img)
	c := imageFnConfig(t, ref, t.TempDir())
	c.Env = map[string]string{"SHARED": "function"}
	in := start(t, c)
	if !in.Isolated() {
		t.Fatal("image function runs unisolated")
	}
	rep := ctxInvoke(t, in)
	for k, want := range map[string]string{
		"FROM_IMAGE":               "1",
		"SHARED":                   "function",
		"AWS_LAMBDA_FUNCTION_NAME": "img-fn",
		"PATH":                     "/usr/bin:/bin",
		"TMPDIR":                   "/tmp",
		"LAMBDA_TASK_ROOT":         "/var/task",
		"_HANDLER":                 "",
	} {
		if got := rep.Env[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if rep.Env["AWS_LAMBDA_RUNTIME_API"] == "" {
		t.Error("AWS_LAMBDA_RUNTIME_API unset")
	}
	if rep.Cwd != "/app" {
		t.Errorf("cwd %q, want the image's WORKDIR /app", rep.Cwd)
	}
	// A second invocation reuses the warm environment.
	ctxInvoke(t, in)
}

// An image of more layers than their paths fit in one overlay mount's
// options (a page: about 40 layers of the cache's paths, fewer under a
// long cache dir) runs, stacked in order: the top layer's /main wins.
func TestImageFunctionManyLayers(t *testing.T) {
	needSandbox(t)
	reg := ocitest.NewRegistry(t, "", "")
	layers := []v1.Layer{ocitest.Layer(t, fnAs(t, "ctxcheck", "main")...)}
	for i := range 98 {
		layers = append(layers, ocitest.Layer(t, ocitest.Entry{Name: "f" + strconv.Itoa(i), Body: []byte(strconv.Itoa(i))}))
	}
	layers = append(layers, ocitest.Layer(t, fnAs(t, "echo", "main")...))
	ref := reg.Push(t, "many/layers:v1", ocitest.Image(t, v1.Config{Entrypoint: []string{"/main"}}, layers...))
	cache := filepath.Join(t.TempDir(), strings.Repeat("c", 120))
	in := start(t, imageFnConfig(t, ref, cache))
	if err := in.ImageFailure(); err != nil {
		t.Fatal(err)
	}
	if perLayer := len(in.image.Layers[0]) + 1; perLayer*len(layers) <= os.Getpagesize() {
		t.Fatalf("the layers' paths (%d bytes each) fit in a page: the test proves nothing", perLayer)
	}
	if r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{"n":1}`)}); r.resp.FunctionError != "" || string(r.body) != `{"n":1}` {
		t.Fatalf("a %d-layer image: %s", len(layers), r.body)
	}
}

func TestImageFunctionBaseImageConvention(t *testing.T) {
	needSandbox(t)
	reg := ocitest.NewRegistry(t, "", "")
	entry := fnAs(t, "entrypoint", "lambda-entrypoint.sh")
	runtime := ocitest.DirEntries(t, testfn.Dir(t, "ctxcheck"), "/var/runtime")
	base := ocitest.Layer(t, append(append([]ocitest.Entry{{Name: "var/", Type: '5'}, {Name: "var/runtime/", Type: '5'}}, entry...), runtime...)...)
	code := ocitest.Layer(t, ocitest.Entry{Name: "var/task/", Type: '5'}, ocitest.Entry{Name: "var/task/app.py", Body: []byte("def handler(e, c): return e\n")})
	img := ocitest.Image(t, v1.Config{
		Entrypoint: []string{"/lambda-entrypoint.sh"},
		Cmd:        []string{"app.handler"},
		WorkingDir: "/var/task",
		Env:        []string{"LAMBDA_TASK_ROOT=/var/task", "LAMBDA_RUNTIME_DIR=/var/runtime"},
	}, base, code)
	ref := reg.Push(t, "base/py:v1", img)
	cache := t.TempDir()

	rep := ctxInvoke(t, start(t, imageFnConfig(t, ref, cache)))
	if rep.Env["_HANDLER"] != "app.handler" || rep.Cwd != "/var/task" {
		t.Fatalf("_HANDLER %q cwd %q", rep.Env["_HANDLER"], rep.Cwd)
	}
	// image_command overrides CMD (the handler); the same cached layers serve it.
	c := imageFnConfig(t, ref, cache)
	c.Image.Command = []string{"other.handler"}
	c.Image.WorkingDirectory = "/srv"
	rep = ctxInvoke(t, start(t, c))
	if rep.Env["_HANDLER"] != "other.handler" || rep.Cwd != "/srv" {
		t.Fatalf("override: _HANDLER %q cwd %q", rep.Env["_HANDLER"], rep.Cwd)
	}
	if n := reg.BlobGets(ocitest.Digest(t, base)); n != 1 {
		t.Fatalf("base layer downloaded %d times for two instances", n)
	}
}

func TestImageFunctionFailures(t *testing.T) {
	needSandbox(t)
	reg := ocitest.NewRegistry(t, "", "")
	private := ocitest.NewRegistry(t, "u", "p")
	cache := t.TempDir()
	bin := fnAs(t, "echo", "main")
	good := reg.Push(t, "good:v1", ocitest.Image(t, v1.Config{Entrypoint: []string{"/main"}}, ocitest.Layer(t, bin...)))
	okIn := start(t, imageFnConfig(t, good, cache))
	if err := okIn.ImageFailure(); err != nil {
		t.Fatalf("a pulled image reports a failure: %v", err)
	}
	if r := invoke(t, okIn, &invokeapi.Request{Payload: []byte(`{"n":1}`)}); r.resp.FunctionError != "" || string(r.body) != `{"n":1}` {
		t.Fatalf("good function: %s", r.body)
	}

	badLayer := ocitest.Layer(t, ocitest.Entry{Name: "x", Body: []byte(strings.Repeat("x", 10000))})
	corrupt := reg.Push(t, "corrupt:v1", ocitest.Image(t, v1.Config{Entrypoint: []string{"/main"}}, ocitest.Layer(t, bin...), badLayer))
	reg.Corrupt(ocitest.Digest(t, badLayer))
	noEntry := reg.Push(t, "noentry:v1", ocitest.Image(t, v1.Config{Entrypoint: []string{"/bin/missing"}}, ocitest.Layer(t, bin...)))
	for _, c := range []struct {
		name, ref, typ string
	}{
		{"missing", reg.Host + "/gone@sha256:" + strings.Repeat("0", 64), oci.ReasonImageDeleted},
		{"corrupt", corrupt, oci.ReasonInvalidImage},
		{"denied", private.Push(t, "p:v1", ocitest.Image(t, v1.Config{Entrypoint: []string{"/main"}}, ocitest.Layer(t, bin...))), oci.ReasonImageAccessDenied},
		{"entrypoint", noEntry, "Runtime.InvalidEntrypoint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := start(t, imageFnConfig(t, c.ref, cache))
			r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{}`)})
			if r.resp.FunctionError != invokeapi.FunctionErrorUnhandled {
				t.Fatalf("no function error: %s", r.body)
			}
			if typ, msg := errorBody(t, r.body); typ != c.typ {
				t.Fatalf("errorType %q (%s), want %q", typ, msg, c.typ)
			}
			// The pull failure is there for the launcher to report (the
			// function's state); an entrypoint error is not one.
			if want := map[bool]string{true: c.typ}[c.name != "entrypoint"]; r.resp.ImageFailure != want {
				t.Fatalf("image failure header %q, want %q", r.resp.ImageFailure, want)
			}
			pullErr := in.ImageFailure()
			if want := c.name != "entrypoint"; (pullErr != nil) != want || (want && oci.Reason(pullErr) != c.typ) {
				t.Fatalf("ImageFailure() = %v (reason %q), want one: %v", pullErr, oci.Reason(pullErr), want)
			}
		})
	}
	// The good function, sharing the cache, is unharmed.
	if r := invoke(t, okIn, &invokeapi.Request{Payload: []byte(`{"n":2}`)}); r.resp.FunctionError != "" || string(r.body) != `{"n":2}` {
		t.Fatalf("good function after the failures: %s", r.body)
	}
}

func TestImageFunctionNeedsIsolation(t *testing.T) {
	c := imageFnConfig(t, "127.0.0.1:1/x@sha256:"+strings.Repeat("0", 64), t.TempDir())
	c.Isolation.Disabled = true
	if _, err := New(c, testLogger(t)); !errors.Is(err, ErrImageNeedsIsolation) {
		t.Fatalf("New: %v", err)
	}
	c = imageFnConfig(t, "127.0.0.1:1/x:latest", filepath.Join(t.TempDir(), "c"))
	if _, err := New(c, testLogger(t)); err == nil || !strings.Contains(err.Error(), "pinned by digest") {
		t.Fatalf("tag accepted: %v", err)
	}
	c = imageFnConfig(t, "127.0.0.1:1/x@sha256:"+strings.Repeat("0", 64), t.TempDir())
	c.Runtime = "provided.al2023"
	if _, err := New(c, testLogger(t)); err == nil {
		t.Fatal("runtime accepted with an image")
	}
}

// pythonImage assembles a python image in the AWS base images' layout from
// this host's python3.11 (interpreter, the libraries it links, its standard
// library), Nimbus's python bootstrap at /var/runtime and a handler at
// /var/task; ENTRYPOINT runs the bootstrap, CMD names the handler.
func pythonImage(t *testing.T) v1.Image {
	t.Helper()
	const exe = "/usr/bin/python3.11"
	if _, err := os.Stat(exe); err != nil {
		t.Skipf("no %s on this host", exe)
	}
	var osEntries []ocitest.Entry
	file := func(host, inside string) {
		b, err := os.ReadFile(host)
		if err != nil {
			t.Skipf("python image: %v", err)
		}
		osEntries = append(osEntries, ocitest.Entry{Name: inside, Body: b, Mode: 0o755})
	}
	file(exe, "usr/bin/python3.11")
	for _, lib := range []string{"libm.so.6", "libz.so.1", "libexpat.so.1", "libc.so.6"} {
		file("/lib/x86_64-linux-gnu/"+lib, "lib/x86_64-linux-gnu/"+lib)
	}
	file("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2")
	skip := []string{"/test/", "/__pycache__/", "/idlelib/", "/tkinter/", "/lib2to3/", "/ensurepip/", "/pydoc_data/", "/config-3.11", "/distutils/", "/turtledemo/"}
	for _, e := range ocitest.DirEntries(t, "/usr/lib/python3.11", "/usr/lib/python3.11") {
		keep := true
		for _, s := range skip {
			if strings.Contains("/"+e.Name+"/", s) {
				keep = false
			}
		}
		if keep {
			osEntries = append(osEntries, e)
		}
	}
	rt := t.TempDir()
	if err := runtimes.Install(rt); err != nil {
		t.Fatal(err)
	}
	boot, err := os.ReadFile(filepath.Join(rt, "python", "bootstrap.py"))
	if err != nil {
		t.Fatal(err)
	}
	runtimeLayer := ocitest.Layer(t, ocitest.Entry{Name: "var/runtime/bootstrap.py", Body: boot, Mode: 0o644})
	code := ocitest.Layer(t, ocitest.Entry{Name: "var/task/app.py", Body: []byte(
		"import os\n\ndef handler(event, context):\n    return {'echo': event, 'handler': os.environ['_HANDLER'], 'cwd': os.getcwd(), 'py': os.path.realpath('/usr/bin/python3.11')}\n")})
	return ocitest.Image(t, v1.Config{
		Entrypoint: []string{"/usr/bin/python3.11", "-u", "/var/runtime/bootstrap.py"},
		Cmd:        []string{"app.handler"},
		WorkingDir: "/var/task",
		Env:        []string{"LAMBDA_TASK_ROOT=/var/task", "LAMBDA_RUNTIME_DIR=/var/runtime", "PATH=/usr/local/bin:/usr/bin:/bin"},
	}, ocitest.Layer(t, osEntries...), runtimeLayer, code)
}

func TestImageFunctionPythonLayout(t *testing.T) {
	needSandbox(t)
	reg := ocitest.NewRegistry(t, "", "")
	ref := reg.Push(t, "py/app:v1", pythonImage(t))
	in := start(t, imageFnConfig(t, ref, t.TempDir()))
	r := invoke(t, in, &invokeapi.Request{Payload: []byte(`{"hello":"python"}`)})
	if r.resp.FunctionError != "" {
		t.Fatalf("function error: %s", r.body)
	}
	var got struct {
		Echo    map[string]string `json:"echo"`
		Handler string            `json:"handler"`
		Cwd     string            `json:"cwd"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	if got.Echo["hello"] != "python" || got.Handler != "app.handler" || got.Cwd != "/var/task" {
		t.Fatalf("answer %s", r.body)
	}
}
