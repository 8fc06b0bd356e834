package benchtest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// warmTimeout bounds the wait for every environment to be initialised.
const warmTimeout = 2 * time.Minute

// StartEcho runs the echo function as function name with envs environments,
// initialises every one of them (the benchmarks measure warm invokes) and
// stops the instance on cleanup.
func StartEcho(tb testing.TB, name string, envs int) *instance.Instance {
	tb.Helper()
	return Start(tb, Function{Name: name, Code: "echo", Envs: envs})
}

// Function is a test function Start runs.
type Function struct {
	// Name is the function's name.
	Name string
	// Code names the function under internal/testfn ("echo", "stamp", …).
	Code string
	// Envs is the instance's number of environments.
	Envs int
	// Env is the function's environment.
	Env map[string]string
	// Secret is the invoke secret the instance requires (empty: none).
	Secret string
	// Mesh makes the instance a Connect-native service (nil: plain HTTP).
	Mesh *instance.MeshConfig
	// Client warms the instance; nil means a plain client with Secret
	// (a Mesh instance needs one with a mesh TLS config).
	Client *invokeapi.Client
}

// Start runs f in a real instance, initialises every environment and
// stops the instance on cleanup.
func Start(tb testing.TB, f Function) *instance.Instance {
	tb.Helper()
	dir := tb.TempDir()
	in, err := instance.New(&instance.Config{
		Function: f.Name, Version: catalog.Latest, Runtime: "provided.al2023",
		CodeDir: testfn.Dir(tb, f.Code), StateDir: filepath.Join(dir, "state"),
		MemoryMB: 128, Timeout: 10 * time.Second, Environments: f.Envs, InvokeAddr: "127.0.0.1:0",
		Env:          f.Env,
		InvokeSecret: f.Secret,
		Mesh:         f.Mesh,
		StdoutPath:   filepath.Join(dir, "stdout.log"), StderrPath: filepath.Join(dir, "stderr.log"),
	}, hclog.NewNullLogger())
	if err != nil {
		tb.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = in.Stop(context.Background()) })
	c := f.Client
	if c == nil {
		c = &invokeapi.Client{Secret: f.Secret}
	}
	if _, err := c.Warm(context.Background(), in.Addr(), f.Envs); err != nil {
		tb.Fatal(err)
	}
	deadline := time.NewTimer(warmTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := c.Status(context.Background(), in.Addr())
		if err == nil && st.Idle >= f.Envs {
			return in
		}
		select {
		case <-deadline.C:
			tb.Fatalf("%d environments of %s not warm within %s: %+v %v", f.Envs, f.Name, warmTimeout, st, err)
		case <-tick.C:
		}
	}
}

// Catalog serves a fixed snapshot.
type Catalog struct{ Snapshot *catalog.Snapshot }

// Function returns the named function of the snapshot.
func (c Catalog) Function(_ context.Context, name string) (*catalog.Function, error) {
	return c.Snapshot.Function(name)
}

// Functions lists the snapshot's functions.
func (c Catalog) Functions(context.Context) ([]*catalog.Function, error) {
	return c.Snapshot.Functions(), nil
}

// Source lists fixed instances by function name, whatever the version.
type Source map[string][]discovery.Instance

// Instances returns the function's instances.
func (s Source) Instances(_ context.Context, fn, _ string) ([]discovery.Instance, error) {
	return s[fn], nil
}
