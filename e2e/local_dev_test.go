package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// TestNimbusDevBinary runs the README's command — `nimbus dev` in the
// repository root, serving examples/hello-go — as a real process, and calls
// it with `nimbus invoke`, `nimbus urls`, the SDK and the function URL.
func TestNimbusDevBinary(t *testing.T) {
	if _, err := os.Stat("../examples/hello-go/nimbus.hcl"); err != nil {
		t.Skip("examples/hello-go is not in this tree")
	}
	bin := filepath.Join(t.TempDir(), "nimbus")
	build := exec.Command("go", "build", "-o", bin, "../cmd/nimbus")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build nimbus: %v\n%s", err, out)
	}
	dev := exec.Command(bin, "dev", "--listen", "127.0.0.1:0")
	dev.Dir = ".."
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
