package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
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
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// versionsGateway is a dev-mode gateway whose catalog is the spec directory
// ($LATEST) overlaid with the local version store the CLI writes: what
// `nimbus dev` serves once it is wired to the store.
type versionsGateway struct {
	base     string
	specDir  string
	stateDir string
	store    *versions.Store
	overlay  *versions.Catalog
	nimbus   string // the nimbus CLI binary
}

// layerLauncher runs real instances through driver/local and mounts the
// function's layers from the version store's unpacked bundles.
type layerLauncher struct {
	local *driverlocal.Launcher
	store *versions.Store
	state *versions.Local
}

func (l *layerLauncher) Launch(ctx context.Context, fn *specs.Function, version string) (discovery.Instance, error) {
	timeout, err := time.ParseDuration(fn.Timeout)
	if err != nil {
		return discovery.Instance{}, err
	}
	codeDir := fn.Code.Dir
	if !filepath.IsAbs(codeDir) {
		codeDir = filepath.Join(fn.Dir, codeDir)
	}
	layerDirs, err := l.state.LayerDirs(ctx, l.store, fn)
	if err != nil {
		return discovery.Instance{}, err
	}
	h, err := l.local.Launch(context.WithoutCancel(ctx), &instance.Config{
		Function: fn.Name, Version: version, Runtime: fn.Runtime, Handler: fn.Handler,
		CodeDir: codeDir, LayerDirs: layerDirs, MemoryMB: fn.MemoryMB, Timeout: timeout,
		Environments: max(fn.EnvironmentsPerInstance, 1), Env: fn.Environment,
		InvokeSecret: invokeapi.DeriveSecret([]byte(e2eInvokeKey), fn.Name, version),
		Region:       e2eRegion, AccountID: e2eAccount,
	})
	if err != nil {
		return discovery.Instance{}, err
	}
	return discovery.Instance{ID: h.ID, Address: h.Addr, Function: fn.Name, Version: version, Group: discovery.GroupOnDemand}, nil
}

func (l *layerLauncher) Stop(ctx context.Context, id string) error {
	h, ok := l.local.Get(id)
	if !ok {
		return nil
	}
	return h.Stop(ctx)
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

// nimbusOnce builds the nimbus CLI once per test binary (into a directory
// that outlives single tests).
func nimbusOnce(t *testing.T) string {
	t.Helper()
	nimbusBin.Do(func() {
		dir, err := os.MkdirTemp("", "nimbus-e2e-versions-")
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

func startVersionsGateway(t *testing.T, files map[string]string) *versionsGateway {
	t.Helper()
	g := &versionsGateway{specDir: t.TempDir(), stateDir: filepath.Join(t.TempDir(), "state"), nimbus: nimbusOnce(t)}
	writeTree(t, g.specDir, files)
	logger := hclog.New(&hclog.LoggerOptions{Name: "e2e", Level: hclog.Warn, Output: os.Stderr})
	load := func(path string) (*specs.File, error) {
		f, diags := specs.Load(path, nil)
		if diags.HasErrors() {
			return nil, hcl.Diagnostics(diags)
		}
		return f, nil
	}
	cat, err := catalog.NewLocal(g.specDir, load, logger)
	if err != nil {
		t.Fatal(err)
	}
	state, err := versions.NewLocal(g.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	g.store = versions.New(state, logger)
	g.overlay = versions.NewCatalog(cat, g.store, versions.CatalogConfig{Published: true, Refresh: 50 * time.Millisecond}, logger)
	l := &layerLauncher{local: driverlocal.NewLauncher(t.TempDir(), logger), store: g.store, state: state}
	pool := local.New(l, g.overlay, logger)
	cfg := &config.Config{
		Dev: true, Listen: "127.0.0.1:0", Region: e2eRegion, AccountID: e2eAccount,
		InvokeKey:  e2eInvokeKey,
		AccessKeys: []config.AccessKey{{ID: e2eAccessKey, Secret: e2eSecretKey}},
	}
	s, err := server.New(cfg, server.Deps{Catalog: g.overlay, Source: pool, Scaler: pool, Logger: logger})
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
	go g.overlay.Run(ctx)
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
	g.base = "http://" + s.Addr()
	return g
}

// cli runs the real nimbus binary against the gateway's state dir.
func (g *versionsGateway) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(g.nimbus, args...)
	cmd.Env = append(os.Environ(), "NIMBUS_STATE_DIR="+g.stateDir)
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

// refresh makes the overlay read the store now (the CLI just wrote it).
func (g *versionsGateway) refresh(t *testing.T) {
	t.Helper()
	if err := g.overlay.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
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
