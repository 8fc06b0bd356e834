package plugintest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/zclconf/go-cty/cty"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin"
	basepb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/base"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
)

// Host is one plugin instance as a Nomad client holds it.
type Host struct {
	Client *plugin.Client
	Base   basepb.BasePluginClient
	Driver driverpb.DriverClient
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// BuildDriver builds cmd/nimbus-driver once per test process and returns
// the binary's path (named as the plugin, as in a plugin_dir). The binary
// is kept in a cache shared by test processes (see buildCached).
func BuildDriver(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			buildErr = fmt.Errorf("cannot locate the module")
			return
		}
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		buildPath, buildErr = buildCached(root, "./cmd/nimbus-driver", "nimbus-driver")
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildPath
}

// buildCached builds the main package pkg of the module at root into
// <cache>/<name>-<key>/<name> and returns that path. The key hashes the
// compiled form of every package the binary links (go list -export names
// each by its content hash in the Go build cache), so an unchanged binary
// is linked once for all test processes rather than left behind by each
// one in a temp dir. Processes that race build into private dirs and
// rename into place; the first wins. The cache is <user cache
// dir>/nimbus-testbin (NIMBUS_TESTBIN_CACHE overrides).
//
// autoscaler/harness has the same function: the import rules keep
// driver/** and autoscaler/** from sharing a package.
func buildCached(root, pkg, name string) (string, error) {
	list := exec.Command("go", "list", "-deps", "-export", "-f", "{{.ImportPath}} {{.Export}}", pkg)
	list.Dir = root
	var stderr strings.Builder
	list.Stderr = &stderr
	deps, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("go list %s: %w\n%s", pkg, err, stderr.String())
	}
	sum := sha256.Sum256(append([]byte(runtime.Version()+"\n"), deps...))
	cache := os.Getenv("NIMBUS_TESTBIN_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = filepath.Join(os.TempDir(), "nimbus-"+strconv.Itoa(os.Getuid()))
		}
		cache = filepath.Join(base, "nimbus-testbin")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("creating the test binary cache: %w", err)
	}
	dir := filepath.Join(cache, name+"-"+hex.EncodeToString(sum[:8]))
	bin := filepath.Join(dir, name)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	tmp, err := os.MkdirTemp(cache, "."+name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place
	build := exec.Command("go", "build", "-o", filepath.Join(tmp, name), pkg)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(bin); serr != nil {
			return "", fmt.Errorf("caching %s: %w", name, err)
		}
	}
	return bin, nil
}

// Launch starts the plugin binary as Nomad does (cookie in the environment,
// gRPC only, stderr parsed as hclog JSON into logger) and dispenses both
// services. The process is killed when tb ends unless Detach is called.
func Launch(tb testing.TB, bin string, logger hclog.Logger) *Host {
	tb.Helper()
	return connect(tb, &plugin.ClientConfig{
		HandshakeConfig:  nomadplugin.Handshake,
		Plugins:          nomadplugin.PluginSet(nil),
		Cmd:              exec.Command(bin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
	})
}

// Reattach connects to a running plugin from its reattach record, as a
// restarted Nomad agent does.
func Reattach(tb testing.TB, rc *plugin.ReattachConfig, logger hclog.Logger) *Host {
	tb.Helper()
	return connect(tb, &plugin.ClientConfig{
		HandshakeConfig:  nomadplugin.Handshake,
		Plugins:          nomadplugin.PluginSet(nil),
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
	})
}

// InProcess serves d inside the test process over real go-plugin gRPC (a
// Unix socket) and connects to it.
func InProcess(tb testing.TB, d *nomadplugin.Driver, logger hclog.Logger) *Host {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rcCh := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(nomadplugin.ServeConfig(d, &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: rcCh, CloseCh: closed}))
	var rc *plugin.ReattachConfig
	select {
	case rc = <-rcCh:
	case <-time.After(10 * time.Second):
		cancel()
		tb.Fatal("in-process plugin did not start serving")
	}
	h := Reattach(tb, rc, logger)
	tb.Cleanup(func() {
		cancel()
		<-closed
	})
	return h
}

func connect(tb testing.TB, cfg *plugin.ClientConfig) *Host {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	}
	c := plugin.NewClient(cfg)
	tb.Cleanup(c.Kill)
	rpc, err := c.Client()
	if err != nil {
		tb.Fatalf("connecting to plugin: %v", err)
	}
	b, err := rpc.Dispense(nomadplugin.KeyBase)
	if err != nil {
		tb.Fatalf("dispensing base: %v", err)
	}
	d, err := rpc.Dispense(nomadplugin.KeyDriver)
	if err != nil {
		tb.Fatalf("dispensing driver: %v", err)
	}
	return &Host{Client: c, Base: b.(basepb.BasePluginClient), Driver: d.(driverpb.DriverClient)}
}

// Pid is the plugin process's pid (from go-plugin's reattach record).
func (h *Host) Pid() int { return h.Client.ReattachConfig().Pid }

// Configure plays the agent's start-up: PluginInfo, ConfigSchema, then
// SetConfig with block (the agent's `config {}` as JSON-like values) encoded
// against the advertised schema, with nomad_config set when real is true
// (false is the validation instance's call).
func (h *Host) Configure(ctx context.Context, block map[string]any, real bool) (*basepb.PluginInfoResponse, error) {
	info, err := h.Base.PluginInfo(ctx, &basepb.PluginInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("PluginInfo: %w", err)
	}
	schema, err := h.Base.ConfigSchema(ctx, &basepb.ConfigSchemaRequest{})
	if err != nil {
		return nil, fmt.Errorf("ConfigSchema: %w", err)
	}
	req := &basepb.SetConfigRequest{PluginApiVersion: "v0.1.0"}
	if schema.GetSpec() != nil {
		b, err := EncodeConfig(schema.GetSpec(), block, nil)
		if err != nil {
			return nil, fmt.Errorf("encoding agent config: %w", err)
		}
		req.MsgpackConfig = b
	}
	if real {
		req.NomadConfig = &basepb.NomadConfig{Driver: &basepb.NomadDriverConfig{ClientMinPort: 14000, ClientMaxPort: 14512}}
	}
	if _, err := h.Base.SetConfig(ctx, req); err != nil {
		return nil, fmt.Errorf("SetConfig: %w", err)
	}
	return info, nil
}

// EncodeTask fetches the driver's task schema (TaskConfigSchema, as every
// task runner does) and encodes block against it with the task's env as
// interpolation variables.
func (h *Host) EncodeTask(ctx context.Context, block map[string]any, env map[string]string) ([]byte, error) {
	resp, err := h.Driver.TaskConfigSchema(ctx, &driverpb.TaskConfigSchemaRequest{})
	if err != nil {
		return nil, fmt.Errorf("TaskConfigSchema: %w", err)
	}
	vars := map[string]cty.Value{}
	for k, v := range env {
		vars[k] = cty.StringVal(v)
	}
	return EncodeConfig(resp.GetSpec(), block, vars)
}
