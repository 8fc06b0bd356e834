package nomadplugin_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nimbus-fn/nimbus/driver/nomadplugin"
	"github.com/nimbus-fn/nimbus/driver/nomadplugin/plugintest"
	basepb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/base"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
	structspb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/structs"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
	"github.com/nimbus-fn/nimbus/runtimes"
)

func TestPluginInfoAndAgentConfig(t *testing.T) {
	d, err := nomadplugin.New(nomadplugin.Options{Executable: "/bin/true", Version: "dev-abc123", Logger: plugintest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := plugintest.InProcess(t, d, plugintest.Logger(t))
	// The validation instance's call (no nomad_config), then the real one.
	info, err := h.Configure(ctx(t), map[string]any{"stats_interval": "250ms", "allowed_run_as": []string{"nobody"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if info.GetType() != basepb.PluginType_DRIVER || info.GetName() != "nimbus" ||
		len(info.GetPluginApiVersions()) != 1 || info.GetPluginApiVersions()[0] != "v0.1.0" {
		t.Errorf("PluginInfo = %v", info)
	}
	// A non-semver build version must not reach Nomad (it refuses to start).
	if info.GetPluginVersion() != "0.1.0" {
		t.Errorf("plugin_version = %q, want the semver fallback", info.GetPluginVersion())
	}
	if _, err := h.Configure(ctx(t), nil, true); err != nil {
		t.Fatalf("empty config block (defaults from the spec): %v", err)
	}
	if _, err := h.Configure(ctx(t), map[string]any{
		"image_cache_dir": "/var/cache/nimbus", "image_cache_max_mb": 2048,
		"registry_auth":       []map[string]string{{"registry": "r.example", "username": "u", "password": "p"}, {"registry": "ghcr.io", "token": "t"}},
		"insecure_registries": []string{"build.internal:5000"},
	}, true); err != nil {
		t.Fatalf("image settings: %v", err)
	}
	for _, bad := range []map[string]any{
		{"stats_interval": "often"},
		{"stop_signal": "SIGNOPE"},
		{"runtimes_dir": "relative/dir"},
		{"start_timeout": "-1s"},
		{"image_cache_dir": "relative"},
		{"image_cache_max_mb": -1},
		{"registry_auth": []map[string]string{{"registry": "r.example", "username": "u"}}},
		{"registry_auth": []map[string]string{{"registry": "r.example", "user": "u", "password": "p"}}},
		{"registry_auth_file": "/nonexistent/config.json"},
		{"insecure_registries": []string{"http://r.example"}},
	} {
		_, err := h.Configure(ctx(t), bad, true)
		if code(errors.Unwrap(err)) != codes.InvalidArgument {
			t.Errorf("config %v: err = %v, want InvalidArgument", bad, err)
		}
	}
	// An attribute the schema does not know is rejected by Nomad's decode.
	if _, err := h.Configure(ctx(t), map[string]any{"no_such_option": true}, true); err == nil {
		t.Error("unknown agent option accepted")
	}
}

func TestTaskConfigSchemaRoundTrip(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	block := map[string]any{
		"function":      "echo",
		"runtime":       "provided.al2023",
		"handler":       "${NOMAD_TASK_NAME}.handle",
		"layer_dirs":    []string{"local/layer1", "local/layer2"},
		"memory_mb":     256,
		"timeout":       "10s",
		"environments":  4,
		"network":       "none",
		"invoke_secret": "s3cret",
	}
	b, err := h.EncodeTask(ctx(t), block, map[string]string{"NOMAD_TASK_NAME": "fn"})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := nomadplugin.DecodeTaskConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	want := taskconfig.TaskConfig{
		Function: "echo", Version: "$LATEST", Runtime: "provided.al2023", Handler: "fn.handle",
		CodeDir: "local/code", LayerDirs: []string{"local/layer1", "local/layer2"}, MemoryMB: 256,
		Timeout: "10s", EphemeralStorageMB: 512, Environments: 4, InitializationType: taskconfig.InitOnDemand,
		InvokePort: "invoke", InvokeSecret: "s3cret", Network: taskconfig.NetworkNone, Region: "us-east-1", AccountID: "000000000000",
	}
	if got := *tc; !equalTC(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	// Required attributes are enforced by Nomad's decode of our schema;
	// runtime (required unless the task runs an image) by the driver's.
	if _, err := h.EncodeTask(ctx(t), map[string]any{"invoke_secret": "s"}, nil); err == nil || !strings.Contains(err.Error(), "function") {
		t.Errorf("missing function: err = %v", err)
	}
	b, err = h.EncodeTask(ctx(t), map[string]any{"function": "x", "invoke_secret": "s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nomadplugin.DecodeTaskConfig(b); err == nil || !strings.Contains(err.Error(), "runtime is required") {
		t.Errorf("missing runtime: err = %v", err)
	}
	// An image function's attributes.
	img := "127.0.0.1:5000/team/fn@sha256:" + strings.Repeat("ab", 32)
	b, err = h.EncodeTask(ctx(t), map[string]any{
		"function": "x", "invoke_secret": "s", "image": img,
		"image_entrypoint": []string{"/lambda-entrypoint.sh"}, "image_command": []string{"app.handler"},
		"image_working_directory": "/var/task",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc, err = nomadplugin.DecodeTaskConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if tc.Image != img || tc.CodeDir != "" || len(tc.ImageEntrypoint) != 1 || tc.ImageCommand[0] != "app.handler" || tc.ImageWorkingDirectory != "/var/task" {
		t.Errorf("image task config %+v", tc)
	}
	for _, bad := range []map[string]any{
		{"image": "127.0.0.1:5000/team/fn:latest"},
		{"image": img, "runtime": "provided"},
		{"image": img, "code_dir": "local/code"},
		{"image": img, "image_entrypoint": []string{"relative"}},
		{"image_command": []string{"x"}, "runtime": "provided"},
	} {
		bad["function"], bad["invoke_secret"] = "x", "s"
		b, err := h.EncodeTask(ctx(t), bad, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nomadplugin.DecodeTaskConfig(b); !errors.Is(err, taskconfig.ErrInvalid) {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
	// A fractional number arrives as a msgpack string and is refused cleanly.
	block["memory_mb"] = 128.1
	b, err = h.EncodeTask(ctx(t), block, map[string]string{"NOMAD_TASK_NAME": "fn"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nomadplugin.DecodeTaskConfig(b); err == nil || !strings.Contains(err.Error(), "whole number") {
		t.Errorf("fractional memory_mb: err = %v", err)
	}
}

// TestTaskConfigNetwork: "none" and "host" are the networks a task may
// ask for; anything else is refused.
func TestTaskConfigNetwork(t *testing.T) {
	for network, ok := range map[string]bool{"": true, "host": true, "none": true, "bridge": false} {
		tc := taskconfig.TaskConfig{Function: "f", Runtime: "provided.al2023", InvokeSecret: "s", Network: network}
		if err := tc.Normalize(); (err == nil) != ok || (!ok && !strings.Contains(err.Error(), `network "bridge"`)) {
			t.Errorf("network %q: err = %v", network, err)
		}
	}
}

func equalTC(a, b taskconfig.TaskConfig) bool { return reflect.DeepEqual(a, b) }

// A task config names its invoke secret by file (what the compiler writes)
// or, from jobs compiled by older versions, in clear; never both, never neither.
func TestTaskConfigInvokeSecretSource(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	base := map[string]any{"function": "echo", "runtime": "provided.al2023"}
	cases := []struct {
		name  string
		extra map[string]any
		want  string // "" decodes
	}{
		{"file", map[string]any{"invoke_secret_file": "secrets/nimbus-invoke-secret"}, ""},
		{"legacy clear secret", map[string]any{"invoke_secret": "s3cret"}, ""},
		{"neither", nil, "invoke_secret_file is required"},
		{"both", map[string]any{"invoke_secret_file": "secrets/x", "invoke_secret": "s"}, "not both"},
		{"absolute file", map[string]any{"invoke_secret_file": "/etc/secret"}, "inside the task directory"},
		{"file outside", map[string]any{"invoke_secret_file": "../other/secrets/x"}, "inside the task directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			block := map[string]any{}
			for k, v := range base {
				block[k] = v
			}
			for k, v := range tc.extra {
				block[k] = v
			}
			b, err := h.EncodeTask(ctx(t), block, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := nomadplugin.DecodeTaskConfig(b)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.InvokeSecretFile != fmt.Sprint(tc.extra["invoke_secret_file"]) && got.InvokeSecret != fmt.Sprint(tc.extra["invoke_secret"]) {
					t.Errorf("decoded %+v", got)
				}
				return
			}
			if !errors.Is(err, taskconfig.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	resp, err := h.Driver.Capabilities(ctx(t), &driverpb.CapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.GetCapabilities()
	if !c.GetSendSignals() || !c.GetExec() || c.GetFsIsolation() != driverpb.DriverCapabilities_NONE ||
		c.GetMustCreateNetwork() || c.GetMountConfigs() != driverpb.DriverCapabilities_NO_MOUNTS ||
		len(c.GetNetworkIsolationModes()) != 1 || c.GetNetworkIsolationModes()[0] != driverpb.NetworkIsolationSpec_HOST {
		t.Errorf("capabilities = %v", c)
	}
	// Init and Shutdown (Nomad v2.0.4+) answer cleanly.
	if _, err := h.Driver.Init(ctx(t), &driverpb.InitRequest{}); err != nil {
		t.Errorf("Init: %v", err)
	}
	if _, err := h.Driver.CreateNetwork(ctx(t), &driverpb.CreateNetworkRequest{AllocId: "a"}); code(err) != codes.Unimplemented {
		t.Errorf("CreateNetwork: %v, want Unimplemented", err)
	}
}

func TestFingerprintStreamStaysOpen(t *testing.T) {
	h, _ := newHost(t, "/bin/true", map[string]any{"fingerprint_interval": "20ms"})
	c, cancel := context.WithCancel(ctx(t))
	stream, err := h.Driver.Fingerprint(c, &driverpb.FingerprintRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetHealth() != driverpb.FingerprintResponse_HEALTHY || first.GetHealthDescription() != "Healthy" {
		t.Errorf("health = %v %q", first.GetHealth(), first.GetHealthDescription())
	}
	if v := first.GetAttributes()["driver.nimbus.version"].GetStringVal(); v != "1.2.3" {
		t.Errorf("driver.nimbus.version = %q", v)
	}
	// The interpreters this machine really has are advertised, with versions.
	for _, in := range runtimes.Detect() {
		if v := first.GetAttributes()["driver.nimbus.runtime."+in.Name].GetStringVal(); v != in.Version {
			t.Errorf("driver.nimbus.runtime.%s = %q, want %q", in.Name, v, in.Version)
		}
	}
	// Re-sent on the interval: the stream is alive, not closed after one.
	for i := 0; i < 3; i++ {
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("fingerprint %d: %v", i+2, err)
		}
	}
	cancel()
	for {
		if _, err = stream.Recv(); err != nil {
			break // messages already in flight may arrive first
		}
	}
	if code(err) != codes.Canceled {
		t.Errorf("after cancel: %v, want Canceled", err)
	}
}

func TestFingerprintUnhealthyWithoutExecutable(t *testing.T) {
	h, _ := newHost(t, filepath.Join(t.TempDir(), "missing"), nil)
	stream, err := h.Driver.Fingerprint(ctx(t), &driverpb.FingerprintRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if fp.GetHealth() != driverpb.FingerprintResponse_UNHEALTHY {
		t.Errorf("health = %v, want UNHEALTHY", fp.GetHealth())
	}
}

// validTask is a decodable task for alloc a on port.
func validTask(t *testing.T, h *plugintest.Host, a *plugintest.Alloc, extra map[string]any, ports map[string]int) *driverpb.TaskConfig {
	t.Helper()
	block := map[string]any{"function": "echo", "runtime": "provided.al2023", "invoke_secret": "s3cret"}
	for k, v := range extra {
		block[k] = v
	}
	b, err := h.EncodeTask(ctx(t), block, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.TaskConfig(a.TaskID(t), b, nil, ports)
}

func TestStartTaskConfigErrorsAreFatal(t *testing.T) {
	h, _ := newHost(t, "/bin/true", map[string]any{"allowed_run_as": []string{"nobody"}})
	a := plugintest.NewAlloc(t, t.TempDir(), "fn")
	port := map[string]int{"invoke": plugintest.FreePort(t)}
	cases := map[string]*driverpb.TaskConfig{
		"no invoke port":   validTask(t, h, a, nil, nil),
		"code dir escapes": validTask(t, h, a, map[string]any{"code_dir": "../../etc"}, port),
		"run_as refused":   validTask(t, h, a, map[string]any{"run_as": "root"}, port),
		"bad timeout":      validTask(t, h, a, map[string]any{"timeout": "soon"}, port),
		"no driver config": a.TaskConfig(a.TaskID(t), nil, nil, port),
		"garbage msgpack":  a.TaskConfig(a.TaskID(t), []byte{0xc1, 0x00}, nil, port),
		"relative alloc dir": func() *driverpb.TaskConfig {
			c := validTask(t, h, a, nil, port)
			c.AllocDir = "alloc"
			return c
		}(),
	}
	// Root needs allow_root in the plugin config too: the task's alone is refused.
	hr, _ := newHost(t, "/bin/true", map[string]any{"allowed_run_as": []string{"root"}})
	ar := plugintest.NewAlloc(t, t.TempDir(), "fn")
	cases["root without the plugin's allow_root"] = validTask(t, hr, ar, map[string]any{"run_as": "root", "allow_root": true}, port)
	for name, cfg := range cases {
		_, err := h.Driver.StartTask(ctx(t), &driverpb.StartTaskRequest{Task: cfg})
		if name == "root without the plugin's allow_root" {
			_, err = hr.Driver.StartTask(ctx(t), &driverpb.StartTaskRequest{Task: cfg})
		}
		if code(err) != codes.InvalidArgument {
			t.Errorf("%s: err = %v, want InvalidArgument", name, err)
			continue
		}
		if len(status.Convert(err).Details()) != 0 {
			t.Errorf("%s: a config error must not be recoverable", name)
		}
	}
}

func TestStartTaskLaunchFailureIsRecoverableAndReported(t *testing.T) {
	// /bin/false is a real program that exits at once, as a broken instance would.
	h, _ := newHost(t, "/bin/false", nil)
	events, err := h.Driver.TaskEvents(ctx(t), &driverpb.TaskEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	a := plugintest.NewAlloc(t, t.TempDir(), "fn")
	cfg := validTask(t, h, a, nil, map[string]int{"invoke": plugintest.FreePort(t)})
	_, err = h.Driver.StartTask(ctx(t), &driverpb.StartTaskRequest{Task: cfg})
	if err == nil {
		t.Fatal("StartTask succeeded with an instance that exits")
	}
	details := status.Convert(err).Details()
	if len(details) == 0 {
		t.Fatalf("err %v has no RecoverableError detail", err)
	}
	if re, ok := details[0].(*structspb.RecoverableError); !ok || !re.GetRecoverable() {
		t.Errorf("first detail = %#v, want RecoverableError{recoverable: true}", details[0])
	}
	if !strings.Contains(err.Error(), "exited before it was ready") {
		t.Errorf("err = %v", err)
	}
	ev, err := events.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetTaskId() != cfg.GetId() || ev.GetAllocId() != a.ID || ev.GetTaskName() != "fn" || !strings.Contains(ev.GetMessage(), "failed to start") {
		t.Errorf("event = %v", ev)
	}
	// The failed task is not tracked: a later stop/destroy is a no-op.
	if _, err := h.Driver.WaitTask(ctx(t), &driverpb.WaitTaskRequest{TaskId: cfg.GetId()}); code(err) != codes.NotFound {
		t.Errorf("WaitTask after failed start: %v", err)
	}
}

func TestUnknownTasksAreIdempotent(t *testing.T) {
	h, _ := newHost(t, "/bin/true", nil)
	c := ctx(t)
	if _, err := h.Driver.StopTask(c, &driverpb.StopTaskRequest{TaskId: "a/b/c", Timeout: durationpb.New(time.Second)}); err != nil {
		t.Errorf("StopTask unknown: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := h.Driver.DestroyTask(c, &driverpb.DestroyTaskRequest{TaskId: "a/b/c", Force: true}); err != nil {
			t.Errorf("DestroyTask unknown: %v", err)
		}
	}
	if _, err := h.Driver.WaitTask(c, &driverpb.WaitTaskRequest{TaskId: "a/b/c"}); code(err) != codes.NotFound {
		t.Errorf("WaitTask unknown: %v, want NotFound", err)
	}
	if _, err := h.Driver.InspectTask(c, &driverpb.InspectTaskRequest{TaskId: "a/b/c"}); code(err) != codes.NotFound {
		t.Errorf("InspectTask unknown: %v, want NotFound", err)
	}
	if _, err := h.Driver.SignalTask(c, &driverpb.SignalTaskRequest{TaskId: "a/b/c", Signal: "SIGHUP"}); code(err) != codes.NotFound {
		t.Errorf("SignalTask unknown: %v, want NotFound", err)
	}
	stats, err := h.Driver.TaskStats(c, &driverpb.TaskStatsRequest{TaskId: "a/b/c"})
	if err == nil {
		_, err = stats.Recv()
	}
	if code(err) != codes.NotFound {
		t.Errorf("TaskStats unknown: %v, want NotFound", err)
	}
	if _, err := h.Driver.RecoverTask(c, &driverpb.RecoverTaskRequest{Handle: &driverpb.TaskHandle{Version: 1}}); code(err) != codes.InvalidArgument {
		t.Errorf("RecoverTask without config: %v, want InvalidArgument", err)
	}
}
