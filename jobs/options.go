package jobs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Group names of every compiled job.
const (
	// GroupProvisioned holds the provisioned-concurrency instances; its count
	// belongs to the Nomad Autoscaler (scaling policy below).
	GroupProvisioned = "provisioned"
	// GroupOnDemand holds the on-demand instances; its count belongs to the
	// gateway (0 when idle).
	GroupOnDemand = "ondemand"
	// TaskName is the single task of each group.
	TaskName = "function"
)

// Meta keys every compiled job carries.
const (
	MetaSpec       = "nimbus.spec"
	MetaFunction   = "nimbus.function"
	MetaVersion    = "nimbus.version"
	MetaCodeSHA256 = "nimbus.code_sha256"
)

// Names the autoscaler plugins are configured under (the agent's `apm` and
// `strategy` block labels) and the strategy config keys the compiler writes.
// autoscaler/policy holds the same names (jobs may not import it; a test in
// e2e keeps the two in step). Every count in the strategy config — min, max
// and each schedule's min — is a group count (instances), like the policy's
// own min and max; the spec's provisioned concurrency is environments, and
// an instance hosts environments_per_instance of them.
const (
	APMSource         = "nimbus-apm"
	StrategyName      = "nimbus-target"
	CheckName         = "utilization"
	StrategyTarget    = "target"
	StrategyMin       = "min"
	StrategyMax       = "max"
	StrategySchedules = "schedules"
)

// Service providers.
const (
	ProviderConsul = "consul"
	ProviderNomad  = "nomad"
)

// Defaults applied by Options.withDefaults.
const (
	DefaultRegion             = "global"
	DefaultNamespace          = "default"
	DefaultPriority           = 50
	DefaultInstanceOverheadMB = 64
	DefaultMHzPerVCPU         = 1000
	DefaultConcurrency        = 1000
	DefaultTargetUtilization  = 0.7
	// MemoryPerVCPU is the memory at which Lambda gives a function one full vCPU.
	MemoryPerVCPU = 1769
	// LatestVersion is the mutable version.
	LatestVersion = "$LATEST"
)

// ErrInvalid wraps every error Compile returns for bad input.
var ErrInvalid = errors.New("invalid compile input")

// Artifact is a fetchable bundle: a go-getter source and its checksum.
type Artifact struct {
	// Source is the URL Nomad's artifact block fetches.
	Source string `json:"source"`
	// Checksum is "sha256:<hex>".
	Checksum string `json:"checksum"`
}

// Options are the compile inputs that are not part of the spec.
type Options struct {
	// Version is "$LATEST" or a published version number ("1", "2", …).
	// Default: "$LATEST".
	Version string `json:"version,omitempty"`
	// Region is the Nomad region; the spec's placement.region wins.
	// Default: "global".
	Region string `json:"region,omitempty"`
	// Datacenters; the spec's placement.datacenters win. Default: ["*"].
	Datacenters []string `json:"datacenters,omitempty"`
	// Namespace; the spec's placement.namespace wins. Default: "default".
	Namespace string `json:"namespace,omitempty"`
	// NodePool; the spec's placement.node_pool wins. Default: none (Nomad's "default").
	NodePool string `json:"node_pool,omitempty"`
	// Priority; the spec's placement.priority wins. Default: 50.
	Priority int `json:"priority,omitempty"`
	// ServiceProvider registers the invoke service in "consul" or "nomad".
	// Default: "consul".
	ServiceProvider string `json:"service_provider,omitempty"`
	// Connect makes each instance a Consul Connect-native service: the
	// service block says `connect { native = true }`, the task config names
	// the service (connect_service) so the instance serves its invoke
	// endpoint over mutual TLS with that service's leaf certificate, and
	// Consul intentions (nimbus-gateway → nimbus-<fn>) decide who may call
	// it. The invoke secret (its template and Nomad Variable) is then not
	// used. It is the cluster's choice, not a function's: it follows the
	// gateway's mesh setting, since only a gateway in the mesh can call
	// such instances. Needs ServiceProvider "consul". Default: false.
	Connect bool `json:"connect,omitempty"`
	// ArtifactBaseURL is where packaged code bundles are served, as
	// <base>/<sha256 hex>.zip. Required when the code is a dir or zip.
	ArtifactBaseURL string `json:"artifact_base_url,omitempty"`
	// CodeChecksum is the packaged bundle's "sha256:<hex>" (dir or zip code).
	CodeChecksum string `json:"code_checksum,omitempty"`
	// LayerArtifacts are the resolved layers, one per spec layer, in order.
	LayerArtifacts []Artifact `json:"layer_artifacts,omitempty"`
	// AWSRegion and AccountID make up the function ARN inside the instance.
	// Defaults: taskconfig's ("us-east-1", "000000000000").
	AWSRegion string `json:"aws_region,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	// RunAs is the user functions run as. Default: the driver's default.
	RunAs string `json:"run_as,omitempty"`
	// InstanceOverheadMB is added to each task's memory for the instance
	// process itself. Default: 64.
	InstanceOverheadMB int `json:"instance_overhead_mb,omitempty"`
	// MHzPerVCPU is the CPU share (Nomad MHz) a function gets at 1769 MB,
	// Lambda's one-vCPU point. Default: 1000.
	MHzPerVCPU int `json:"mhz_per_vcpu,omitempty"`
	// RollingUpdates makes a new job version roll out one instance at a
	// time behind health checks, reverting automatically on failure. Nomad
	// blocks every scale request while such a deployment is active, so the
	// gateway cannot add on-demand capacity (and the autoscaler cannot move
	// the provisioned group) until it ends. Default: false (no deployments;
	// instances are replaced at once).
	RollingUpdates bool `json:"rolling_updates,omitempty"`
	// DefaultConcurrency caps the on-demand group (in environments) when the
	// function has no reserved concurrency. Default: 1000 (Lambda's account limit).
	DefaultConcurrency int `json:"default_concurrency,omitempty"`
}

func (o Options) withDefaults() Options {
	if o.Version == "" {
		o.Version = LatestVersion
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if len(o.Datacenters) == 0 {
		o.Datacenters = []string{"*"}
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Priority == 0 {
		o.Priority = DefaultPriority
	}
	if o.ServiceProvider == "" {
		o.ServiceProvider = ProviderConsul
	}
	if o.InstanceOverheadMB == 0 {
		o.InstanceOverheadMB = DefaultInstanceOverheadMB
	}
	if o.MHzPerVCPU == 0 {
		o.MHzPerVCPU = DefaultMHzPerVCPU
	}
	if o.DefaultConcurrency == 0 {
		o.DefaultConcurrency = DefaultConcurrency
	}
	return o
}

func (o Options) validate() []string {
	var errs []string
	if !ValidVersion(o.Version) {
		errs = append(errs, fmt.Sprintf("version %q is not $LATEST or a positive number", o.Version))
	}
	switch o.ServiceProvider {
	case ProviderConsul, ProviderNomad:
	default:
		errs = append(errs, fmt.Sprintf("service provider %q is not %q or %q", o.ServiceProvider, ProviderConsul, ProviderNomad))
	}
	if o.Connect && o.ServiceProvider != ProviderConsul {
		errs = append(errs, fmt.Sprintf("connect needs service provider %q: Nomad's own services have no Consul Connect identity", ProviderConsul))
	}
	if o.InstanceOverheadMB < 0 {
		errs = append(errs, fmt.Sprintf("instance overhead %d MB is negative", o.InstanceOverheadMB))
	}
	if o.MHzPerVCPU < 0 {
		errs = append(errs, fmt.Sprintf("MHz per vCPU %d is negative", o.MHzPerVCPU))
	}
	if o.DefaultConcurrency < 0 {
		errs = append(errs, fmt.Sprintf("default concurrency %d is negative", o.DefaultConcurrency))
	}
	return errs
}

// ValidVersion reports whether v is "$LATEST" or a positive decimal number
// without leading zeros.
func ValidVersion(v string) bool {
	if v == LatestVersion {
		return true
	}
	if v == "" || v[0] == '0' {
		return false
	}
	n, err := strconv.ParseUint(v, 10, 32)
	return err == nil && n > 0
}

// JobID is the Nomad job ID of one function version: "nimbus-<fn>" for
// $LATEST, "nimbus-<fn>-<n>" for published version n.
func JobID(function, version string) string {
	if version == "" || version == LatestVersion {
		return "nimbus-" + function
	}
	return "nimbus-" + function + "-" + version
}

// ParseChecksum splits "sha256:<hex>" and returns the lowercase hex digest.
func ParseChecksum(s string) (string, error) {
	algo, sum, ok := strings.Cut(s, ":")
	if !ok || algo != "sha256" {
		return "", fmt.Errorf("checksum %q is not sha256:<hex>", s)
	}
	b, err := hex.DecodeString(sum)
	if err != nil || len(b) != 32 {
		return "", fmt.Errorf("checksum %q does not hold 64 hex digits", s)
	}
	return strings.ToLower(sum), nil
}
