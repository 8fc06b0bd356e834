package nomad

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/discovery"
)

// JobScaler is the part of the Nomad jobs API the Scaler uses (*api.Jobs).
type JobScaler interface {
	Scale(jobID, group string, count *int, message string, error bool, meta map[string]any, q *api.WriteOptions) (*api.JobRegisterResponse, *api.WriteMeta, error)
	ScaleStatus(jobID string, q *api.QueryOptions) (*api.JobScaleStatusResponse, *api.QueryMeta, error)
}

var _ JobScaler = (*api.Jobs)(nil)

// Scaling event meta keys.
const (
	ScaleMetaFunction = "nimbus.function"
	ScaleMetaVersion  = "nimbus.version"
	ScaleMetaGateway  = "nimbus.gateway"
	ScaleMetaReason   = "nimbus.reason"
	ScaleMetaPrevious = "nimbus.previous_count"
)

// Scale reasons in event meta.
const (
	ReasonScaleOut = "scale-out"
	ReasonScaleIn  = "scale-in"
	ReasonSet      = "set" // no earlier count known to this gateway
)

// Errors OnDemand wraps.
var (
	// ErrNegativeCount: a count below zero was asked for.
	ErrNegativeCount = errors.New("on-demand count is negative")
	// ErrDeploymentActive: Nomad refuses to scale a job while one of its
	// deployments is active (jobs compiled with rolling updates); ask again
	// once it ends.
	ErrDeploymentActive = errors.New("job scaling blocked by an active deployment")
)

// LatestVersion is the mutable version's name.
const LatestVersion = "$LATEST"

// DefaultJobID is the compiler's naming (jobs.JobID): "nimbus-<fn>" for
// $LATEST, "nimbus-<fn>-<version>" for a published version.
func DefaultJobID(function, version string) (string, error) {
	if version == "" || version == LatestVersion {
		return "nimbus-" + function, nil
	}
	return "nimbus-" + function + "-" + version, nil
}

// ScalerConfig configures a Scaler. Zero values take the defaults noted.
type ScalerConfig struct {
	// Group is the task group the gateway owns. Default "ondemand".
	Group string
	// JobID maps a function version to its job. Default DefaultJobID;
	// Catalog.JobID uses the job IDs actually listed.
	JobID func(function, version string) (string, error)
	// Namespace and Region of the jobs. Default: the client's.
	Namespace string
	Region    string
	// GatewayID names this gateway in scaling events. Default: the hostname.
	GatewayID string
	// Repeat suppresses asking again for the count this scaler last set for
	// a version within this window (the router may ask on every parked
	// request). Default 5s; negative sends every request.
	Repeat time.Duration
}

// Defaults fills empty fields.
func (c *ScalerConfig) Defaults() {
	if c.Group == "" {
		c.Group = discovery.GroupOnDemand
	}
	if c.JobID == nil {
		c.JobID = DefaultJobID
	}
	if c.GatewayID == "" {
		c.GatewayID, _ = os.Hostname()
	}
	if c.Repeat == 0 {
		c.Repeat = 5 * time.Second
	}
}

// Scaler sets the on-demand group's count of function versions through
// Nomad's job scale API. Safe for concurrent use.
type Scaler struct {
	jobs   JobScaler
	cfg    ScalerConfig
	logger hclog.Logger
	now    func() time.Time

	mu   sync.Mutex // guards last
	last map[[2]string]sent
}

type sent struct {
	count int
	at    time.Time
}

// NewScaler returns a Scaler.
func NewScaler(jobs JobScaler, cfg ScalerConfig, logger hclog.Logger) (*Scaler, error) {
	cfg.Defaults()
	if jobs == nil {
		return nil, errors.New("nomad scaler needs a jobs client")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Scaler{jobs: jobs, cfg: cfg, logger: logger.Named("nomad-scaler"), now: time.Now, last: map[[2]string]sent{}}, nil
}

// OnDemand sets the version's on-demand group count to want.
func (s *Scaler) OnDemand(ctx context.Context, function, version string, want int) error {
	if want < 0 {
		return fmt.Errorf("scaling %s:%s to %d: %w", function, version, want, ErrNegativeCount)
	}
	jobID, err := s.cfg.JobID(function, version)
	if err != nil {
		return fmt.Errorf("scaling %s:%s: %w", function, version, err)
	}
	key := [2]string{function, version}
	s.mu.Lock()
	prev, known := s.last[key]
	s.mu.Unlock()
	now := s.now()
	if known && prev.count == want && s.cfg.Repeat > 0 && now.Sub(prev.at) < s.cfg.Repeat {
		return nil
	}
	reason := ReasonSet
	meta := map[string]any{
		ScaleMetaFunction: function,
		ScaleMetaVersion:  version,
		ScaleMetaGateway:  s.cfg.GatewayID,
	}
	if known {
		meta[ScaleMetaPrevious] = prev.count
		switch {
		case want > prev.count:
			reason = ReasonScaleOut
		case want < prev.count:
			reason = ReasonScaleIn
		}
	}
	meta[ScaleMetaReason] = reason
	msg := "nimbus gateway " + s.cfg.GatewayID + ": " + reason + " on-demand instances of " + function + ":" + version + " to " + strconv.Itoa(want)
	q := (&api.WriteOptions{Namespace: s.cfg.Namespace, Region: s.cfg.Region}).WithContext(ctx)
	count := want
	resp, _, err := s.jobs.Scale(jobID, s.cfg.Group, &count, msg, false, meta, q)
	if err != nil {
		// Nomad answers 400 "job scaling blocked due to active deployment".
		if strings.Contains(err.Error(), "active deployment") {
			return fmt.Errorf("scaling job %s group %s to %d: %w: %w", jobID, s.cfg.Group, want, ErrDeploymentActive, err)
		}
		return fmt.Errorf("scaling job %s group %s to %d: %w", jobID, s.cfg.Group, want, err)
	}
	s.mu.Lock()
	s.last[key] = sent{count: want, at: now}
	s.mu.Unlock()
	evalID := ""
	if resp != nil {
		evalID = resp.EvalID
	}
	s.logger.Info("set on-demand count", "function", function, "version", version, "job_id", jobID,
		"count", want, "reason", reason, "eval_id", evalID)
	return nil
}

// Status returns the scale status of a version's on-demand group (desired,
// placed, running, healthy counts and recent events).
func (s *Scaler) Status(ctx context.Context, function, version string) (*api.TaskGroupScaleStatus, error) {
	jobID, err := s.cfg.JobID(function, version)
	if err != nil {
		return nil, fmt.Errorf("scale status of %s:%s: %w", function, version, err)
	}
	q := (&api.QueryOptions{Namespace: s.cfg.Namespace, Region: s.cfg.Region}).WithContext(ctx)
	st, _, err := s.jobs.ScaleStatus(jobID, q)
	if err != nil {
		return nil, fmt.Errorf("reading scale status of job %s: %w", jobID, err)
	}
	g, ok := st.TaskGroups[s.cfg.Group]
	if !ok {
		return nil, fmt.Errorf("job %s has no group %s", jobID, s.cfg.Group)
	}
	return &g, nil
}
