package instancebench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

const (
	warmup   = 100
	samples  = 2000
	colds    = 10
	payload  = `{"message":"hello from the benchmark","n":42}`
	childEnv = "NIMBUS_BENCH_INSTANCE_CONFIG"
)

// The benchmark re-executes its own binary as the instance process.
func init() {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(runChild(path))
	}
}

func runChild(path string) int {
	cfg, err := instance.LoadConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// The parent closes our stdin to stop us.
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := instance.Run(ctx, cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr})); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is an instance process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startChild(tb testing.TB, cfg *instance.Config) *child {
	tb.Helper()
	dir := tb.TempDir()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.ReadyFile = filepath.Join(dir, "ready")
	cfg.StdoutPath = filepath.Join(dir, "stdout.log")
	cfg.StderrPath = filepath.Join(dir, "stderr.log")
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+cfgPath)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	tb.Cleanup(c.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(cfg.ReadyFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			c.addr = string(bytes.TrimSpace(b))
			return c
		}
		if time.Now().After(deadline) {
			tb.Fatal("instance process did not become ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// rssMB is a process's resident set size from /proc.
func rssMB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// stats are latencies of sequential calls by one client.
type stats struct {
	p50, p99 time.Duration
	perSec   float64
}

// measure runs call warmup times, then samples times, sequentially.
func measure(call func() error) (stats, error) {
	for i := 0; i < warmup; i++ {
		if err := call(); err != nil {
			return stats{}, err
		}
	}
	lat := make([]time.Duration, samples)
	start := time.Now()
	for i := range lat {
		t0 := time.Now()
		if err := call(); err != nil {
			return stats{}, err
		}
		lat[i] = time.Since(t0)
	}
	total := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return stats{p50: lat[len(lat)/2], p99: lat[len(lat)*99/100], perSec: float64(samples) / total.Seconds()}, nil
}

func echoConfig(tb testing.TB) *instance.Config {
	return &instance.Config{Function: "echo", Runtime: "provided.al2023", CodeDir: testfn.Dir(tb, "echo"), Timeout: 10 * time.Second, InvokeSecret: "bench"}
}

func instanceCall(addr string) func() error {
	c := &invokeapi.Client{Secret: "bench"}
	return func() error {
		resp, err := c.Invoke(context.Background(), addr, &invokeapi.Request{Payload: []byte(payload)})
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != payload {
			return fmt.Errorf("echo answered %q: %v", b, err)
		}
		return nil
	}
}

func httpCall(client *http.Client, url string) func() error {
	return func() error {
		resp, err := client.Post(url, "application/json", strings.NewReader(payload))
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != payload {
			return fmt.Errorf("answered %d %q: %v", resp.StatusCode, b, err)
		}
		return nil
	}
}

// floor is an echo server behind httputil.ReverseProxy, both on loopback.
func floor(tb testing.TB) string {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.Copy(w, r.Body)
	}))
	tb.Cleanup(echo.Close)
	u, _ := url.Parse(echo.URL)
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	tb.Cleanup(proxy.Close)
	return proxy.URL
}

// buildRIE builds the pinned emulator from tools/rie into a temp dir.
func buildRIE(tb testing.TB) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	mod := filepath.Join(filepath.Dir(file), "..", "..", "tools", "rie")
	out := filepath.Join(tb.TempDir(), "aws-lambda-rie")
	cmd := exec.Command("go", "build", "-o", out, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building aws-lambda-rie in %s: %w\n%s", mod, err, b)
	}
	return out, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startRIE runs the emulator with the echo bootstrap and returns its invoke URL.
func startRIE(tb testing.TB, rie, codeDir string) (string, error) {
	addr, err := freePort()
	if err != nil {
		return "", err
	}
	apiAddr, err := freePort()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr, filepath.Join(codeDir, "bootstrap"))
	cmd.Dir = codeDir
	cmd.Env = append(os.Environ(), "AWS_LAMBDA_FUNCTION_TIMEOUT=10", "LOG_LEVEL=error")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return "", err
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr + "/2015-03-31/functions/function/invocations", nil
		}
		if time.Now().After(deadline) {
			return "", errors.New("aws-lambda-rie did not listen")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// coldStarts launches fresh instances (in-process) and measures spawn →
// first response against the init duration the instance reports.
func coldStarts(tb testing.TB) (total, initDur time.Duration, err error) {
	var totals, inits []time.Duration
	for i := 0; i < colds; i++ {
		cfg := echoConfig(tb)
		cfg.StateDir = tb.TempDir()
		cfg.StdoutPath = filepath.Join(cfg.StateDir, "stdout.log")
		in, err := instance.New(cfg, hclog.NewNullLogger())
		if err != nil {
			return 0, 0, err
		}
		if err := in.Start(context.Background()); err != nil {
			return 0, 0, err
		}
		c := &invokeapi.Client{Secret: "bench"}
		t0 := time.Now()
		resp, err := c.Invoke(context.Background(), in.Addr(), &invokeapi.Request{Payload: []byte(payload)})
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			totals = append(totals, time.Since(t0))
			inits = append(inits, resp.Report().InitDuration)
		}
		_ = in.Stop(context.Background())
		if err != nil {
			return 0, 0, err
		}
	}
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	return med(totals), med(inits), nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

// BenchmarkTable prints the comparison table; it measures a fixed number of
// calls whatever b.N is (make bench runs it with -benchtime=1x).
func BenchmarkTable(b *testing.B) {
	for i := 0; i < b.N; i++ {
		table(b)
	}
}

func table(b *testing.B) {
	type row struct {
		name string
		s    stats
		note string
	}
	var rows []row

	fl, err := measure(httpCall(&http.Client{}, floor(b)))
	if err != nil {
		b.Fatal(err)
	}
	rows = append(rows, row{name: "floor: ReverseProxy → loopback echo", s: fl})

	ch := startChild(b, echoConfig(b))
	in, err := measure(instanceCall(ch.addr))
	if err != nil {
		b.Fatal(err)
	}
	rss := rssMB(ch.cmd.Process.Pid)
	rows = append(rows, row{name: "nimbus instance (echo, aws-lambda-go)", s: in})

	if rie, err := buildRIE(b); err != nil {
		rows = append(rows, row{name: "aws-lambda-rie (same bootstrap)", note: "skipped: " + strings.SplitN(err.Error(), "\n", 2)[0]})
	} else if u, err := startRIE(b, rie, testfn.Dir(b, "echo")); err != nil {
		rows = append(rows, row{name: "aws-lambda-rie (same bootstrap)", note: "skipped: " + err.Error()})
	} else if s, err := measure(httpCall(&http.Client{}, u)); err != nil {
		rows = append(rows, row{name: "aws-lambda-rie (same bootstrap)", note: "skipped: " + err.Error()})
	} else {
		rows = append(rows, row{name: "aws-lambda-rie (same bootstrap)", s: s})
	}

	cold, initDur, err := coldStarts(b)
	if err != nil {
		b.Fatal(err)
	}

	var out strings.Builder
	fmt.Fprintf(&out, "\nwarm invoke, one client, %d sequential calls after %d warm-up (%s, %d CPUs)\n", samples, warmup, runtime.Version(), runtime.NumCPU())
	fmt.Fprintf(&out, "%-40s %12s %12s %10s %12s\n", "path", "p50", "p99", "req/s", "p50 / floor")
	for _, r := range rows {
		if r.note != "" {
			fmt.Fprintf(&out, "%-40s %s\n", r.name, r.note)
			continue
		}
		fmt.Fprintf(&out, "%-40s %12s %12s %10.0f %11.2fx\n", r.name, ms(r.s.p50), ms(r.s.p99), r.s.perSec, float64(r.s.p50)/float64(fl.p50))
	}
	fmt.Fprintf(&out, "cold start (median of %d): spawn → first response %s; function init (spawn → first /next) %s; platform overhead %s\n",
		colds, ms(cold), ms(initDur), ms(cold-initDur))
	fmt.Fprintf(&out, "instance process RSS after %d invocations: %.1f MB (bootstrap excluded)\n", warmup+samples, rss)
	fmt.Print(out.String())
	b.ReportMetric(float64(in.p50)/float64(time.Microsecond), "instance-p50-µs")
	b.ReportMetric(float64(in.p50)/float64(fl.p50), "instance/floor-p50")
}

// BenchmarkInstanceInvoke is one warm invoke through an instance process.
func BenchmarkInstanceInvoke(b *testing.B) {
	ch := startChild(b, echoConfig(b))
	call := instanceCall(ch.addr)
	if err := call(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloorProxy is one call through ReverseProxy to a loopback echo.
func BenchmarkFloorProxy(b *testing.B) {
	call := httpCall(&http.Client{}, floor(b))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
}
