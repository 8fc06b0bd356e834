package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// TestNimbusDevBinary runs the README's command — `nimbus dev` in the
// repository root, serving examples/hello-go — as a real process, and calls
// it with `nimbus invoke`, `nimbus urls`, the SDK and the function URL.
func TestNimbusDevBinary(t *testing.T) {
	if _, err := os.Stat("../examples/hello-go/nimbus.hcl"); err != nil {
		t.Skip("examples/hello-go is not in this tree")
	}
	bin := buildNimbus(t)
	dev := exec.Command(bin, "dev", "--listen", "127.0.0.1:0")
	dev.Dir = ".."
	dev.Env = append(os.Environ(), "TMPDIR="+t.TempDir()) // its temp dirs go with the test
	stdout, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	dev.Stderr = &stderr
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- dev.Wait() }()
	defer func() {
		if dev.ProcessState == nil {
			_ = dev.Process.Kill()
		}
	}()

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	invokeRE := regexp.MustCompile(`^Invoke API:\s+(http://\S+)`)
	urlRE := regexp.MustCompile(`^Function hello-go\s+(http://\S+)\s+or\s+(http://\S+)`)
	var endpoint, pathURL string
	deadline := time.After(60 * time.Second)
	for endpoint == "" || pathURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("nimbus dev ended early: %s", stderr.String())
			}
			if m := invokeRE.FindStringSubmatch(l); m != nil {
				endpoint = m[1]
			}
			if m := urlRE.FindStringSubmatch(l); m != nil {
				pathURL = m[2]
			}
		case <-deadline:
			t.Fatalf("nimbus dev printed no endpoints: %s", stderr.String())
		}
	}

	c := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint)})
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("hello-go"), Payload: []byte(`{"name":"e2e"}`)})
	if err != nil || string(out.Payload) != `{"message":"hello, e2e"}` {
		t.Fatalf("SDK invoke through nimbus dev: %v %v (stderr %s)", err, out, stderr.String())
	}
	inv := exec.Command(bin, "invoke", "--endpoint", endpoint, "--payload", `{"name":"cli"}`, "hello-go")
	if b, err := inv.Output(); err != nil || strings.TrimSpace(string(b)) != `{"message":"hello, cli"}` {
		t.Fatalf("nimbus invoke: %v %q", err, b)
	}
	urls := exec.Command(bin, "urls", "--endpoint", endpoint)
	if b, err := urls.Output(); err != nil || !strings.Contains(string(b), pathURL) {
		t.Fatalf("nimbus urls: %v %q (want %s)", err, b, pathURL)
	}
	resp := mustDo(t, mustRequest("GET", pathURL))
	if resp.StatusCode != 200 || string(resp.body) != `{"message":"hello, world"}` {
		t.Fatalf("function URL: %d %s", resp.StatusCode, resp.body)
	}

	if err := dev.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("nimbus dev exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("nimbus dev did not stop on SIGINT")
	}
}

func buildNimbus(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nimbus")
	build := exec.Command("go", "build", "-o", bin, "../cmd/nimbus")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build nimbus: %v\n%s", err, out)
	}
	return bin
}

// TestNimbusGatewayConfigWithSigV4 runs `nimbus gateway --dev --config FILE`
// with access keys in the config: unsigned or wrongly signed calls are
// refused, `nimbus invoke` with the keys in its environment succeeds.
func TestNimbusGatewayConfigWithSigV4(t *testing.T) {
	bin := buildNimbus(t)
	dir := t.TempDir()
	spec := `function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "echo") + `" }
}
`
	if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gateway.conf")
	conf := `listen = "127.0.0.1:0"
region = "eu-west-1"
account_id = "210987654321"
access_key "AKIDCLI" {
  secret = "cli-secret"
}
`
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startNimbusProc(t, exec.Command(bin, "gateway", "--dev", "--config", cfg, "--specs", dir))
	endpoint := gw.endpoint

	invoke := func(key, secret string) (string, error) {
		cmd := exec.Command(bin, "invoke", "--endpoint", endpoint, "--payload", `{"signed":true}`, "echo")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION=eu-west-1")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := invoke("AKIDCLI", "cli-secret"); err != nil || out != `{"signed":true}` {
		t.Fatalf("signed nimbus invoke: %v %q", err, out)
	}
	if out, err := invoke("AKIDCLI", "wrong"); err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Fatalf("wrongly signed invoke: %v %q", err, out)
	}
	resp := mustDo(t, mustRequest("POST", endpoint+"/2015-03-31/functions/echo/invocations"))
	if resp.StatusCode != 403 {
		t.Fatalf("unsigned invoke: %d %s", resp.StatusCode, resp.body)
	}
	if err := gw.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("gateway exit on SIGTERM: %v\n%s", err, gw.stderr)
	}
}

// TestNimbusDevPicksUpEdits edits a running `nimbus dev`'s function: a new
// bootstrap in the code directory, then a spec change, each answered by
// fresh instances without a restart.
func TestNimbusDevPicksUpEdits(t *testing.T) {
	bin := buildNimbus(t)
	dir := t.TempDir()
	copyFile := func(src, dst string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(filepath.Join(testfn.Dir(t, "echo"), "bootstrap"), filepath.Join(dir, "bootstrap"))
	writeSpec := func(memory int) {
		t.Helper()
		spec := "function \"fn\" {\n  runtime = \"provided.al2023\"\n  memory_mb = " + strconv.Itoa(memory) + "\n  code { dir = \".\" }\n}\n"
		if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeSpec(128)
	dev := startNimbusProc(t, exec.Command(bin, "dev", "--listen", "127.0.0.1:0", dir))
	c := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(dev.endpoint)})
	call := func() string {
		out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{"x":1}`)})
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, dev.stderr)
		}
		return string(out.Payload)
	}
	if got := call(); got != `{"x":1}` {
		t.Fatalf("echo answered %q", got)
	}
	// Swap the code: ctxcheck reports the function's memory size.
	copyFile(filepath.Join(testfn.Dir(t, "ctxcheck"), "bootstrap"), filepath.Join(dir, "bootstrap"))
	eventually(t, 20*time.Second, func() bool { return strings.Contains(call(), `"memory_mb":128`) }, "new code served")
	writeSpec(1024)
	eventually(t, 20*time.Second, func() bool { return strings.Contains(call(), `"memory_mb":1024`) }, "new spec served")

	if err := dev.stop(syscall.SIGINT); err != nil {
		t.Fatalf("nimbus dev exit on SIGINT: %v\n%s", err, dev.stderr)
	}
}
