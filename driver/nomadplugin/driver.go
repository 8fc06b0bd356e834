package nomadplugin

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nimbus-fn/nimbus/driver/bundlecache"
	basepb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/base"
	driverpb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/drivers"
	structspb "github.com/nimbus-fn/nimbus/driver/nomadplugin/proto/structs"
	"github.com/nimbus-fn/nimbus/driver/sandbox"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
	"github.com/nimbus-fn/nimbus/runtimes"
)

// Protocol constants Nomad checks.
const (
	// PluginName is the driver name jobs use and the name of the binary in
	// the client's plugin_dir (and of its agent `plugin` block).
	PluginName = taskconfig.DriverName
	// APIVersion is the only driver API version Nomad v1.6–v2.0 accepts.
	APIVersion = "v0.1.0"
	// fallbackPluginVersion is reported when the build version is not semver
	// (Nomad refuses to start on an unparsable plugin_version).
	fallbackPluginVersion = "0.1.0"
	// handleVersion is the schema version of driver_state (0 is reserved).
	handleVersion = 1
)

// Options are the process-level inputs of a Driver.
type Options struct {
	// Executable is the binary started as `<Executable> instance --config F`
	// for each task. Required.
	Executable string
	// Version is the build version; semver versions are reported to Nomad
	// as plugin_version, anything else only as the driver.nimbus.version
	// attribute.
	Version string
	// Logger receives the driver's logs. Nil discards them.
	Logger hclog.Logger
	// ProcRoot is procfs. Default: "/proc".
	ProcRoot string
	// Runtimes reports the managed-runtime interpreters on this client
	// (name → version) for the fingerprint. Default: runtimes.Detect.
	Runtimes func() map[string]string
}

// Driver serves Nomad's BasePlugin and Driver services. Every method is safe
// for concurrent use: Nomad calls from one goroutine per task runner.
type Driver struct {
	driverpb.UnimplementedDriverServer

	opts   Options
	logger hclog.Logger
	events *eventHub

	mu    sync.RWMutex
	set   settings
	tasks map[string]*task

	rtMu      sync.Mutex
	rtFound   map[string]string
	rtChecked time.Time

	bcMu   sync.Mutex
	bcache *bundlecache.Cache
	bcMax  int64
}

var _ driverpb.DriverServer = (*Driver)(nil)

// New returns a Driver with DefaultConfig until Nomad calls SetConfig.
// It has no side effects: Nomad starts the binary several times.
func New(opts Options) (*Driver, error) {
	if opts.Executable == "" {
		return nil, fmt.Errorf("nomadplugin: Options.Executable is required")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.Runtimes == nil {
		opts.Runtimes = detectRuntimes
	}
	set, err := DefaultConfig().validate()
	if err != nil {
		return nil, err
	}
	return &Driver{
		opts:   opts,
		logger: opts.Logger.Named("driver"),
		events: newEventHub(),
		set:    set,
		tasks:  map[string]*task{},
	}, nil
}

func (d *Driver) settings() settings {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.set
}

var semver = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

func (d *Driver) pluginVersion() string {
	if semver.MatchString(d.opts.Version) {
		return d.opts.Version
	}
	return fallbackPluginVersion
}

// Base returns the BasePlugin service of d.
func (d *Driver) Base() basepb.BasePluginServer { return baseServer{d: d} }

type baseServer struct {
	basepb.UnimplementedBasePluginServer
	d *Driver
}

func (b baseServer) PluginInfo(context.Context, *basepb.PluginInfoRequest) (*basepb.PluginInfoResponse, error) {
	return &basepb.PluginInfoResponse{
		Type:              basepb.PluginType_DRIVER,
		PluginApiVersions: []string{APIVersion},
		PluginVersion:     b.d.pluginVersion(),
		Name:              PluginName,
	}, nil
}

func (b baseServer) ConfigSchema(context.Context, *basepb.ConfigSchemaRequest) (*basepb.ConfigSchemaResponse, error) {
	return &basepb.ConfigSchemaResponse{Spec: configSchema().spec()}, nil
}

// SetConfig decodes and validates the agent's plugin config. It is also the
// agent's validation call (nomad_config unset), so it changes nothing but
// the in-memory settings.
func (b baseServer) SetConfig(_ context.Context, req *basepb.SetConfigRequest) (*basepb.SetConfigResponse, error) {
	cfg := DefaultConfig()
	if err := configSchema().decode(req.GetMsgpackConfig(), &cfg); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "nimbus driver config: %v", err)
	}
	set, err := cfg.validate()
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	b.d.mu.Lock()
	b.d.set = set
	b.d.mu.Unlock()
	b.d.logger.Debug("configured", "validation_only", req.GetNomadConfig() == nil, "api_version", req.GetPluginApiVersion())
	return &basepb.SetConfigResponse{}, nil
}

// TaskConfigSchema is the task `config {}` block, built from taskconfig.Schema.
func (d *Driver) TaskConfigSchema(context.Context, *driverpb.TaskConfigSchemaRequest) (*driverpb.TaskConfigSchemaResponse, error) {
	return &driverpb.TaskConfigSchemaResponse{Spec: taskSchema().spec()}, nil
}

// Capabilities: host networking only, no volume mounts, the task runs on
// the host filesystem (its code comes in through artifact blocks).
func (d *Driver) Capabilities(context.Context, *driverpb.CapabilitiesRequest) (*driverpb.CapabilitiesResponse, error) {
	return &driverpb.CapabilitiesResponse{Capabilities: &driverpb.DriverCapabilities{
		SendSignals:           true,
		Exec:                  true,
		FsIsolation:           driverpb.DriverCapabilities_NONE,
		NetworkIsolationModes: []driverpb.NetworkIsolationSpec_NetworkIsolationMode{driverpb.NetworkIsolationSpec_HOST},
		MountConfigs:          driverpb.DriverCapabilities_NO_MOUNTS,
	}}, nil
}

// Init answers Nomad v2.0.4+'s post-dispense call; there is nothing to do.
func (d *Driver) Init(context.Context, *driverpb.InitRequest) (*driverpb.InitResponse, error) {
	return &driverpb.InitResponse{}, nil
}

// Shutdown answers Nomad v2.0.4+'s pre-kill call. Instances keep running:
// they outlive the plugin by design.
func (d *Driver) Shutdown(context.Context, *driverpb.ShutdownRequest) (*driverpb.ShutdownResponse, error) {
	d.logger.Info("plugin shutting down; instances keep running")
	return &driverpb.ShutdownResponse{}, nil
}

// CreateNetwork is never called: Capabilities does not set must_create_network.
func (d *Driver) CreateNetwork(context.Context, *driverpb.CreateNetworkRequest) (*driverpb.CreateNetworkResponse, error) {
	return nil, status.Error(codes.Unimplemented, "the nimbus driver uses host networking and creates no networks")
}

// DestroyNetwork: see CreateNetwork.
func (d *Driver) DestroyNetwork(context.Context, *driverpb.DestroyNetworkRequest) (*driverpb.DestroyNetworkResponse, error) {
	return nil, status.Error(codes.Unimplemented, "the nimbus driver uses host networking and creates no networks")
}

// Fingerprint sends the driver's health and attributes at once, then every
// fingerprint_interval, and ends only when Nomad cancels the stream.
func (d *Driver) Fingerprint(_ *driverpb.FingerprintRequest, srv driverpb.Driver_FingerprintServer) error {
	ctx := srv.Context()
	t := time.NewTicker(d.settings().fingerprintInterval)
	defer t.Stop()
	for {
		if err := srv.Send(d.fingerprint()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			d.logger.Debug("fingerprint stream closed by the client")
			return nil
		case <-t.C:
		}
	}
}

func (d *Driver) fingerprint() *driverpb.FingerprintResponse {
	prefix := "driver." + PluginName + "."
	str := func(v string) *structspb.Attribute {
		return &structspb.Attribute{Value: &structspb.Attribute_StringVal{StringVal: v}}
	}
	attrs := map[string]*structspb.Attribute{
		prefix + "version": str(d.buildVersion()),
	}
	attrs[prefix+"isolation"] = str(isolationAttr(sandbox.Missing()))
	for name, version := range d.runtimes() {
		attrs[prefix+"runtime."+name] = str(version)
	}
	resp := &driverpb.FingerprintResponse{
		Attributes:        attrs,
		Health:            driverpb.FingerprintResponse_HEALTHY,
		HealthDescription: "Healthy",
	}
	if fi, err := os.Stat(d.opts.Executable); err != nil || fi.Mode()&0o111 == 0 {
		resp.Health = driverpb.FingerprintResponse_UNHEALTHY
		resp.HealthDescription = fmt.Sprintf("instance executable %s is not runnable", d.opts.Executable)
	}
	return resp
}

// runtimeRecheck bounds how often interpreters are probed (each probe runs
// `--version`), however short the fingerprint interval.
const runtimeRecheck = 5 * time.Minute

func (d *Driver) runtimes() map[string]string {
	d.rtMu.Lock()
	defer d.rtMu.Unlock()
	if d.rtFound == nil || time.Since(d.rtChecked) > runtimeRecheck {
		d.rtFound, d.rtChecked = d.opts.Runtimes(), time.Now()
	}
	return d.rtFound
}

func detectRuntimes() map[string]string {
	found := map[string]string{}
	for _, in := range runtimes.Detect() {
		found[in.Name] = in.Version
	}
	return found
}

func (d *Driver) buildVersion() string {
	if d.opts.Version != "" {
		return d.opts.Version
	}
	return fallbackPluginVersion
}

// TaskEvents streams driver task events until Nomad cancels the stream.
func (d *Driver) TaskEvents(_ *driverpb.TaskEventsRequest, srv driverpb.Driver_TaskEventsServer) error {
	ch, cancel := d.events.subscribe()
	defer cancel()
	for {
		select {
		case <-srv.Context().Done():
			return nil
		case ev := <-ch:
			if err := srv.Send(ev); err != nil {
				return err
			}
		}
	}
}

// eventHub fans task events out to every open TaskEvents stream. A slow
// stream loses events rather than blocking a task.
type eventHub struct {
	mu   sync.Mutex
	next int
	subs map[int]chan *driverpb.DriverTaskEvent
}

func newEventHub() *eventHub { return &eventHub{subs: map[int]chan *driverpb.DriverTaskEvent{}} }

func (h *eventHub) subscribe() (<-chan *driverpb.DriverTaskEvent, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	ch := make(chan *driverpb.DriverTaskEvent, 64)
	h.subs[id] = ch
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, id)
		h.mu.Unlock()
	}
}

func (h *eventHub) emit(cfg *driverpb.TaskConfig, msg string, annotations map[string]string) {
	ev := &driverpb.DriverTaskEvent{
		TaskId:      cfg.GetId(),
		AllocId:     cfg.GetAllocId(),
		TaskName:    cfg.GetName(),
		Timestamp:   timestamppb.Now(),
		Message:     msg,
		Annotations: annotations,
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]int, 0, len(h.subs))
	for id := range h.subs {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		select {
		case h.subs[id] <- ev:
		default:
		}
	}
}

// isolationAttr is the fingerprint's driver.nimbus.isolation: "full", or
// "none" and what the host lacks, for jobs to constrain on.
func isolationAttr(missing []string) string {
	if len(missing) == 0 {
		return "full"
	}
	return "none (missing: " + strings.Join(missing, "; ") + ")"
}
