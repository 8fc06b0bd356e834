package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	driverlocal "github.com/nimbus-fn/nimbus/driver/local"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/local"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/specs"
)

// Credentials the local gateway accepts (SigV4 is verified in these tests).
const (
	e2eAccessKey = "AKIDNIMBUSE2E"
	e2eSecretKey = "nimbus-e2e-secret"
	e2eRegion    = "us-east-1"
	e2eAccount   = "123456789012"
)

var e2eInvokeKey = "nimbus-e2e-invoke-key-0123456789"

// launcher runs real instances through driver/local, as nimbus dev does.
type launcher struct {
	local *driverlocal.Launcher

	mu       sync.Mutex
	launches int
	stops    int
}

func (l *launcher) Launch(ctx context.Context, fn *specs.Function, version string) (discovery.Instance, error) {
	timeout, err := time.ParseDuration(fn.Timeout)
	if err != nil {
		return discovery.Instance{}, err
	}
	codeDir := fn.Code.Dir
	if !filepath.IsAbs(codeDir) {
		codeDir = filepath.Join(fn.Dir, codeDir)
	}
	h, err := l.local.Launch(context.WithoutCancel(ctx), &instance.Config{
		Function: fn.Name, Version: version, Runtime: fn.Runtime, Handler: fn.Handler,
		CodeDir: codeDir, MemoryMB: fn.MemoryMB, Timeout: timeout,
		Environments: max(fn.EnvironmentsPerInstance, 1), Env: fn.Environment,
		InvokeSecret: invokeapi.DeriveSecret([]byte(e2eInvokeKey), fn.Name, version),
		Region:       e2eRegion, AccountID: e2eAccount,
	})
	if err != nil {
		return discovery.Instance{}, err
	}
	l.mu.Lock()
	l.launches++
	l.mu.Unlock()
	return discovery.Instance{ID: h.ID, Address: h.Addr, Function: fn.Name, Version: version, Group: discovery.GroupOnDemand}, nil
}

func (l *launcher) Stop(ctx context.Context, id string) error {
	l.mu.Lock()
	l.stops++
	l.mu.Unlock()
	h, ok := l.local.Get(id)
	if !ok {
		return fmt.Errorf("no instance %s", id)
	}
	return h.Stop(ctx)
}

func (l *launcher) running() int { return len(l.local.List()) }

// gateway is a local-mode gateway over real instances.
type gateway struct {
	srv      *server.Server
	base     string
	launcher *launcher
	catalog  *catalog.Local
	specDir  string
}

// startGateway writes spec (HCL) into a temp dir and serves it.
func startGateway(t *testing.T, spec string, tune func(*config.Config)) *gateway {
	t.Helper()
	return startGatewayWith(t, spec, tune, nil)
}

// startGatewayWith is startGateway with a hook on the server's Deps.
func startGatewayWith(t *testing.T, spec string, tune func(*config.Config), tuneDeps func(*server.Deps)) *gateway {
	t.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Name: "e2e", Level: hclog.Warn, Output: os.Stderr})
	cat, dir := specCatalog(t, spec, logger)
	l := &launcher{local: driverlocal.NewLauncher(t.TempDir(), logger)}
	pool := local.New(l, cat, logger)
	cfg := &config.Config{
		Dev: true, Listen: "127.0.0.1:0", Region: e2eRegion, AccountID: e2eAccount,
		InvokeKey:  e2eInvokeKey,
		AccessKeys: []config.AccessKey{{ID: e2eAccessKey, Secret: e2eSecretKey}},
	}
	if tune != nil {
		tune(cfg)
	}
	deps := server.Deps{Catalog: cat, Source: pool, Scaler: pool, Logger: logger}
	if tuneDeps != nil {
		tuneDeps(&deps)
	}
	s, err := server.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	cat.Watch(func(*catalog.Snapshot) { pool.Refresh(context.Background()) })
	go cat.Run(ctx, 50*time.Millisecond)
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		stopCtx, c := context.WithTimeout(context.Background(), 30*time.Second)
		defer c()
		if err := pool.Close(stopCtx); err != nil {
			t.Errorf("stopping instances: %v", err)
		}
	})
	return &gateway{srv: s, base: "http://" + s.Addr(), launcher: l, catalog: cat, specDir: dir}
}

// buildURLStream builds e2e/testdata/urlstream (a lambdaurl function) once.
var urlStreamOnce struct {
	sync.Once
	dir string
	err error
}

func urlStreamDir(t *testing.T) string {
	t.Helper()
	urlStreamOnce.Do(func() {
		dir, err := onceTempDir("urlstream-")
		if err != nil {
			urlStreamOnce.err = err
			return
		}
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(dir, "bootstrap"), "./testdata/urlstream")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			urlStreamOnce.err = fmt.Errorf("go build urlstream: %w\n%s", err, out)
			return
		}
		urlStreamOnce.dir = dir
	})
	if urlStreamOnce.err != nil {
		t.Fatal(urlStreamOnce.err)
	}
	return urlStreamOnce.dir
}

func eventually(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// specCatalog writes spec as nimbus.hcl into a new directory and opens the
// local catalog of that directory, as `nimbus dev` does; it returns the
// catalog and the directory.
func specCatalog(tb testing.TB, spec string, logger hclog.Logger) (*catalog.Local, string) {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nimbus.hcl"), []byte(spec), 0o644); err != nil {
		tb.Fatal(err)
	}
	cat, err := catalog.NewLocal(dir, func(path string) (*specs.File, error) {
		f, diags := specs.Load(path, nil)
		if diags.HasErrors() {
			return nil, hcl.Diagnostics(diags)
		}
		return f, nil
	}, logger)
	if err != nil {
		tb.Fatal(err)
	}
	return cat, dir
}
