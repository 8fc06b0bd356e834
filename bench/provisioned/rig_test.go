package provisionedbench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	driverlocal "github.com/nimbus-fn/nimbus/driver/local"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/local"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/specs"
)

// launcher adapts driver/local to the dev pool the way nimbus dev does, and
// adds the provisioned group: instances started with
// initialization_type provisioned-concurrency, handed to the pool only once
// every environment finished init.
type launcher struct {
	local   *driverlocal.Launcher
	codeDir string
	// logDir receives the instances' stdout and stderr (appended).
	logDir string
	// initWait bounds a provisioned instance's init.
	initWait time.Duration
}

var (
	_ local.Launcher            = (*launcher)(nil)
	_ local.ProvisionedLauncher = (*launcher)(nil)
)

func (l *launcher) config(fn *specs.Function, version, initType string) (*instance.Config, error) {
	timeout, err := time.ParseDuration(fn.Timeout)
	if err != nil {
		return nil, fmt.Errorf("function %s timeout %q: %w", fn.Name, fn.Timeout, err)
	}
	return &instance.Config{
		Function: fn.Name, Version: version, Runtime: fn.Runtime, Handler: fn.Handler,
		CodeDir: l.codeDir, MemoryMB: fn.MemoryMB, Timeout: timeout,
		Environments:       max(fn.EnvironmentsPerInstance, 1),
		InitializationType: initType,
		Env:                fn.Environment,
		InvokeAddr:         "127.0.0.1:0",
		StdoutPath:         filepath.Join(l.logDir, "stdout.log"),
		StderrPath:         filepath.Join(l.logDir, "stderr.log"),
	}, nil
}

func (l *launcher) Launch(ctx context.Context, fn *specs.Function, version string) (discovery.Instance, error) {
	cfg, err := l.config(fn, version, instance.InitOnDemand)
	if err != nil {
		return discovery.Instance{}, err
	}
	h, err := l.local.Launch(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return discovery.Instance{}, err
	}
	return discovery.Instance{ID: h.ID, Address: h.Addr, Function: fn.Name, Version: version, Group: discovery.GroupOnDemand}, nil
}

func (l *launcher) LaunchProvisioned(ctx context.Context, fn *specs.Function, version string) (discovery.Instance, error) {
	cfg, err := l.config(fn, version, instance.InitProvisioned)
	if err != nil {
		return discovery.Instance{}, err
	}
	h, err := l.local.Launch(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return discovery.Instance{}, err
	}
	deadline := time.Now().Add(l.initWait)
	for {
		st := h.Status()
		if st.Idle >= st.Max {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = h.Stop(context.WithoutCancel(ctx))
			return discovery.Instance{}, fmt.Errorf("provisioned instance %s: %d of %d environments initialised", h.ID, st.Idle, st.Max)
		}
		time.Sleep(5 * time.Millisecond) // polling the instance's own accounting
	}
	return discovery.Instance{ID: h.ID, Address: h.Addr, Function: fn.Name, Version: version, Group: discovery.GroupProvisioned}, nil
}

func (l *launcher) Stop(ctx context.Context, id string) error {
	h, ok := l.local.Get(id)
	if !ok {
		return fmt.Errorf("no instance %s", id)
	}
	return h.Stop(ctx)
}

// snapCatalog serves specs set in memory (set swaps them, as a reload does).
type snapCatalog struct {
	s atomic.Pointer[catalog.Snapshot]
}

func (c *snapCatalog) set(fns ...*specs.Function) {
	c.s.Store(catalog.NewSnapshot(catalog.FromFile(&specs.File{Functions: fns})))
}

func (c *snapCatalog) Function(_ context.Context, name string) (*catalog.Function, error) {
	return c.s.Load().Function(name)
}

func (c *snapCatalog) Functions(context.Context) ([]*catalog.Function, error) {
	return c.s.Load().Functions(), nil
}

// rig is a dev-mode gateway with the pool provisioned before it serves.
type rig struct {
	base     string
	pool     *local.Pool
	catalog  *snapCatalog
	launcher *launcher
	server   *server.Server
	httpc    *http.Client
	// provisionTook is how long the load-time Provision took.
	provisionTook time.Duration
}

// slowFn is a slowinit function spec; provisioned 0 means none.
func slowFn(name string, envsPerInstance, provisioned int) *specs.Function {
	fn := &specs.Function{Name: name, Runtime: "provided.al2023", Timeout: "30s", MemoryMB: 128,
		EnvironmentsPerInstance: envsPerInstance}
	if provisioned > 0 {
		fn.Provisioned = &specs.ProvisionedConcurrency{Min: provisioned, Max: provisioned, TargetUtilization: 0.7}
	}
	return fn
}

func newRig(tb testing.TB, fns ...*specs.Function) *rig {
	tb.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Name: "provisionedbench", Level: hclog.Error})
	l := &launcher{local: driverlocal.NewLauncher(tb.TempDir(), logger), codeDir: testfn.Dir(tb, "slowinit"),
		logDir: tb.TempDir(), initWait: time.Minute}
	cat := &snapCatalog{}
	cat.set(fns...)
	pool := local.New(l, cat, logger)
	ctx, cancel := context.WithCancel(context.Background())
	// Load time: provisioned instances are up before the gateway serves.
	start := time.Now()
	if err := pool.Provision(ctx); err != nil {
		cancel()
		tb.Fatal(err)
	}
	provisionTook := time.Since(start)
	s, err := server.New(&config.Config{Dev: true, Listen: "127.0.0.1:0", ShutdownGrace: "5s"},
		server.Deps{Catalog: cat, Source: pool, Scaler: pool, Logger: logger})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		cancel()
		tb.Fatal(err)
	}
	served := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(served) }()
	tb.Cleanup(func() {
		cancel()
		<-served
		stopCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
		defer stop()
		if err := pool.Close(stopCtx); err != nil {
			tb.Errorf("closing the pool: %v", err)
		}
	})
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	return &rig{base: "http://" + s.Addr(), pool: pool, catalog: cat, launcher: l, server: s, httpc: &http.Client{Transport: tr},
		provisionTook: provisionTook}
}

// report is slowinit's answer.
type report struct {
	InitializationType string `json:"initialization_type"`
	PID                int    `json:"pid"`
	Invocations        int    `json:"invocations"`
	InitMs             int    `json:"init_ms"`
}

// answer is one invocation through the gateway's Invoke API.
type answer struct {
	status int
	report report
	// logTail is the decoded X-Amz-Log-Result (the invocation's log tail
	// with its REPORT line).
	logTail string
	body    string
}

// invoke calls fn through the Invoke API with LogType Tail.
func (r *rig) invoke(fn string, event any) (answer, error) {
	b, err := json.Marshal(event)
	if err != nil {
		return answer{}, err
	}
	req, err := http.NewRequest(http.MethodPost, r.base+"/2015-03-31/functions/"+fn+"/invocations", bytes.NewReader(b))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("X-Amz-Log-Type", "Tail")
	resp, err := r.httpc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, body: string(body)}
	if t := resp.Header.Get("X-Amz-Log-Result"); t != "" {
		dec, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return a, fmt.Errorf("log result: %w", err)
		}
		a.logTail = string(dec)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		return a, fmt.Errorf("invoke %s: status %d, function error %q: %s", fn, resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), body)
	}
	if err := json.Unmarshal(body, &a.report); err != nil {
		return a, fmt.Errorf("decoding %s: %w", body, err)
	}
	return a, nil
}

// counter reads one function's counter from the gateway's registry (0 when
// it has no sample yet).
func (r *rig) counter(tb testing.TB, name, fn string) float64 {
	tb.Helper()
	fams, err := r.server.Metrics().Registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	total := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "function" && l.GetValue() == fn {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// hasInitDuration reports whether a log tail's REPORT line carries an Init
// Duration (Lambda prints it only for invocations that waited for init).
func hasInitDuration(tail string) bool {
	for _, line := range strings.Split(tail, "\n") {
		if strings.HasPrefix(line, "REPORT ") && strings.Contains(line, "Init Duration") {
			return true
		}
	}
	return false
}

// handle is the driver's handle of a pool instance.
func (r *rig) handle(tb testing.TB, id string) *driverlocal.Handle {
	tb.Helper()
	h, ok := r.launcher.local.Get(id)
	if !ok {
		tb.Fatalf("no instance %s", id)
	}
	return h
}

func eventually(tb testing.TB, within time.Duration, cond func() bool, what string) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
