package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
	"github.com/nimbus-fn/nimbus/specs"
)

// Fixed policies. They are constants rather than options because every
// function wants the same: restart a crashed instance quickly, never give up
// rescheduling, roll updates one at a time behind health checks.
const (
	restartAttempts  = 3
	restartInterval  = time.Minute
	restartDelay     = 2 * time.Second
	rescheduleDelay  = 5 * time.Second
	rescheduleMax    = 2 * time.Minute
	minHealthyTime   = 5 * time.Second
	healthyDeadline  = 2 * time.Minute
	progressDeadline = 5 * time.Minute
	// shutdownDelay lets gateways see the service deregistration (and stop
	// routing) before the instance is signalled.
	shutdownDelay = 5 * time.Second
	// killGrace is added to the function timeout so in-flight invocations can
	// finish before Nomad kills the instance (clients cap it at their
	// max_kill_timeout, 30s by default).
	killGrace = 5 * time.Second
	// maxKillTimeout: Nomad refuses a kill_timeout longer than the group's
	// progress_deadline (found against a real agent), so a 15-minute
	// function does not get a 15-minute drain.
	maxKillTimeout = progressDeadline
	checkInterval  = 5 * time.Second
	checkTimeout   = 2 * time.Second
	// codeDiskMB leaves room for the unpacked code and layers (Lambda's 250 MB).
	codeDiskMB = 250
	minCPU     = 100

	evaluationInterval = "10s"
	cooldown           = "1m"

	secretsFile = "secrets/nimbus.env"
)

var serviceNameRE = regexp.MustCompile(`^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$`)

// ServiceName is the name of the service a function's instances register:
// "nimbus-<fn>" whenever that is a valid Nomad service name (RFC 1123 label,
// at most 63 characters). Otherwise underscores and other characters become
// "-" and an over-long name is cut and suffixed with 8 hex digits of the
// name's SHA-256, so it stays unique; the exact function name is always in
// the "function=<fn>" tag.
func ServiceName(function string) string {
	name := "nimbus-" + function
	if serviceNameRE.MatchString(name) {
		return name
	}
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	clean := strings.TrimRight(string(b), "-")
	if len(clean) > 63 || clean != name {
		sum := sha256.Sum256([]byte(function))
		suffix := "-" + hex.EncodeToString(sum[:4])
		if len(clean) > 63-len(suffix) {
			clean = strings.TrimRight(clean[:63-len(suffix)], "-")
		}
		clean += suffix
	}
	return clean
}

// Compile turns one function version into its Nomad job. It is pure and
// deterministic: the same fn and opts always give the same job.
func Compile(fn *specs.Function, opts Options) (*api.Job, error) {
	opts = opts.withDefaults()
	errs := opts.validate()
	if fn == nil {
		return nil, fmt.Errorf("%w: function is nil", ErrInvalid)
	}
	if fn.Name == "" {
		errs = append(errs, "function name is required")
	}
	code, codeSum, codeErrs := codeArtifact(fn, opts)
	errs = append(errs, codeErrs...)
	if len(opts.LayerArtifacts) != len(fn.Layers) {
		errs = append(errs, fmt.Sprintf("%d layers in the spec but %d layer artifacts given", len(fn.Layers), len(opts.LayerArtifacts)))
	}
	for i, l := range opts.LayerArtifacts {
		if l.Source == "" {
			errs = append(errs, fmt.Sprintf("layer %d: artifact source is empty", i))
		}
		if _, err := ParseChecksum(l.Checksum); err != nil {
			errs = append(errs, fmt.Sprintf("layer %d: %v", i, err))
		}
	}
	perInstance := fn.EnvironmentsPerInstance
	if perInstance == 0 {
		perInstance = taskconfig.DefaultEnvironments
	}
	if perInstance < 1 || perInstance > taskconfig.MaxEnvironments {
		errs = append(errs, fmt.Sprintf("environments_per_instance %d is outside 1..%d", perInstance, taskconfig.MaxEnvironments))
	}
	if fn.ReservedConcurrency != nil && *fn.ReservedConcurrency < 0 {
		errs = append(errs, fmt.Sprintf("reserved_concurrency %d is negative", *fn.ReservedConcurrency))
	}
	if pc := fn.Provisioned; pc != nil {
		if pc.Min < 0 || pc.Max < 0 {
			errs = append(errs, "provisioned_concurrency min and max must not be negative")
		}
		if pc.TargetUtilization < 0 || pc.TargetUtilization > 1 {
			errs = append(errs, fmt.Sprintf("provisioned_concurrency target_utilization %v is outside (0,1]", pc.TargetUtilization))
		}
	}
	for i, s := range fn.Secrets {
		if s == nil || s.Env == "" || s.Path == "" || s.Key == "" {
			errs = append(errs, fmt.Sprintf("secret %d needs env, path and key", i))
		}
	}
	specJSON, err := encodeSpec(fn)
	if err != nil {
		errs = append(errs, fmt.Sprintf("encoding spec: %v", err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: function %q: %s", ErrInvalid, fn.Name, strings.Join(errs, "; "))
	}

	c := &compiler{fn: fn, opts: opts, perInstance: perInstance, code: code}
	id := JobID(fn.Name, opts.Version)
	job := &api.Job{
		ID:          new(id),
		Name:        new(id),
		Type:        new("service"),
		Region:      new(opts.Region),
		Namespace:   new(opts.Namespace),
		Datacenters: opts.Datacenters,
		Priority:    new(opts.Priority),
		Meta: map[string]string{
			MetaSpec:       specJSON,
			MetaFunction:   fn.Name,
			MetaVersion:    opts.Version,
			MetaCodeSHA256: codeSum,
		},
	}
	if opts.NodePool != "" {
		job.NodePool = new(opts.NodePool)
	}
	if p := fn.Placement; p != nil {
		if p.Region != "" {
			job.Region = new(p.Region)
		}
		if len(p.Datacenters) > 0 {
			job.Datacenters = p.Datacenters
		}
		if p.Namespace != "" {
			job.Namespace = new(p.Namespace)
		}
		if p.NodePool != "" {
			job.NodePool = new(p.NodePool)
		}
		if p.Priority != 0 {
			job.Priority = new(p.Priority)
		}
		for _, ct := range p.Constraints {
			if ct == nil {
				continue
			}
			job.Constraints = append(job.Constraints, &api.Constraint{LTarget: ct.Attribute, Operand: ct.Operator, RTarget: ct.Value})
		}
	}
	if fn.Network == specs.NetworkNone {
		// Only a sandboxing client can give an environment its own network
		// namespace (the driver refuses the task elsewhere).
		job.Constraints = append(job.Constraints, &api.Constraint{LTarget: IsolationAttribute, Operand: "=", RTarget: "full"})
	}
	prov, err := c.group(GroupProvisioned)
	if err != nil {
		return nil, err
	}
	onDemand, err := c.group(GroupOnDemand)
	if err != nil {
		return nil, err
	}
	job.TaskGroups = []*api.TaskGroup{prov, onDemand}
	return job, nil
}

// IsolationAttribute is the driver's fingerprint of what isolation its
// client provides ("full" or what is missing).
const IsolationAttribute = "${attr.driver.nimbus.isolation}"

// codeArtifact resolves the function's code into an artifact and its hex
// digest.
func codeArtifact(fn *specs.Function, opts Options) (Artifact, string, []string) {
	if fn.Code == nil {
		return Artifact{}, "", []string{"code is required"}
	}
	if fn.Code.Image != "" {
		// No artifact: the driver pulls the image. The job pins its
		// digest, which stands in for the code's sha256.
		pinned := fn.Code.PinnedImage()
		if pinned == "" {
			return Artifact{}, "", []string{fmt.Sprintf("image %q names a tag: resolve it to a digest before compiling (deploy does; code.resolved_image)", fn.Code.Image)}
		}
		_, sum, _ := strings.Cut(pinned, "@sha256:")
		return Artifact{}, sum, nil
	}
	if fn.Code.URL != "" {
		sum, err := ParseChecksum(fn.Code.Checksum)
		if err != nil {
			return Artifact{}, "", []string{"code: " + err.Error()}
		}
		return Artifact{Source: fn.Code.URL, Checksum: "sha256:" + sum}, sum, nil
	}
	if fn.Code.Dir == "" && fn.Code.Zip == "" {
		return Artifact{}, "", []string{"code needs one of dir, zip or url"}
	}
	var errs []string
	sum, err := ParseChecksum(opts.CodeChecksum)
	if err != nil {
		errs = append(errs, "packaged code: "+err.Error())
	}
	if opts.ArtifactBaseURL == "" {
		errs = append(errs, "packaged code needs an artifact base URL")
	}
	if len(errs) > 0 {
		return Artifact{}, "", errs
	}
	return Artifact{
		Source:   strings.TrimRight(opts.ArtifactBaseURL, "/") + "/" + sum + ".zip",
		Checksum: "sha256:" + sum,
	}, sum, nil
}

type compiler struct {
	fn          *specs.Function
	opts        Options
	perInstance int
	code        Artifact
}

// instances is how many instances host n environments.
func (c *compiler) instances(n int) int {
	return (n + c.perInstance - 1) / c.perInstance
}

func (c *compiler) group(name string) (*api.TaskGroup, error) {
	task, err := c.task(name)
	if err != nil {
		return nil, err
	}
	g := &api.TaskGroup{
		Name:  new(name),
		Tasks: []*api.Task{task},
		Networks: []*api.NetworkResource{{
			Mode:         "host",
			DynamicPorts: []api.Port{{Label: taskconfig.DefaultPortLabel}},
		}},
		Services: []*api.Service{c.service(name)},
		RestartPolicy: &api.RestartPolicy{
			Attempts: new(restartAttempts),
			Interval: new(restartInterval),
			Delay:    new(restartDelay),
			Mode:     new("fail"),
		},
		ReschedulePolicy: &api.ReschedulePolicy{
			Unlimited:     new(true),
			Delay:         new(rescheduleDelay),
			DelayFunction: new("exponential"),
			MaxDelay:      new(rescheduleMax),
		},
		Update: c.update(),
		EphemeralDisk: &api.EphemeralDisk{
			SizeMB: new(c.storageMB()*c.perInstance + codeDiskMB),
		},
		ShutdownDelay: new(shutdownDelay),
	}
	if name == GroupProvisioned {
		g.Count, g.Scaling, err = c.provisionedScaling()
		if err != nil {
			return nil, err
		}
	} else {
		g.Count, g.Scaling = c.onDemandScaling()
	}
	return g, nil
}

// update is the groups' update strategy. Nomad refuses every scale request
// on a job while one of its deployments is active ("job scaling blocked due
// to active deployment"), so by default there are no deployments
// (max_parallel = 0: a new job version replaces instances at once, each
// leaving through shutdown_delay) and the gateway and the autoscaler can
// always scale. Options.RollingUpdates opts into rolling, health-checked,
// auto-reverting deployments at that price.
func (c *compiler) update() *api.UpdateStrategy {
	if !c.opts.RollingUpdates {
		return &api.UpdateStrategy{MaxParallel: new(0)}
	}
	return &api.UpdateStrategy{
		MaxParallel:      new(1),
		HealthCheck:      new("checks"),
		MinHealthyTime:   new(minHealthyTime),
		HealthyDeadline:  new(healthyDeadline),
		ProgressDeadline: new(progressDeadline),
		AutoRevert:       new(true),
	}
}

func (c *compiler) storageMB() int {
	if c.fn.EphemeralStorageMB > 0 {
		return c.fn.EphemeralStorageMB
	}
	return 512
}

func (c *compiler) memoryMB() int {
	if c.fn.MemoryMB > 0 {
		return c.fn.MemoryMB
	}
	return taskconfig.DefaultMemoryMB
}

// provisionedScaling is the group's count and the scaling policy the Nomad
// Autoscaler runs with our APM and strategy plugins. Counts are instances;
// the spec's provisioned concurrency is environments.
func (c *compiler) provisionedScaling() (*int, *api.ScalingPolicy, error) {
	pc := c.fn.Provisioned
	if pc == nil {
		return new(0), &api.ScalingPolicy{
			Enabled: new(false),
			Min:     new(int64(0)),
			Max:     new(int64(0)),
		}, nil
	}
	minEnv, maxEnv := pc.Min, pc.Max
	if maxEnv < minEnv {
		maxEnv = minEnv
	}
	minInst, maxInst := c.instances(minEnv), c.instances(maxEnv)
	target := pc.TargetUtilization
	if target == 0 {
		target = DefaultTargetUtilization
	}
	strategy := map[string]any{
		StrategyTarget: target,
		StrategyMin:    minInst,
		StrategyMax:    maxInst,
	}
	if len(pc.Schedules) > 0 {
		s, err := c.schedules(pc.Schedules, maxInst)
		if err != nil {
			return nil, nil, err
		}
		strategy[StrategySchedules] = s
	}
	policy := map[string]any{
		"evaluation_interval": evaluationInterval,
		"cooldown":            cooldown,
		"check": []any{map[string]any{CheckName: []any{map[string]any{
			"source":   APMSource,
			"query":    c.fn.Name + "/" + c.opts.Version,
			"strategy": []any{map[string]any{StrategyName: []any{strategy}}},
		}}}},
	}
	return new(minInst), &api.ScalingPolicy{
		Enabled: new(maxInst > 0),
		Min:     new(int64(minInst)),
		Max:     new(int64(maxInst)),
		Policy:  policy,
	}, nil
}

// scheduleConfig is one scheduled window as the strategy reads it (JSON in
// the `schedules` strategy config value: the autoscaler hands strategy
// config to plugins as strings, so structured values travel as JSON).
type scheduleConfig struct {
	Name     string `json:"name"`
	Cron     string `json:"cron"`
	Duration string `json:"duration"`
	Timezone string `json:"timezone"`
	// Min is the window's floor in instances.
	Min int `json:"min"`
}

func (c *compiler) schedules(in []*specs.Schedule, maxInst int) (string, error) {
	out := make([]scheduleConfig, 0, len(in))
	for _, s := range in {
		if s == nil {
			continue
		}
		sc := scheduleConfig{
			Name:     s.Name,
			Cron:     s.Cron,
			Duration: s.Duration,
			Timezone: s.Timezone,
			Min:      min(c.instances(s.Min), maxInst),
		}
		if sc.Duration == "" {
			sc.Duration = "1h0m0s"
		}
		if sc.Timezone == "" {
			sc.Timezone = "UTC"
		}
		out = append(out, sc)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encoding schedules of function %q: %w", c.fn.Name, err)
	}
	return string(b), nil
}

// onDemandScaling: the gateway owns the count (0 at deploy); a disabled
// policy gives the scale API its bounds.
func (c *compiler) onDemandScaling() (*int, *api.ScalingPolicy) {
	limit := c.opts.DefaultConcurrency
	if rc := c.fn.ReservedConcurrency; rc != nil {
		limit = *rc
	}
	return new(0), &api.ScalingPolicy{
		Enabled: new(false),
		Min:     new(int64(0)),
		Max:     new(int64(c.instances(limit))),
	}
}

func (c *compiler) service(group string) *api.Service {
	s := &api.Service{
		Name:      ServiceName(c.fn.Name),
		PortLabel: taskconfig.DefaultPortLabel,
		Provider:  c.opts.ServiceProvider,
		Tags: []string{
			"function=" + c.fn.Name,
			"version=" + c.opts.Version,
			"group=" + group,
		},
		Meta: map[string]string{
			"function": c.fn.Name,
			"version":  c.opts.Version,
			"group":    group,
		},
		Checks: []api.ServiceCheck{{
			Name:     "nimbus-health",
			Type:     "http",
			Path:     invokeapi.PathHealth,
			Interval: checkInterval,
			Timeout:  checkTimeout,
		}},
	}
	if c.opts.Connect {
		// A Connect-native service names its task (Nomad requires it);
		// the health check speaks TLS to the endpoint without a client
		// certificate, which the instance allows for the health path only,
		// and skips verification: the leaf names a SPIFFE identity, not a
		// host.
		s.TaskName = TaskName
		s.Connect = &api.ConsulConnect{Native: true}
		s.Checks[0].Protocol = "https"
		s.Checks[0].TLSSkipVerify = true
	}
	return s
}

func (c *compiler) task(group string) (*api.Task, error) {
	fn := c.fn
	tc := taskconfig.TaskConfig{
		Function:           fn.Name,
		Version:            c.opts.Version,
		Runtime:            fn.Runtime,
		Handler:            fn.Handler,
		MemoryMB:           fn.MemoryMB,
		Timeout:            fn.Timeout,
		EphemeralStorageMB: fn.EphemeralStorageMB,
		Environments:       c.perInstance,
		InitializationType: taskconfig.InitOnDemand,
		InvokePort:         taskconfig.DefaultPortLabel,
		RunAs:              c.opts.RunAs,
		Network:            fn.Network,
		Region:             c.opts.AWSRegion,
		AccountID:          c.opts.AccountID,
	}
	if c.opts.Connect {
		tc.ConnectService = ServiceName(fn.Name)
	} else {
		tc.InvokeSecretFile = InvokeSecretFile
	}
	if group == GroupProvisioned {
		tc.InitializationType = taskconfig.InitProvisioned
	}
	// Bundles over http(s) with a sha256 — the artifact store's and most
	// code URLs — are fetched by the driver into its client-wide cache, so
	// a task that starts again on a client skips the download and unpack
	// Nomad's artifact hook would repeat for every allocation. Other
	// go-getter sources (s3::, git::, …) stay artifact blocks.
	var artifacts []*api.TaskArtifact
	switch {
	case fn.IsImage():
		// An image function: the driver pulls the pinned image; no code
		// artifact and no layers (specs refuses them).
		tc.Image = fn.Code.PinnedImage()
		if ic := fn.ImageConfig; ic != nil {
			tc.ImageEntrypoint, tc.ImageCommand, tc.ImageWorkingDirectory = ic.Entrypoint, ic.Command, ic.WorkingDirectory
		}
	default:
		if u, sum, ok := driverFetched(c.code); ok {
			tc.CodeURL, tc.CodeSHA256 = u, sum
		} else {
			tc.CodeDir = codeDir
			artifacts = append(artifacts, artifact(c.code, tc.CodeDir))
		}
	}
	allFetched := true
	for _, l := range c.opts.LayerArtifacts {
		_, _, ok := driverFetched(l)
		allFetched = allFetched && ok
	}
	for i, l := range c.opts.LayerArtifacts {
		if u, sum, ok := driverFetched(l); ok && allFetched {
			tc.LayerURLs = append(tc.LayerURLs, u)
			tc.LayerSHA256s = append(tc.LayerSHA256s, sum)
			continue
		}
		dir := "local/layers/" + strconv.Itoa(i)
		tc.LayerDirs = append(tc.LayerDirs, dir)
		artifacts = append(artifacts, artifact(l, dir))
	}
	if err := tc.Normalize(); err != nil {
		return nil, fmt.Errorf("%w: function %q: %w", ErrInvalid, fn.Name, err)
	}
	config, err := configMap(&tc)
	if err != nil {
		return nil, fmt.Errorf("encoding task config of function %q: %w", fn.Name, err)
	}
	if tc.IsImage() {
		delete(config, "runtime") // an image function has none
	}

	memory := c.memoryMB()
	task := &api.Task{
		Name:      TaskName,
		Driver:    taskconfig.DriverName,
		Config:    config,
		Artifacts: artifacts,
		Resources: &api.Resources{
			CPU:      new(max(minCPU, (memory*c.perInstance*c.opts.MHzPerVCPU+MemoryPerVCPU-1)/MemoryPerVCPU)),
			MemoryMB: new(memory*c.perInstance + c.opts.InstanceOverheadMB),
		},
		KillTimeout: new(min(tc.TimeoutDuration()+killGrace, maxKillTimeout)),
		Meta: map[string]string{
			MetaFunction: fn.Name,
			MetaVersion:  c.opts.Version,
		},
	}
	if len(fn.Environment) > 0 {
		task.Env = make(map[string]string, len(fn.Environment))
		for k, v := range fn.Environment {
			task.Env[k] = v
		}
	}
	if !c.opts.Connect {
		task.Templates = []*api.Template{invokeSecretTemplate(JobID(fn.Name, c.opts.Version))}
	}
	if t := secretsTemplate(fn.Secrets); t != nil {
		task.Templates = append(task.Templates, t)
	}
	return task, nil
}

// driverFetched reports whether the driver's bundle cache can fetch a: a
// plain http(s) URL and a sha256 checksum.
func driverFetched(a Artifact) (url, sum string, ok bool) {
	sum, isSHA := strings.CutPrefix(a.Checksum, "sha256:")
	if !isSHA || len(sum) != 64 || strings.Contains(a.Source, "::") {
		return "", "", false
	}
	if !strings.HasPrefix(a.Source, "http://") && !strings.HasPrefix(a.Source, "https://") {
		return "", "", false
	}
	return a.Source, strings.ToLower(sum), true
}

func artifact(a Artifact, dest string) *api.TaskArtifact {
	return &api.TaskArtifact{
		GetterSource:  new(a.Source),
		GetterOptions: map[string]string{"checksum": a.Checksum},
		RelativeDest:  new(dest),
	}
}

// configMap turns the task config into the map Nomad's JSON job carries,
// using the contract's json tags as attribute names.
func configMap(tc *taskconfig.TaskConfig) (map[string]any, error) {
	b, err := json.Marshal(tc)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	// JSON numbers decode as float64; keep whole numbers as ints so the
	// job's JSON and HCL show 128, not 128.0.
	for k, v := range m {
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			m[k] = int(f)
		}
	}
	return m, nil
}

// secretsTemplate renders every secret into an env file read from Nomad
// Variables. Secrets are grouped by variable path, in a fixed order.
func secretsTemplate(secrets []*specs.Secret) *api.Template {
	if len(secrets) == 0 {
		return nil
	}
	byPath := map[string][]*specs.Secret{}
	for _, s := range secrets {
		byPath[s.Path] = append(byPath[s.Path], s)
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		list := byPath[p]
		sort.SliceStable(list, func(i, j int) bool { return list[i].Env < list[j].Env })
		fmt.Fprintf(&b, "{{ with nomadVar %q }}\n", p)
		for _, s := range list {
			fmt.Fprintf(&b, "%s={{ index . %q | toJSON }}\n", s.Env, s.Key)
		}
		b.WriteString("{{ end }}\n")
	}
	return &api.Template{
		EmbeddedTmpl: new(b.String()),
		DestPath:     new(secretsFile),
		Envvars:      new(true),
		ChangeMode:   new("restart"),
		Perms:        new("0400"),
	}
}

// encodeSpec is the canonical JSON of the function for job meta.
func encodeSpec(fn *specs.Function) (string, error) {
	b, err := specs.Encode(fn)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// codeDir is where an artifact block unpacks code the driver does not fetch.
const codeDir = "local/code"

// Bundles lists the code and layer bundles a compiled task fetches, code
// first, whichever way the task fetches them: named in its config for the
// driver's bundle cache, or through artifact blocks.
func Bundles(task *api.Task) []Artifact {
	var out []Artifact
	str := func(v any) string { s, _ := v.(string); return s }
	list := func(v any) []string {
		switch l := v.(type) {
		case []string:
			return l
		case []any:
			out := make([]string, len(l))
			for i, x := range l {
				out[i] = str(x)
			}
			return out
		}
		return nil
	}
	var code, layers []Artifact
	if u := str(task.Config[taskconfig.AttrCodeURL]); u != "" {
		code = append(code, Artifact{Source: u, Checksum: "sha256:" + str(task.Config[taskconfig.AttrCodeSHA256])})
	}
	urls, sums := list(task.Config[taskconfig.AttrLayerURLs]), list(task.Config[taskconfig.AttrLayerSHA256s])
	for i, u := range urls {
		if i < len(sums) {
			layers = append(layers, Artifact{Source: u, Checksum: "sha256:" + sums[i]})
		}
	}
	for _, a := range task.Artifacts {
		if a.GetterSource == nil {
			continue
		}
		b := Artifact{Source: *a.GetterSource, Checksum: a.GetterOptions["checksum"]}
		if a.RelativeDest != nil && *a.RelativeDest == codeDir {
			code = append(code, b)
		} else {
			layers = append(layers, b)
		}
	}
	out = append(code, layers...)
	return out
}
