package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/hashicorp/hcl/v2"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
	"github.com/nimbus-fn/nimbus/specs"
)

// TestDevSpecLoaderSurvivesHostileSpecs: what nimbus dev reads on a reload
// answers an error, never a crash or an exhausted machine, for a spec that
// describes a huge computation and for a reader that panics.
func TestDevSpecLoaderSurvivesHostileSpecs(t *testing.T) {
	dir := t.TempDir()
	line3 := `  m = [for a in local.l : [for b in local.l : "${a}${b}"]]`
	p := writeSpecFile(t, dir, "big.hcl", "locals {\n"+
		"  l = split(\",\", \""+strings.Repeat(",", 99_999)+"\")\n"+
		line3+"\n"+
		"}\n"+
		"function \"f\" {\n  runtime = \"provided\"\n  code { dir = \".\" }\n  environment = { N = tostring(length(local.m)) }\n}\n")
	load := devSpecLoader(specs.Load, &specs.Options{})
	f, err := load(dir)
	if f != nil || err == nil {
		t.Fatalf("hostile spec loaded: %v %v", f, err)
	}
	col := strings.Index(line3, `local.l : "`) + 1
	want := fmt.Sprintf("%s:3:%d: error: Spec too costly to evaluate\n", p, col)
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error:\n%s\nwant it to start with:\n%s", err, want)
	}

	panicky := devSpecLoader(func(string, *specs.Options) (*specs.File, hcl.Diagnostics) {
		panic("index out of range")
	}, nil)
	f, err = panicky(filepath.Join(dir, "x.hcl"))
	if f != nil || err == nil || !strings.Contains(err.Error(), "internal error: index out of range") {
		t.Fatalf("panicking reader: %v %v", f, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devRun is a nimbus dev running in this process.
type devRun struct {
	endpoint string
	console  string      // the console URL nimbus dev printed
	stdout   *syncBuffer // everything printed after the endpoints
	stderr   *syncBuffer // the log
}

var (
	invokeAPIRE = regexp.MustCompile(`^Invoke API:\s+(http://\S+)`)
	consoleRE   = regexp.MustCompile(`^console: (http://\S+/console/)$`)
)

// startDev runs `nimbus dev --listen 127.0.0.1:0 ARGS…` in this process
// with environ as its environment, until the test ends.
func startDev(t *testing.T, environ map[string]string, args ...string) *devRun {
	t.Helper()
	pr, pw := io.Pipe()
	d := &devRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	env := &cliEnv{
		stdin:  strings.NewReader(""),
		stdout: pw,
		stderr: d.stderr,
		getenv: func(k string) string { return environ[k] },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, env, append([]string{"--listen", "127.0.0.1:0", "--log-level", "debug"}, args...))
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !strings.Contains(err.Error(), "context canceled") {
				t.Errorf("nimbus dev: %v\n%s", err, d.stderr)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("nimbus dev did not stop within 60s of its context ending\n%s", d.stderr)
		}
	})
	sc := bufio.NewScanner(pr)
	for d.endpoint == "" && sc.Scan() {
		if m := invokeAPIRE.FindStringSubmatch(sc.Text()); m != nil {
			d.endpoint = m[1]
		}
		if m := consoleRE.FindStringSubmatch(sc.Text()); m != nil {
			d.console = m[1]
		}
	}
	go func() { _, _ = io.Copy(d.stdout, pr) }()
	if d.endpoint == "" {
		t.Fatalf("nimbus dev printed no Invoke API endpoint:\n%s", d.stderr)
	}
	return d
}

// invoke calls fn (a name, optionally with ?Qualifier=…) through the dev
// gateway's Invoke API and returns the status, the X-Amz-Function-Error
// header and the body.
func (d *devRun) invoke(t *testing.T, fn, payload string) (int, string, string) {
	t.Helper()
	fn, q, _ := strings.Cut(fn, "?")
	u := d.endpoint + "/2015-03-31/functions/" + fn + "/invocations"
	if q != "" {
		u += "?" + q
	}
	c := &http.Client{Timeout: 90 * time.Second}
	resp, err := c.Post(u, "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke %s: %v\n%s", fn, err, d.stderr)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), string(b)
}

// writeTree writes files (relative path → content) under dir; paths ending
// in "bootstrap" are executable.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Base(name) == "bootstrap" {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not on PATH: the function under test is a python3.12 one")
	}
}

// TestDevRunsALayerFromTheDefaultStateDir: the plain commands of a new
// user, run in a project directory without NIMBUS_STATE_DIR: publish a
// layer into the default (relative) .nimbus/state, start nimbus dev, invoke
// a function that imports code only the layer holds.
func TestDevRunsALayerFromTheDefaultStateDir(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	t.Chdir(dir)
	writeTree(t, dir, map[string]string{
		"nimbus.hcl": `layer "shared" {
  code {
    dir = "layer"
  }
  compatible_runtimes = ["python3.12"]
}

function "py" {
  runtime = "python3.12"
  handler = "app.handler"
  code {
    dir = "py"
  }
  layers = ["shared"]
}
`,
		"layer/python/greet.py": "def hello():\n    return \"hello from the layer\"\n",
		"py/app.py":             "import greet\n\ndef handler(event, context):\n    return {\"msg\": greet.hello()}\n",
	})
	if code, out, errOut := specCLI(t, "", nil, "layer", "publish", "shared"); code != 0 || !strings.Contains(out, "published layer shared version 1") {
		t.Fatalf("layer publish: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, ".nimbus", "state")); err != nil {
		t.Fatalf("the layer did not go to the default state dir: %v", err)
	}
	dev := startDev(t, nil, ".")
	status, fnErr, body := dev.invoke(t, "py", "{}")
	if status != http.StatusOK || fnErr != "" || body != `{"msg": "hello from the layer"}` {
		t.Fatalf("invoke: %d %q %s\n%s", status, fnErr, body, dev.stderr)
	}
}

// TestDevReportsAFailedLaunchToTheCaller: a function naming a layer that
// was never published cannot start; the caller gets Lambda's error with the
// reason at once, not "Rate Exceeded" after the cold-start wait.
func TestDevReportsAFailedLaunchToTheCaller(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"nimbus.hcl": `layer "shared" {
  code {
    dir = "layer"
  }
}

function "py" {
  runtime = "python3.12"
  handler = "app.handler"
  code {
    dir = "py"
  }
  layers = ["shared"]
}
`,
		"layer/python/greet.py": "X = 1\n",
		"py/app.py":             "def handler(event, context):\n    return 1\n",
	})
	dev := startDev(t, map[string]string{envStateDir: filepath.Join(dir, "state")}, dir)
	status, fnErr, body := dev.invoke(t, "py", "{}")
	// 502 with Type Service is ResourceNotReadyException in the error table.
	if status != http.StatusBadGateway || fnErr != "" ||
		!strings.Contains(body, `"Type":"Service"`) ||
		!strings.Contains(body, "no execution environment of py:$LATEST could start: ") ||
		!strings.Contains(body, "layer shared has no published version (nimbus layer publish)") {
		t.Fatalf("invoke: %d %q %s", status, fnErr, body)
	}
}

// TestDevRefusesAnAliasOfAnUnpublishedVersion: an alias a spec declares
// runs the version it names; while that version is not published, nimbus dev
// says so at load time (with the alias' place) and invoking it answers
// ResourceNotFoundException instead of running $LATEST.
func TestDevRefusesAnAliasOfAnUnpublishedVersion(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	spec := `function "py" {
  runtime = "python3.12"
  handler = "app.handler"
  code {
    dir = "."
  }

  alias "live" {
    version = "1"
  }
}
`
	writeTree(t, dir, map[string]string{
		"nimbus.hcl": spec,
		"app.py":     "import os\n\ndef handler(event, context):\n    return {\"version\": os.environ[\"AWS_LAMBDA_FUNCTION_VERSION\"]}\n",
	})
	environ := map[string]string{envStateDir: filepath.Join(dir, "state")}
	dev := startDev(t, environ, dir)
	report := filepath.Join(dir, "nimbus.hcl") + ":8:3: alias live of py names version 1, which is not published here: " +
		"invoking py:live answers ResourceNotFoundException until nimbus publish py creates it\n"
	gatewaytest.Eventually(t, 10*time.Second, func() bool { return strings.Contains(dev.stdout.String(), report) },
		"the report of alias live; stdout:\n%s", dev.stdout)
	if status, _, body := dev.invoke(t, "py?Qualifier=live", "{}"); status != http.StatusNotFound || !strings.Contains(body, "ResourceNotFoundException") && !strings.Contains(body, "Function not found") {
		t.Fatalf("py:live before publishing: %d %s", status, body)
	}
	if status, _, body := dev.invoke(t, "py", "{}"); status != http.StatusOK || body != `{"version": "$LATEST"}` {
		t.Fatalf("py: %d %s", status, body)
	}
	if code, out, errOut := specCLI(t, "", environ, "publish", "py", dir); code != 0 || !strings.Contains(out, "published py version 1") || !strings.Contains(out, "alias live -> 1") {
		t.Fatalf("publish: exit %d\n%s\n%s", code, out, errOut)
	}
	gatewaytest.Eventually(t, 30*time.Second, func() bool {
		status, _, body := dev.invoke(t, "py?Qualifier=live", "{}")
		return status == http.StatusOK && body == `{"version": "1"}`
	}, "py:live runs published version 1")
}

// runtimeLoopGo is a Go function that speaks the Runtime API with the
// standard library only (so it builds without fetching modules) and answers
// every event with answer.
func runtimeLoopGo(answer string) string {
	return `package main

import (
	"io"
	"net/http"
	"os"
	"strings"
)

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	for {
		resp, err := http.Get(api + "next")
		if err != nil {
			os.Exit(1)
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r, err := http.Post(api+id+"/response", "application/json", strings.NewReader(` + "`" + `"` + answer + `"` + "`" + `))
		if err == nil {
			r.Body.Close()
		}
	}
}
`
}

// prebuiltBootstrap is a bootstrap (python, so no build is needed) that
// answers "prebuilt".
const prebuiltBootstrap = `#!/usr/bin/env python3
import os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
    urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data=b'"prebuilt"', method="POST")).read()
`

// TestDevRebuildsAStaleBootstrap: a prebuilt bootstrap newer than the Go
// sources runs (and the log says so); once main.go changes after it, nimbus
// dev builds the sources and runs that instead of the stale bootstrap.
func TestDevRebuildsAStaleBootstrap(t *testing.T) {
	needPython(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH: nimbus dev builds Go functions with it")
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"nimbus.hcl": "function \"gofn\" {\n  runtime = \"provided.al2023\"\n  code {\n    dir = \"fn\"\n  }\n}\n",
		"fn/go.mod":  "module example.com/gofn\n\ngo 1.22\n",
		"fn/main.go": runtimeLoopGo("built v1"),
	})
	// The bootstrap was built after the sources were last edited.
	past := time.Now().Add(-time.Hour)
	for _, n := range []string{"fn/go.mod", "fn/main.go"} {
		if err := os.Chtimes(filepath.Join(dir, n), past, past); err != nil {
			t.Fatal(err)
		}
	}
	writeTree(t, dir, map[string]string{"fn/bootstrap": prebuiltBootstrap})
	dev := startDev(t, map[string]string{envStateDir: filepath.Join(dir, "state")}, dir)
	if status, fnErr, body := dev.invoke(t, "gofn", "{}"); status != http.StatusOK || fnErr != "" || body != `"prebuilt"` {
		t.Fatalf("invoke with a fresh bootstrap: %d %q %s\n%s", status, fnErr, body, dev.stderr)
	}
	if !strings.Contains(dev.stderr.String(), "running the prebuilt bootstrap: function=gofn bootstrap="+filepath.Join(dir, "fn", "bootstrap")) {
		t.Fatalf("the log does not say the prebuilt bootstrap runs:\n%s", dev.stderr)
	}
	// main.go changes after the bootstrap was built.
	writeTree(t, dir, map[string]string{"fn/main.go": runtimeLoopGo("built v2")})
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "fn", "main.go"), future, future); err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, 120*time.Second, func() bool {
		status, _, body := dev.invoke(t, "gofn", "{}")
		return status == http.StatusOK && body == `"built v2"`
	}, "the rebuilt function answers; log:\n%s", dev.stderr)
	if !strings.Contains(dev.stderr.String(), "Go sources are newer than the prebuilt bootstrap; building them instead: function=gofn") {
		t.Fatalf("the log does not say why it built:\n%s", dev.stderr)
	}
}

var instanceAddrRE = regexp.MustCompile(`instance ready: function=py version="\$LATEST" instance=\S+ address=(127\.0\.0\.1:\d+)`)

// TestDevWithAccessKeysGuardsInstances: with access keys but no invoke key,
// a signed invoke through the gateway works and a direct call to the
// instance's endpoint (which skips SigV4) is refused for want of the secret.
func TestDevWithAccessKeysGuardsInstances(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"nimbus.hcl": "function \"py\" {\n  runtime = \"python3.12\"\n  handler = \"app.handler\"\n  code {\n    dir = \".\"\n  }\n}\n",
		"app.py":     "def handler(event, context):\n    return \"ran\"\n",
	})
	conf := filepath.Join(t.TempDir(), "gateway.hcl")
	writeTree(t, filepath.Dir(conf), map[string]string{filepath.Base(conf): "region = \"eu-west-1\"\n\naccess_key \"AKIDDEVTEST\" {\n  secret = \"dev-test-secret-key\"\n}\n"})
	dev := startDev(t, map[string]string{envStateDir: filepath.Join(dir, "state")}, "--config", conf, dir)

	// Unsigned through the gateway: refused.
	if status, _, body := dev.invoke(t, "py", "{}"); status != http.StatusForbidden {
		t.Fatalf("unsigned invoke through the gateway: %d %s", status, body)
	}
	c := lambda.New(lambda.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(dev.endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDDEVTEST", SecretAccessKey: "dev-test-secret-key"}, nil
		}),
	})
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("py"), Payload: []byte("{}")})
	if err != nil || out.FunctionError != nil || string(out.Payload) != `"ran"` {
		t.Fatalf("signed invoke: %v %+v\n%s", err, out, dev.stderr)
	}
	m := instanceAddrRE.FindStringSubmatch(dev.stderr.String())
	if m == nil {
		t.Fatalf("no instance address in the log:\n%s", dev.stderr)
	}
	resp, err := http.Post("http://"+m[1]+invokeapi.PathInvoke, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "ran") {
		t.Fatalf("direct call to the instance without the secret: %d %s", resp.StatusCode, body)
	}
}

// Usage metering under nimbus dev: each invocation is billed at the
// function's memory size × its REPORT's billed duration, and `nimbus usage`
// reports requests and GB-seconds per version, as does /metrics.
func TestDevMetersUsage(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"nimbus.hcl": `function "metered" {
  runtime   = "python3.12"
  handler   = "app.handler"
  memory_mb = 256
  code {
    dir = "."
  }
}
`,
		"app.py": "def handler(event, context):\n    return {'ok': True}\n",
	})
	d := startDev(t, nil, dir)
	billedRE := regexp.MustCompile(`Billed Duration: (\d+) ms`)
	var billedMs int64
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, d.endpoint+"/2015-03-31/functions/metered/invocations", strings.NewReader(`{}`))
		req.Header.Set("X-Amz-Log-Type", "Tail")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tail, _ := base64.StdEncoding.DecodeString(resp.Header.Get("X-Amz-Log-Result"))
		m := billedRE.FindSubmatch(tail)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("invoke: %d, log tail %q", resp.StatusCode, tail)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		billedMs += n
	}
	want := 256.0 / 1024 * float64(billedMs) / 1000
	var out bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	if err := runUsage(context.Background(), env, []string{"--endpoint", d.endpoint, "--since", "2h", "metered"}); err != nil {
		t.Fatalf("nimbus usage: %v\n%s", err, out.String())
	}
	row := regexp.MustCompile(`(?m)^metered\s+\$LATEST\s+3\s+([0-9.]+)\s+0\.000$`).FindStringSubmatch(out.String())
	if row == nil {
		t.Fatalf("nimbus usage printed no row of 3 requests for metered $LATEST:\n%s", out.String())
	}
	if got, _ := strconv.ParseFloat(row[1], 64); math.Abs(got-want) > 0.0006 {
		t.Fatalf("nimbus usage reports %s GB-s, want %.4f (256 MB × %d ms billed):\n%s", row[1], want, billedMs, out.String())
	}
	resp, err := http.Get(d.endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`nimbus_billed_gb_seconds_total\{function="metered",version="\$LATEST"\} ([0-9.e+-]+)`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no nimbus_billed_gb_seconds_total for metered")
	}
	if got, _ := strconv.ParseFloat(string(m[1]), 64); math.Abs(got-want) > 1e-9 {
		t.Fatalf("nimbus_billed_gb_seconds_total = %v, want %v", got, want)
	}
}
