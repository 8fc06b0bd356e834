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
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

const (
	warmup  = 200
	samples = 3000
	// rounds interleaves the paths: each measures samples/rounds calls per
	// round, so background load on a shared machine hits every path alike.
	rounds = 6
	colds  = 10
	// coldGap is the idle time before each cold start: a cold start follows
	// idleness, and some kernel costs (a cgroup v1 migration's RCU grace
	// period) are only paid after a quiet spell.
	coldGap = 250 * time.Millisecond
	payload = `{"message":"hello from the benchmark","n":42}`

	// roleEnv makes the test binary one of the benchmark's processes.
	roleEnv   = "NIMBUS_BENCH_ROLE"
	configEnv = "NIMBUS_BENCH_INSTANCE_CONFIG"
	addrEnv   = "NIMBUS_BENCH_ADDR_FILE"
	targetEnv = "NIMBUS_BENCH_PROXY_TARGET"
	// ProfileEnv, when set to a path prefix, makes the instance process
	// write CPU (<prefix>.cpu), mutex, block and allocation profiles of its
	// whole life: NIMBUS_BENCH_PROFILE=/tmp/inst go test -bench=InstanceInvoke ./bench/instance/
	profileEnv = "NIMBUS_BENCH_PROFILE"
)

// The benchmark re-executes its own binary as the instance process, as a
// minimal Go runtime (the bootstrap of the "raw runtime" rows) and as a
// loopback echo server.
func init() {
	switch os.Getenv(roleEnv) {
	case "instance":
		os.Exit(runInstance(os.Getenv(configEnv)))
	case "runtime":
		os.Exit(runRawRuntime())
	case "echo":
		os.Exit(serve(os.Getenv(addrEnv), http.HandlerFunc(echoHandler)))
	case "proxy":
		u, err := url.Parse(os.Getenv(targetEnv))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(serve(os.Getenv(addrEnv), httputil.NewSingleHostReverseProxy(u)))
	}
}

func runInstance(path string) int {
	cfg, err := instance.LoadConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if prefix := os.Getenv(profileEnv); prefix != "" {
		stop, err := startProfiles(prefix)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stop()
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

func startProfiles(prefix string) (stop func(), err error) {
	f, err := os.Create(prefix + ".cpu")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		for _, name := range []string{"mutex", "block", "allocs"} {
			if g, err := os.Create(prefix + "." + name); err == nil {
				_ = pprof.Lookup(name).WriteTo(g, 0)
				g.Close()
			}
		}
	}, nil
}

// runRawRuntime is the least a runtime can do: GET /next, POST the event
// back as the response, over one keep-alive connection. Through it the
// table shows the instance's own overhead without aws-lambda-go's.
func runRawRuntime() int {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	c := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, DisableCompression: true}}
	for {
		resp, err := c.Get(base + "next")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ev, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "next:", resp.Status, err)
			return 1
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		resp, err = c.Post(base+id+"/response", "application/json", bytes.NewReader(ev))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			fmt.Fprintln(os.Stderr, "response:", resp.Status)
			return 1
		}
	}
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.Copy(w, r.Body)
}

// serve runs h on loopback in a process of its own (the out-of-process
// floors' echo and proxy) until stdin closes.
func serve(addrFile string, h http.Handler) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	_ = http.Serve(ln, h)
	return 1
}

// proc is a benchmark process (the test binary in a role).
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// startProc runs the test binary in role with env and waits for it to
// write its address to addrFile.
func startProc(tb testing.TB, role, addrFile string, env ...string) *proc {
	tb.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role, addrEnv+"="+addrFile), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: stdin}
	tb.Cleanup(p.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			p.addr = string(bytes.TrimSpace(b))
			return p
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s process did not become ready", role)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startInstance runs an instance process for cfg.
func startInstance(tb testing.TB, cfg *instance.Config) *proc {
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
	return startProc(tb, "instance", cfg.ReadyFile, configEnv+"="+cfgPath)
}

func (p *proc) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// memory is a process's resident set from /proc/<pid>/status, in MB:
// total, anonymous (its own heap, stacks and runtime data) and file-backed
// (pages of its executable, shared with every process of the same binary).
type memory struct{ rss, anon, file float64 }

func memoryOf(pid int) memory {
	var m memory
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			m.rss = kb / 1024
		case "RssAnon":
			m.anon = kb / 1024
		case "RssFile":
			m.file = kb / 1024
		}
	}
	return m
}

// stats are latencies of sequential calls by one client.
type stats struct {
	p50, p99 time.Duration
	perSec   float64
	cpuPer   time.Duration // platform process CPU per call; 0 if not measured
}

// path is one way to get the echo answered.
type path struct {
	name string
	call func() error
	note string // set when the path could not run
	lat  []time.Duration
	busy time.Duration // wall time spent in measured calls
	// pid, when set, is the platform process (instance, emulator) whose
	// CPU time the calls cost; cpu accumulates it.
	pid int
	cpu time.Duration
}

// cpuTime is a process's user+system CPU time (all its threads, living
// and gone) from /proc/<pid>/stat, in clock ticks of 10 ms.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	// After ") ": state(3) ... utime(14) stime(15), counted from field 3.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// measure warms every path up, then runs rounds of sequential calls,
// visiting the paths in turn each round.
func measure(paths []*path) error {
	for _, p := range paths {
		if p.note != "" {
			continue
		}
		for i := 0; i < warmup; i++ {
			if err := p.call(); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
	}
	for r := 0; r < rounds; r++ {
		for _, p := range paths {
			if p.note != "" {
				continue
			}
			var cpu0 time.Duration
			if p.pid != 0 {
				cpu0 = cpuTime(p.pid)
			}
			start := time.Now()
			for i := 0; i < samples/rounds; i++ {
				t0 := time.Now()
				if err := p.call(); err != nil {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				p.lat = append(p.lat, time.Since(t0))
			}
			p.busy += time.Since(start)
			if p.pid != 0 {
				p.cpu += cpuTime(p.pid) - cpu0
			}
		}
	}
	return nil
}

func (p *path) stats() stats {
	lat := append([]time.Duration(nil), p.lat...)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return stats{p50: lat[len(lat)/2], p99: lat[len(lat)*99/100], perSec: float64(len(lat)) / p.busy.Seconds(),
		cpuPer: p.cpu / time.Duration(len(lat))}
}

func echoConfig(tb testing.TB) *instance.Config {
	return &instance.Config{Function: "echo", Runtime: "provided.al2023", CodeDir: testfn.Dir(tb, "echo"), Timeout: 10 * time.Second, InvokeSecret: "bench"}
}

// rawRuntimeDir is a code dir whose bootstrap is this test binary in the
// "runtime" role.
func rawRuntimeDir(tb testing.TB) string {
	dir := tb.TempDir()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	// A copy inside the code dir: an isolated environment sees only that.
	b, err := os.ReadFile(exe)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runtime"), b, 0o755); err != nil {
		tb.Fatal(err)
	}
	script := "#!/bin/sh\n" + roleEnv + "=runtime exec \"$(dirname \"$0\")/runtime\"\n"
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(script), 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
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

// proxyTo serves httputil.ReverseProxy to target on loopback.
func proxyTo(tb testing.TB, target string) string {
	u, _ := url.Parse(target)
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	tb.Cleanup(proxy.Close)
	return proxy.URL
}

// floor is an echo server behind httputil.ReverseProxy, both on loopback
// and in this process.
func floor(tb testing.TB) string {
	echo := httptest.NewServer(http.HandlerFunc(echoHandler))
	tb.Cleanup(echo.Close)
	return proxyTo(tb, echo.URL)
}

// floorProcess is the floor with the echo in a process of its own: what
// crossing a process boundary adds to the same two hops. With
// proxyProcess the proxy runs in a third process too: the same process
// boundaries as the instance path (caller → instance → function).
func floorProcess(tb testing.TB, proxyProcess bool) (url string, proxyPid int) {
	echo := startProc(tb, "echo", filepath.Join(tb.TempDir(), "addr"))
	if !proxyProcess {
		return proxyTo(tb, "http://"+echo.addr), 0
	}
	proxy := startProc(tb, "proxy", filepath.Join(tb.TempDir(), "addr"), targetEnv+"=http://"+echo.addr)
	return "http://" + proxy.addr, proxy.cmd.Process.Pid
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

// startRIE runs the emulator with codeDir's bootstrap and returns its invoke URL.
func startRIE(tb testing.TB, rie, codeDir string) (string, int, error) {
	addr, err := freePort()
	if err != nil {
		return "", 0, err
	}
	apiAddr, err := freePort()
	if err != nil {
		return "", 0, err
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr, filepath.Join(codeDir, "bootstrap"))
	cmd.Dir = codeDir
	cmd.Env = append(os.Environ(), "AWS_LAMBDA_FUNCTION_TIMEOUT=10", "LOG_LEVEL=error")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr + "/2015-03-31/functions/function/invocations", cmd.Process.Pid, nil
		}
		if time.Now().After(deadline) {
			return "", 0, errors.New("aws-lambda-rie did not listen")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// coldResult is the median cold start of one kind of environment.
type coldResult struct{ total, initDur, startup time.Duration }

// coldStarts launches fresh instances (in-process) and measures spawn →
// first response against the init duration the instance reports, for
// unisolated and (where the host allows) sandboxed environments,
// interleaved so both see the same machine.
func coldStarts(tb testing.TB) (plain, sandboxed coldResult, isolated bool, err error) {
	var totals, inits, startups [2][]time.Duration
	for i := 0; i < colds; i++ {
		for mode := 0; mode < 2; mode++ {
			time.Sleep(coldGap)
			cfg := echoConfig(tb)
			cfg.StateDir = tb.TempDir()
			cfg.StdoutPath = filepath.Join(cfg.StateDir, "stdout.log")
			cfg.Isolation.Disabled = mode == 0
			s0 := time.Now()
			in, err := instance.New(cfg, hclog.NewNullLogger())
			if err != nil {
				return plain, sandboxed, false, err
			}
			if err := in.Start(context.Background()); err != nil {
				return plain, sandboxed, false, err
			}
			if mode == 1 {
				isolated = in.Isolated()
			}
			startups[mode] = append(startups[mode], time.Since(s0))
			c := &invokeapi.Client{Secret: "bench"}
			t0 := time.Now()
			resp, err := c.Invoke(context.Background(), in.Addr(), &invokeapi.Request{Payload: []byte(payload)})
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				totals[mode] = append(totals[mode], time.Since(t0))
				inits[mode] = append(inits[mode], resp.Report().InitDuration)
			}
			_ = in.Stop(context.Background())
			if err != nil {
				return plain, sandboxed, false, err
			}
		}
	}
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	r := func(m int) coldResult { return coldResult{med(totals[m]), med(inits[m]), med(startups[m])} }
	return r(0), r(1), isolated, nil
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
	fl := &path{name: "floor: ReverseProxy → loopback echo", call: httpCall(&http.Client{}, floor(b))}
	flpURL, _ := floorProcess(b, false)
	flp := &path{name: "floor, echo in its own process", call: httpCall(&http.Client{}, flpURL)}
	flppURL, proxyPid := floorProcess(b, true)
	flpp := &path{name: "floor, proxy and echo own processes", call: httpCall(&http.Client{}, flppURL), pid: proxyPid}
	inst := startInstance(b, echoConfig(b))
	in := &path{name: "nimbus instance, aws-lambda-go echo", call: instanceCall(inst.addr), pid: inst.cmd.Process.Pid}
	plainCfg := echoConfig(b)
	plainCfg.Isolation.Disabled = true
	plainInst := startInstance(b, plainCfg)
	plain := &path{name: "nimbus instance, unisolated", call: instanceCall(plainInst.addr), pid: plainInst.cmd.Process.Pid}
	rawCfg := echoConfig(b)
	rawCfg.CodeDir = rawRuntimeDir(b)
	rawInst := startInstance(b, rawCfg)
	raw := &path{name: "nimbus instance, raw Go runtime loop", call: instanceCall(rawInst.addr), pid: rawInst.cmd.Process.Pid}
	rie := &path{name: "aws-lambda-rie, aws-lambda-go echo"}
	if bin, err := buildRIE(b); err != nil {
		rie.note = "skipped: " + strings.SplitN(err.Error(), "\n", 2)[0]
	} else if u, pid, err := startRIE(b, bin, testfn.Dir(b, "echo")); err != nil {
		rie.note = "skipped: " + err.Error()
	} else {
		rie.call, rie.pid = httpCall(&http.Client{}, u), pid
	}
	// The same sandboxed echo with network "none": its Runtime API
	// listener lives in the environment's own network namespace.
	netNone := &path{name: "nimbus instance, network none"}
	if missing := sandbox.Missing(); len(missing) > 0 {
		netNone.note = "skipped: no sandbox here (" + strings.Join(missing, "; ") + ")"
	} else {
		noneCfg := echoConfig(b)
		noneCfg.Network = instance.NetworkNone
		noneInst := startInstance(b, noneCfg)
		netNone.call, netNone.pid = instanceCall(noneInst.addr), noneInst.cmd.Process.Pid
	}
	paths := []*path{fl, flp, flpp, in, netNone, plain, raw, rie}
	if err := measure(paths); err != nil {
		b.Fatal(err)
	}
	mem := memoryOf(inst.cmd.Process.Pid)

	cold, coldSbx, isolated, err := coldStarts(b)
	if err != nil {
		b.Fatal(err)
	}

	base := fl.stats()
	var out strings.Builder
	fmt.Fprintf(&out, "\nwarm invoke, one client, %d sequential calls per path after %d warm-up, in %d interleaved rounds (%s, %d CPUs)\n",
		samples, warmup, rounds, runtime.Version(), runtime.NumCPU())
	fmt.Fprintf(&out, "%-40s %10s %10s %8s %12s %14s\n", "path", "p50", "p99", "req/s", "p50 / floor", "platform CPU")
	var inStats stats
	for _, p := range paths {
		if p.note != "" {
			fmt.Fprintf(&out, "%-40s %s\n", p.name, p.note)
			continue
		}
		s := p.stats()
		if p == in {
			inStats = s
		}
		cpu := "-"
		if p.pid != 0 {
			cpu = fmt.Sprintf("%.0f µs/call", float64(s.cpuPer)/float64(time.Microsecond))
		}
		fmt.Fprintf(&out, "%-40s %10s %10s %8.0f %11.2fx %14s\n", p.name, ms(s.p50), ms(s.p99), s.perSec, float64(s.p50)/float64(base.p50), cpu)
	}
	for _, c := range []struct {
		name string
		r    coldResult
	}{{"unisolated", cold}, {"sandboxed", coldSbx}} {
		if c.name == "sandboxed" && !isolated {
			fmt.Fprintf(&out, "cold start, sandboxed: skipped (this host cannot isolate environments)\n")
			continue
		}
		fmt.Fprintf(&out, "cold start, %s (median of %d, each after %s idle): spawn → first response %s; init (spawn → first /next, sandbox setup included) %s; platform overhead %s; instance New+Start before it %s\n",
			c.name, colds, coldGap, ms(c.r.total), ms(c.r.initDur), ms(c.r.total-c.r.initDur), ms(c.r.startup))
	}
	if isolated {
		fmt.Fprintf(&out, "sandbox cost at cold start (p50 spawn → first response, sandboxed − unisolated, the function's own init the same): %s\n", ms(coldSbx.total-cold.total))
	}
	fmt.Fprintf(&out, "instance process RSS after %d invocations: %.1f MB = %.1f MB anonymous + %.1f MB executable pages (bootstrap excluded; the executable here is the test binary)\n",
		warmup+samples, mem.rss, mem.anon, mem.file)
	fmt.Print(out.String())
	b.ReportMetric(float64(inStats.p50)/float64(time.Microsecond), "instance-p50-µs")
	b.ReportMetric(float64(inStats.p50)/float64(base.p50), "instance/floor-p50")
}

// BenchmarkColdStart prints only the table's cold start lines: spawn →
// first response with and without the sandbox, interleaved.
func BenchmarkColdStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		plain, sbx, isolated, err := coldStarts(b)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("\ncold start p50 of %d: unisolated %s (init %s), sandboxed %s (init %s, isolated=%v): sandbox cost %s\n",
			colds, ms(plain.total), ms(plain.initDur), ms(sbx.total), ms(sbx.initDur), isolated, ms(sbx.total-plain.total))
	}
}

// BenchmarkInstanceInvoke is one warm invoke through an instance process
// (set NIMBUS_BENCH_PROFILE to profile that process).
func BenchmarkInstanceInvoke(b *testing.B) {
	benchInstance(b, echoConfig(b))
}

// BenchmarkInstanceRawRuntime is one warm invoke through an instance
// process whose runtime is the minimal Go loop.
func BenchmarkInstanceRawRuntime(b *testing.B) {
	cfg := echoConfig(b)
	cfg.CodeDir = rawRuntimeDir(b)
	benchInstance(b, cfg)
}

func benchInstance(b *testing.B, cfg *instance.Config) {
	p := startInstance(b, cfg)
	call := instanceCall(p.addr)
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
