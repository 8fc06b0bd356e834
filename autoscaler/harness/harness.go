package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/nimbus-fn/nimbus/autoscaler/plugin"
	"github.com/nimbus-fn/nimbus/autoscaler/sdk"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Build compiles cmd/<name> of this module once per process and returns the
// binary's path, named <name> as in the agent's plugin_dir. The binary is
// kept in a cache shared by test processes (see buildCached).
func Build(name string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("locating the module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the nimbus module (go env GOMOD = %q)", gomod)
	}
	path, err := buildCached(filepath.Dir(gomod), "./cmd/"+name, name)
	if err != nil {
		return "", err
	}
	built[name] = path
	return path, nil
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
// driver/nomadplugin/plugintest has the same function: the import rules
// keep autoscaler/** and driver/** from sharing a package.
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

// MustBuild is Build for tests.
func MustBuild(tb testing.TB, name string) string {
	tb.Helper()
	p, err := Build(name)
	if err != nil {
		tb.Fatalf("building plugin: %v", err)
	}
	return p
}

// logBuffer collects the plugin's forwarded log; it is printed when the
// test fails.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start launches the plugin binary at path as the agent does and dispenses
// kind (plugin.KeyAPM or plugin.KeyStrategy). The process is killed when
// the test ends.
func Start(tb testing.TB, path, kind string, args ...string) any {
	tb.Helper()
	logs := &logBuffer{}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          plugin.ClientSet(),
		Cmd:              exec.Command(path, args...),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "agent", Output: logs, Level: hclog.Debug}),
		StartTimeout:     30 * time.Second,
	})
	tb.Cleanup(func() {
		client.Kill()
		if tb.Failed() {
			tb.Logf("plugin %s log:\n%s", filepath.Base(path), logs.String())
		}
	})
	rpc, err := client.Client()
	if err != nil {
		tb.Fatalf("starting plugin %s: %v", path, err)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		tb.Fatalf("dispensing %s from %s: %v", kind, path, err)
	}
	return raw
}

// StartAPM starts an APM plugin binary.
func StartAPM(tb testing.TB, path string, args ...string) *plugin.APMClient {
	tb.Helper()
	c, ok := Start(tb, path, plugin.KeyAPM, args...).(*plugin.APMClient)
	if !ok {
		tb.Fatalf("dispensed apm is not an *plugin.APMClient")
	}
	return c
}

// StartStrategy starts a strategy plugin binary.
func StartStrategy(tb testing.TB, path string, args ...string) *plugin.StrategyClient {
	tb.Helper()
	c, ok := Start(tb, path, plugin.KeyStrategy, args...).(*plugin.StrategyClient)
	if !ok {
		tb.Fatalf("dispensed strategy is not an *plugin.StrategyClient")
	}
	return c
}

// base is what Load needs of a dispensed client.
type base interface {
	PluginInfo(ctx context.Context) (sdk.Info, error)
	SetConfig(ctx context.Context, config map[string]string) error
}

// Load does what the agent does after launch: the reported name must equal
// the configured driver and the type the block's type (else the agent
// exits), then SetConfig (an error fails the agent's start).
func Load(ctx context.Context, c base, driver string, typ sdk.PluginType, config map[string]string) error {
	info, err := c.PluginInfo(ctx)
	if err != nil {
		return fmt.Errorf("plugin info: %w", err)
	}
	if info.Name != driver || info.Type != typ {
		return fmt.Errorf("plugin %s remote info doesn't match local config: got %s/%s", driver, info.Name, info.Type)
	}
	if err := c.SetConfig(ctx, config); err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	return nil
}

// Policy is what the host knows of a horizontal policy with one check.
type Policy struct {
	Min, Max int64
	Check    sdk.Check
}

// Outcome is one evaluation tick as the host sees it.
type Outcome struct {
	Metrics []sdk.Metric
	// Action after the host's clamp to [Min, Max].
	Action sdk.Action
	// Capped reports that the clamp changed the count.
	Capped bool
	// Scale reports whether the host would call the target's Scale.
	Scale bool
}

// Evaluate replays one tick at now for a group currently at count.
func Evaluate(ctx context.Context, apm *plugin.APMClient, strategy *plugin.StrategyClient, p Policy, count int64, now time.Time) (Outcome, error) {
	window := p.Check.QueryWindow
	if window == 0 {
		window = time.Minute
		p.Check.QueryWindow = window
	}
	ms, err := apm.Query(ctx, p.Check.Query, sdk.TimeRange{From: now.Add(-window), To: now})
	if err != nil {
		return Outcome{}, fmt.Errorf("failed to query source: %w", err)
	}
	act, err := strategy.Run(ctx, sdk.RunRequest{Check: p.Check, Metrics: ms, Count: count})
	if err != nil {
		return Outcome{}, fmt.Errorf("failed to execute strategy: %w", err)
	}
	out := Outcome{Metrics: ms, Action: act}
	if c := min(max(act.Count, p.Min), p.Max); c != act.Count {
		out.Action.Reason = fmt.Sprintf("capped count from %d to %d to stay within limits", act.Count, c)
		out.Action.Count, out.Capped = c, true
	}
	out.Scale = out.Action.Direction != sdk.None && out.Action.Count != count
	return out, nil
}
