package submit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/jobs"
)

// Jobs is the part of Nomad's jobs API the submitter uses.
type Jobs interface {
	Info(jobID string, q *api.QueryOptions) (*api.Job, *api.QueryMeta, error)
	PlanOpts(job *api.Job, opts *api.PlanOptions, q *api.WriteOptions) (*api.JobPlanResponse, *api.WriteMeta, error)
	RegisterOpts(job *api.Job, opts *api.RegisterOptions, q *api.WriteOptions) (*api.JobRegisterResponse, *api.WriteMeta, error)
	Deregister(jobID string, purge bool, q *api.WriteOptions) (string, *api.WriteMeta, error)
	Scale(jobID, group string, count *int, message string, error bool, meta map[string]any, q *api.WriteOptions) (*api.JobRegisterResponse, *api.WriteMeta, error)
}

var _ Jobs = (*api.Jobs)(nil)

// Variables is the part of Nomad's variables API the submitter uses to keep
// each job's own variable (jobs.InvokeVariable), which holds the secrets
// compiled jobs leave out.
type Variables interface {
	Read(path string, q *api.QueryOptions) (*api.Variable, *api.QueryMeta, error)
	CheckedCreate(v *api.Variable, q *api.WriteOptions) (*api.Variable, *api.WriteMeta, error)
	CheckedUpdate(v *api.Variable, q *api.WriteOptions) (*api.Variable, *api.WriteMeta, error)
	CheckedDelete(path string, checkIndex uint64, q *api.WriteOptions) (*api.WriteMeta, error)
}

var _ Variables = (*api.Variables)(nil)

// casAttempts bounds the read-modify-write rounds on a job's variable when
// another writer keeps changing it.
const casAttempts = 5

// ErrNoJob: the job is not registered.
var ErrNoJob = errors.New("job not found")

// Scope names where a job lives. Empty fields use the client's defaults.
type Scope struct {
	Namespace string
	Region    string
}

// ScopeOf is the scope a job declares.
func ScopeOf(job *api.Job) Scope {
	var s Scope
	if job.Namespace != nil {
		s.Namespace = *job.Namespace
	}
	if job.Region != nil {
		s.Region = *job.Region
	}
	return s
}

func (s Scope) query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{Namespace: s.Namespace, Region: s.Region}).WithContext(ctx)
}

func (s Scope) write(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{Namespace: s.Namespace, Region: s.Region}).WithContext(ctx)
}

// Submitter talks to Nomad for the CLI and the gateway.
type Submitter struct {
	jobs Jobs
	vars Variables
	log  hclog.Logger
}

// New returns a Submitter over jobs and vars (normally client.Jobs() and
// client.Variables()).
func New(jobs Jobs, vars Variables, log hclog.Logger) *Submitter {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Submitter{jobs: jobs, vars: vars, log: log}
}

// Current returns the registered job, or ErrNoJob.
func (s *Submitter) Current(ctx context.Context, scope Scope, jobID string) (*api.Job, error) {
	job, _, err := s.jobs.Info(jobID, scope.query(ctx))
	if err != nil {
		var ure api.UnexpectedResponseError
		if errors.As(err, &ure) && ure.StatusCode() == http.StatusNotFound {
			return nil, fmt.Errorf("reading job %s: %w", jobID, ErrNoJob)
		}
		return nil, fmt.Errorf("reading job %s: %w", jobID, err)
	}
	return job, nil
}

// current is Current with "not found" as a nil job.
func (s *Submitter) current(ctx context.Context, job *api.Job) (*api.Job, error) {
	if job == nil || job.ID == nil || *job.ID == "" {
		return nil, errors.New("job has no ID")
	}
	cur, err := s.Current(ctx, ScopeOf(job), *job.ID)
	if errors.Is(err, ErrNoJob) {
		return nil, nil
	}
	return cur, err
}

// PreserveCounts returns a copy of job whose groups that also exist in
// current carry current's counts, and the counts it kept. A kept count
// outside the new group's scaling bounds is clamped into them (Nomad would
// refuse the job otherwise) and the group is listed in clamped. job is not
// modified; a nil current returns job's groups unchanged.
func PreserveCounts(job, current *api.Job) (out *api.Job, kept map[string]int, clamped []string) {
	cp := *job
	out = &cp
	out.TaskGroups = make([]*api.TaskGroup, len(job.TaskGroups))
	kept = map[string]int{}
	have := map[string]int{}
	if current != nil {
		for _, g := range current.TaskGroups {
			if g != nil && g.Name != nil && g.Count != nil {
				have[*g.Name] = *g.Count
			}
		}
	}
	for i, g := range job.TaskGroups {
		if g == nil || g.Name == nil {
			out.TaskGroups[i] = g
			continue
		}
		gc := *g
		if n, ok := have[*g.Name]; ok {
			if sc := g.Scaling; sc != nil {
				if sc.Max != nil && int64(n) > *sc.Max {
					n = int(*sc.Max)
					clamped = append(clamped, *g.Name)
				} else if sc.Min != nil && int64(n) < *sc.Min {
					n = int(*sc.Min)
					clamped = append(clamped, *g.Name)
				}
			}
			gc.Count = new(n)
			kept[*g.Name] = n
		}
		out.TaskGroups[i] = &gc
	}
	return out, kept, clamped
}

// Result describes a registration.
type Result struct {
	JobID          string
	EvalID         string
	JobModifyIndex uint64
	Warnings       string
	// Created is true when the job did not exist before.
	Created bool
	// PreservedCounts are the group counts kept from the running job.
	PreservedCounts map[string]int
	// Clamped lists groups whose running count fell outside the new
	// scaling bounds and was moved to the nearest bound.
	Clamped []string
}

// Register writes the job's variable, then registers job, keeping the
// counts of groups that already run.
//
// secrets is the job's own variable (jobs.InvokeVariable): its items are
// set, check-and-set, before the job is registered, so no task waits on a
// missing secret; items others keep in that variable stay. A
// Connect-native job (jobs.ReadsInvokeSecret false) takes nil: it reads no
// secret, and an invoke secret an earlier plain version left is removed.
//
// It reads the current job first and also asks Nomad to preserve counts, so
// a scale that lands between the read and the write is kept too — unless a
// kept count had to be clamped into new scaling bounds, when the clamped
// counts are sent as they are.
func (s *Submitter) Register(ctx context.Context, job *api.Job, secrets *api.Variable) (*Result, error) {
	return s.register(ctx, job, secrets, nil)
}

// RegisterAt is Register with Nomad's check-index: the job must be at
// modify index (0: not registered yet), or the registration fails with an
// error IsIndexConflict recognises and nothing is changed.
func (s *Submitter) RegisterAt(ctx context.Context, job *api.Job, secrets *api.Variable, index uint64) (*Result, error) {
	return s.register(ctx, job, secrets, &index)
}

// IsIndexConflict reports whether err is Nomad refusing a registration
// whose check-index is stale: the job exists at another index, exists
// when 0 said it must not, or is gone (Nomad's messages all start with
// "Enforcing job modify index").
func IsIndexConflict(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Enforcing job modify index")
}

func (s *Submitter) register(ctx context.Context, job *api.Job, secrets *api.Variable, index *uint64) (*Result, error) {
	cur, err := s.current(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("registering job: %w", err)
	}
	switch {
	case !jobs.ReadsInvokeSecret(job):
		// Connect-native: mutual TLS replaces the secret. A secret left by
		// an earlier, plain version of the job is removed, not kept unused.
		if secrets != nil {
			return nil, fmt.Errorf("registering job %s: it is Connect-native and reads no invoke secret, yet a variable was given", *job.ID)
		}
		if err := s.dropVariable(ctx, ScopeOf(job), jobs.VariablePath(*job.ID)); err != nil {
			return nil, fmt.Errorf("registering job %s: %w", *job.ID, err)
		}
	case secrets == nil || secrets.Path != jobs.VariablePath(*job.ID):
		return nil, fmt.Errorf("registering job %s: its variable %s is required", *job.ID, jobs.VariablePath(*job.ID))
	default:
		if err := s.putVariable(ctx, ScopeOf(job), secrets); err != nil {
			return nil, fmt.Errorf("registering job %s: %w", *job.ID, err)
		}
	}
	toSend, kept, clamped := PreserveCounts(job, cur)
	opts := &api.RegisterOptions{PreserveCounts: len(clamped) == 0}
	if index != nil {
		opts.EnforceIndex, opts.ModifyIndex = true, *index
	}
	resp, _, err := s.jobs.RegisterOpts(toSend, opts, ScopeOf(job).write(ctx))
	if err != nil {
		return nil, fmt.Errorf("registering job %s: %w", *job.ID, err)
	}
	res := &Result{
		JobID:           *job.ID,
		EvalID:          resp.EvalID,
		JobModifyIndex:  resp.JobModifyIndex,
		Warnings:        resp.Warnings,
		Created:         cur == nil,
		PreservedCounts: kept,
		Clamped:         clamped,
	}
	s.log.Info("registered job", "function", job.Meta[jobs.MetaFunction], "version", job.Meta[jobs.MetaVersion],
		"job", res.JobID, "eval_id", res.EvalID, "created", res.Created)
	return res, nil
}

// Plan is a dry run of Register: Nomad's plan of job with the running
// counts kept.
type Plan struct {
	JobID    string
	Created  bool
	Response *api.JobPlanResponse
}

// Plan asks Nomad what registering job would change.
func (s *Submitter) Plan(ctx context.Context, job *api.Job) (*Plan, error) {
	cur, err := s.current(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("planning job: %w", err)
	}
	toSend, _, _ := PreserveCounts(job, cur)
	resp, _, err := s.jobs.PlanOpts(toSend, &api.PlanOptions{Diff: true}, ScopeOf(job).write(ctx))
	if err != nil {
		return nil, fmt.Errorf("planning job %s: %w", *job.ID, err)
	}
	return &Plan{JobID: *job.ID, Created: cur == nil, Response: resp}, nil
}

// Deregister stops the job (and purges it when purge is set), then removes
// the secrets Register put in its variable (the whole variable when they
// are all it holds); it returns the evaluation ID. A stopped job started
// again needs them back: deploy it again.
func (s *Submitter) Deregister(ctx context.Context, scope Scope, jobID string, purge bool) (string, error) {
	evalID, _, err := s.jobs.Deregister(jobID, purge, scope.write(ctx))
	if err != nil {
		return "", fmt.Errorf("deregistering job %s: %w", jobID, err)
	}
	s.log.Info("deregistered job", "job", jobID, "eval_id", evalID, "purge", purge)
	if err := s.dropVariable(ctx, scope, jobs.VariablePath(jobID)); err != nil {
		return evalID, fmt.Errorf("deregistered job %s: %w", jobID, err)
	}
	return evalID, nil
}

func casConflict(err error) bool {
	var c api.ErrCASConflict
	return errors.As(err, &c)
}

// readVariable is the variable at path, or nil when there is none.
func (s *Submitter) readVariable(ctx context.Context, scope Scope, path string) (*api.Variable, error) {
	v, _, err := s.vars.Read(path, scope.query(ctx))
	if errors.Is(err, api.ErrVariablePathNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading variable %s: %w", path, err)
	}
	return v, nil
}

// putVariable sets want's items in the variable at want.Path, keeping its
// other items, with check-and-set on the index it read; an unchanged
// variable is not written.
func (s *Submitter) putVariable(ctx context.Context, scope Scope, want *api.Variable) error {
	for range casAttempts {
		cur, err := s.readVariable(ctx, scope, want.Path)
		if err != nil {
			return err
		}
		items := api.VariableItems{}
		if cur != nil {
			for k, v := range cur.Items {
				items[k] = v
			}
		}
		changed := cur == nil
		for k, v := range want.Items {
			if items[k] != v {
				items[k], changed = v, true
			}
		}
		if !changed {
			return nil
		}
		v := &api.Variable{Namespace: scope.Namespace, Path: want.Path, Items: items}
		if cur == nil {
			_, _, err = s.vars.CheckedCreate(v, scope.write(ctx))
		} else {
			v.ModifyIndex = cur.ModifyIndex
			_, _, err = s.vars.CheckedUpdate(v, scope.write(ctx))
		}
		if casConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing variable %s: %w", want.Path, err)
		}
		s.log.Info("wrote job variable", "variable", want.Path, "created", cur == nil)
		return nil
	}
	return fmt.Errorf("writing variable %s: it kept changing under %d check-and-set attempts", want.Path, casAttempts)
}

// dropVariable removes the invoke secret from the variable at path, and the
// variable itself when nothing else is left in it.
func (s *Submitter) dropVariable(ctx context.Context, scope Scope, path string) error {
	for range casAttempts {
		cur, err := s.readVariable(ctx, scope, path)
		if err != nil || cur == nil {
			return err
		}
		if _, ok := cur.Items[jobs.VariableInvokeSecret]; !ok {
			return nil
		}
		if len(cur.Items) == 1 {
			_, err = s.vars.CheckedDelete(path, cur.ModifyIndex, scope.write(ctx))
		} else {
			items := api.VariableItems{}
			for k, v := range cur.Items {
				if k != jobs.VariableInvokeSecret {
					items[k] = v
				}
			}
			_, _, err = s.vars.CheckedUpdate(&api.Variable{Namespace: scope.Namespace, Path: path, Items: items, ModifyIndex: cur.ModifyIndex}, scope.write(ctx))
		}
		if casConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("removing the invoke secret from variable %s: %w", path, err)
		}
		s.log.Info("removed the invoke secret from the job variable", "variable", path)
		return nil
	}
	return fmt.Errorf("removing the invoke secret from variable %s: it kept changing under %d check-and-set attempts", path, casAttempts)
}

// Scale sets a group's count through Nomad's scale API (which checks it
// against the group's scaling bounds); it returns the evaluation ID.
func (s *Submitter) Scale(ctx context.Context, scope Scope, jobID, group string, count int, reason string) (string, error) {
	if count < 0 {
		return "", fmt.Errorf("scaling job %s group %s: count %d is negative", jobID, group, count)
	}
	resp, _, err := s.jobs.Scale(jobID, group, &count, reason, false, nil, scope.write(ctx))
	if err != nil {
		return "", fmt.Errorf("scaling job %s group %s to %d: %w", jobID, group, count, err)
	}
	s.log.Debug("scaled group", "job", jobID, "group", group, "count", count, "eval_id", resp.EvalID)
	return resp.EvalID, nil
}

// FormatDiff writes a plan's job diff as indented lines: "+" added, "-"
// deleted, "~" edited, with field changes as old => new. A nil diff or a
// diff of type "None" gives "no changes".
func FormatDiff(d *api.JobDiff) string {
	if d == nil || d.Type == "None" || d.Type == "" {
		return "no changes\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s job %q\n", mark(d.Type), d.ID)
	writeFields(&b, "  ", d.Fields)
	writeObjects(&b, "  ", d.Objects)
	for _, g := range d.TaskGroups {
		if g.Type == "None" && len(g.Updates) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s group %q", mark(g.Type), g.Name)
		if len(g.Updates) > 0 {
			keys := make([]string, 0, len(g.Updates))
			for k := range g.Updates {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%d %s", g.Updates[k], k))
			}
			fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
		}
		b.WriteString("\n")
		writeFields(&b, "    ", g.Fields)
		writeObjects(&b, "    ", g.Objects)
		for _, t := range g.Tasks {
			if t.Type == "None" {
				continue
			}
			fmt.Fprintf(&b, "    %s task %q\n", mark(t.Type), t.Name)
			writeFields(&b, "      ", t.Fields)
			writeObjects(&b, "      ", t.Objects)
		}
	}
	return b.String()
}

func mark(typ string) string {
	switch typ {
	case "Added":
		return "+"
	case "Deleted":
		return "-"
	case "Edited":
		return "~"
	default:
		return " "
	}
}

func writeFields(b *strings.Builder, indent string, fields []*api.FieldDiff) {
	for _, f := range fields {
		switch f.Type {
		case "None", "":
			continue
		case "Added":
			fmt.Fprintf(b, "%s+ %s: %q\n", indent, f.Name, f.New)
		case "Deleted":
			fmt.Fprintf(b, "%s- %s: %q\n", indent, f.Name, f.Old)
		default:
			fmt.Fprintf(b, "%s~ %s: %q => %q\n", indent, f.Name, f.Old, f.New)
		}
	}
}

func writeObjects(b *strings.Builder, indent string, objs []*api.ObjectDiff) {
	for _, o := range objs {
		if o.Type == "None" || o.Type == "" {
			continue
		}
		fmt.Fprintf(b, "%s%s %s\n", indent, mark(o.Type), o.Name)
		writeFields(b, indent+"  ", o.Fields)
		writeObjects(b, indent+"  ", o.Objects)
	}
}
