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
	Info(jobID string, q *api.QueryOptions) (*api.Job, *api.QueryMeta, error)
	ScaleWithRequest(jobID string, req *api.ScalingRequest, q *api.WriteOptions) (*api.JobRegisterResponse, *api.WriteMeta, error)
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
	// ErrConflict: SetIf lost its check-and-set, the job changed since its
	// count was read (another gateway scaled it, or it was registered
	// again). Read the count again and decide again.
	ErrConflict = errors.New("job changed since its count was read")
)

// Count is a group's count as Nomad has it, with the job's modify index it
// was read at: the check-and-set token SetIf sends.
type Count struct {
	Count          int
	JobModifyIndex uint64
}

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

// OnDemand sets the version's on-demand group count to want, whatever
// Nomad's count is (gateways sharing a job use Count and SetIf instead).
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
	var previous *int
	if known {
		previous = &prev.count
	}
	if err := s.write(ctx, function, version, jobID, want, previous, 0); err != nil {
		return err
	}
	s.mu.Lock()
	s.last[key] = sent{count: want, at: now}
	s.mu.Unlock()
	return nil
}

// Count reads the version's on-demand count from its job (GET
// /v1/job/<id>), with the job modify index SetIf checks against. The scale
// status endpoint is not used for this: it reports the job's ModifyIndex,
// which moves with every status change, while the scale check compares
// JobModifyIndex.
func (s *Scaler) Count(ctx context.Context, function, version string) (Count, error) {
	jobID, err := s.cfg.JobID(function, version)
	if err != nil {
		return Count{}, fmt.Errorf("on-demand count of %s:%s: %w", function, version, err)
	}
	q := (&api.QueryOptions{Namespace: s.cfg.Namespace, Region: s.cfg.Region}).WithContext(ctx)
	job, _, err := s.jobs.Info(jobID, q)
	if err != nil {
		return Count{}, fmt.Errorf("reading job %s: %w", jobID, err)
	}
	if job.JobModifyIndex == nil || *job.JobModifyIndex == 0 {
		return Count{}, fmt.Errorf("reading job %s: no job modify index", jobID)
	}
	for _, g := range job.TaskGroups {
		if g != nil && g.Name != nil && *g.Name == s.cfg.Group {
			n := 0
			if g.Count != nil {
				n = *g.Count
			}
			return Count{Count: n, JobModifyIndex: *job.JobModifyIndex}, nil
		}
	}
	return Count{}, fmt.Errorf("job %s has no group %s", jobID, s.cfg.Group)
}

// SetIf sets the version's on-demand count to want only if the job is still
// as it was when at was read (Nomad's scale request with JobModifyIndex);
// otherwise it returns ErrConflict and changes nothing. It always writes:
// the caller read Nomad's count, so no earlier request is trusted over it.
func (s *Scaler) SetIf(ctx context.Context, function, version string, want int, at Count) error {
	if want < 0 {
		return fmt.Errorf("scaling %s:%s to %d: %w", function, version, want, ErrNegativeCount)
	}
	if at.JobModifyIndex == 0 {
		return fmt.Errorf("scaling %s:%s: a check-and-set needs the job modify index read with the count", function, version)
	}
	jobID, err := s.cfg.JobID(function, version)
	if err != nil {
		return fmt.Errorf("scaling %s:%s: %w", function, version, err)
	}
	if err := s.write(ctx, function, version, jobID, want, &at.Count, at.JobModifyIndex); err != nil {
		return err
	}
	s.mu.Lock()
	s.last[[2]string{function, version}] = sent{count: want, at: s.now()}
	s.mu.Unlock()
	return nil
}

// write sends one scale request; index, when not zero, makes it a
// check-and-set on the job modify index.
func (s *Scaler) write(ctx context.Context, function, version, jobID string, want int, previous *int, index uint64) error {
	reason := ReasonSet
	meta := map[string]any{
		ScaleMetaFunction: function,
		ScaleMetaVersion:  version,
		ScaleMetaGateway:  s.cfg.GatewayID,
	}
	if previous != nil {
		meta[ScaleMetaPrevious] = *previous
		switch {
		case want > *previous:
			reason = ReasonScaleOut
		case want < *previous:
			reason = ReasonScaleIn
		}
	}
	meta[ScaleMetaReason] = reason
	msg := "nimbus gateway " + s.cfg.GatewayID + ": " + reason + " on-demand instances of " + function + ":" + version + " to " + strconv.Itoa(want)
	q := (&api.WriteOptions{Namespace: s.cfg.Namespace, Region: s.cfg.Region}).WithContext(ctx)
	count := int64(want)
	req := &api.ScalingRequest{
		Count:          &count,
		Target:         map[string]string{"Job": jobID, "Group": s.cfg.Group},
		Message:        msg,
		Meta:           meta,
		JobModifyIndex: index,
	}
	resp, _, err := s.jobs.ScaleWithRequest(jobID, req, q)
	if err != nil {
		switch {
		// Nomad answers 400 "job scaling blocked due to active deployment".
		case strings.Contains(err.Error(), "active deployment"):
			return fmt.Errorf("scaling job %s group %s to %d: %w: %w", jobID, s.cfg.Group, want, ErrDeploymentActive, err)
		// And 500 "Enforcing job modify index N: job exists with
		// conflicting job modify index: M" when the check-and-set lost.
		case index != 0 && strings.Contains(err.Error(), "conflicting job modify index"):
			return fmt.Errorf("scaling job %s group %s to %d: %w: %w", jobID, s.cfg.Group, want, ErrConflict, err)
		}
		return fmt.Errorf("scaling job %s group %s to %d: %w", jobID, s.cfg.Group, want, err)
	}
	evalID := ""
	if resp != nil {
		evalID = resp.EvalID
	}
	s.logger.Info("set on-demand count", "function", function, "version", version, "job_id", jobID,
		"count", want, "reason", reason, "eval_id", evalID, "check_index", index)
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
