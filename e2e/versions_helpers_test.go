package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// versionsGateway is a real `nimbus dev` process serving a spec directory
// ($LATEST) with the local version store the CLI writes (--state-dir /
// NIMBUS_STATE_DIR): published versions, aliases and layers reach it the
// way they reach a developer's.
type versionsGateway struct {
	base     string
	specDir  string
	stateDir string
	nimbus   string // the nimbus CLI binary
	stderr   *lockedBuffer
}

var nimbusBin struct {
	sync.Once
	path string
	err  error
}

// writeTree writes name → content files under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// nimbusOnce builds the nimbus CLI once per test binary (into onceDir,
// which outlives single tests).
func nimbusOnce(t *testing.T) string {
	t.Helper()
	nimbusBin.Do(func() {
		dir, err := onceTempDir("versions-")
		if err != nil {
			return
		}
		path := filepath.Join(dir, "nimbus")
		if out, err := exec.Command("go", "build", "-o", path, "../cmd/nimbus").CombinedOutput(); err != nil {
			nimbusBin.err = fmt.Errorf("go build nimbus: %w\n%s", err, out)
			return
		}
		nimbusBin.path = path
	})
	if nimbusBin.path == "" {
		t.Fatalf("no nimbus binary: %v", nimbusBin.err)
	}
	return nimbusBin.path
}

// startVersionsGateway writes files into a spec dir and runs `nimbus dev`
// on it with SigV4 keys and a version store of its own; it stops the
// process (SIGINT, clean exit expected) when the test ends.
func startVersionsGateway(t *testing.T, files map[string]string) *versionsGateway {
	t.Helper()
	return startVersionsGatewayConf(t, files, "")
}

// startVersionsGatewayConf is startVersionsGateway with extra gateway
// config (HCL appended to the config file).
func startVersionsGatewayConf(t *testing.T, files map[string]string, extraConf string) *versionsGateway {
	t.Helper()
	g := &versionsGateway{specDir: t.TempDir(), stateDir: filepath.Join(t.TempDir(), "state"), nimbus: nimbusOnce(t)}
	writeTree(t, g.specDir, files)
	conf := filepath.Join(t.TempDir(), "gateway.hcl")
	writeTree(t, filepath.Dir(conf), map[string]string{filepath.Base(conf): fmt.Sprintf(`region = %q
account_id = %q
invoke_key = %q
access_key %q {
  secret = %q
}
`, e2eRegion, e2eAccount, e2eInvokeKey, e2eAccessKey, e2eSecretKey) + extraConf})
	dev := exec.Command(g.nimbus, "dev", "--listen", "127.0.0.1:0", "--config", conf, "--state-dir", g.stateDir, "--log-level", "warn", g.specDir)
	dev.Dir = g.specDir
	p := startNimbusProc(t, dev)
	g.base, g.stderr = p.endpoint, p.stderr
	t.Cleanup(func() {
		if err := p.stop(syscall.SIGINT); err != nil {
			t.Errorf("nimbus dev exit on SIGINT: %v\n%s", err, p.stderr)
		}
	})
	return g
}

// cli runs the real nimbus binary against the gateway's state dir and
// endpoint, signing with the gateway's keys.
func (g *versionsGateway) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return g.cliEnv(t, nil, args...)
}

// cliEnv is cli with extra environment (KEY=value, later ones win).
func (g *versionsGateway) cliEnv(t *testing.T, extra []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(g.nimbus, args...)
	cmd.Env = append(os.Environ(), "NIMBUS_STATE_DIR="+g.stateDir, "NIMBUS_ENDPOINT="+g.base,
		"AWS_ACCESS_KEY_ID="+e2eAccessKey, "AWS_SECRET_ACCESS_KEY="+e2eSecretKey, "AWS_REGION="+e2eRegion)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Dir = g.specDir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (g *versionsGateway) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := g.cli(t, args...)
	if err != nil {
		t.Fatalf("nimbus %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (g *versionsGateway) lambda() *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           e2eRegion,
		BaseEndpoint:     aws.String(g.base),
		Credentials:      credentials.NewStaticCredentialsProvider(e2eAccessKey, e2eSecretKey, ""),
		RetryMaxAttempts: 1,
	})
}

// binomialPValue is the exact two-sided p-value of k successes in n trials
// with success probability p: the total probability of every outcome no
// more likely than k.
func binomialPValue(k, n int, p float64) float64 {
	logPMF := func(i int) float64 {
		a, _ := math.Lgamma(float64(n + 1))
		b, _ := math.Lgamma(float64(i + 1))
		c, _ := math.Lgamma(float64(n - i + 1))
		return a - b - c + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p)
	}
	ref := logPMF(k)
	total := 0.0
	for i := 0; i <= n; i++ {
		if lp := logPMF(i); lp <= ref+1e-9 {
			total += math.Exp(lp)
		}
	}
	return math.Min(total, 1)
}

func mustChmod(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// awaitQualifier waits until the gateway does (present) or does not know
// fn:qualifier: nimbus dev reads the version store about once a second.
func (g *versionsGateway) awaitQualifier(t *testing.T, fn, qualifier string, present bool) {
	t.Helper()
	c := g.lambda()
	eventually(t, 20*time.Second, func() bool {
		_, err := c.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String(qualifier)})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Fatalf("GetFunction %s:%s: %v", fn, qualifier, err)
		}
		return (err == nil) == present
	}, fmt.Sprintf("nimbus dev sees %s:%s (present %v)", fn, qualifier, present))
}
