// Package apply puts a function's stored configuration into service on
// Nomad: it compiles the spec into the function's job (jobs.Compile),
// writes the job's invoke secret variable and registers the job with
// Nomad's check-index, so that two gateways applying at once never
// overwrite each other (the loser re-reads, and stops when the job already
// carries the revision it was applying). It also removes a deleted
// function's jobs.
//
// It may import jobs, jobs/submit, specs and driver/* leaves.
package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit"
	"github.com/nimbus-fn/nimbus/specs"
)

// MetaRevision carries the revision a job was compiled from.
const MetaRevision = "nimbus.revision"

// LayerResolver turns a spec's layer references into artifacts.
type LayerResolver func(ctx context.Context, runtime string, refs []string) ([]jobs.Artifact, error)

// Applier registers functions' jobs.
type Applier struct {
	// Submitter registers jobs and their variables.
	Submitter *submit.Submitter
	// Options are the compile options every job gets (namespace, region,
	// datacenters, service provider, account); Version and the artifacts
	// are set per call.
	Options jobs.Options
	// Key is the cluster key invoke secrets derive from.
	Key []byte
	// Layers resolves layer references (nil: functions may have none).
	Layers LayerResolver
	// Logger logs registrations.
	Logger hclog.Logger
}

// maxAttempts bounds the check-index rounds against a contended job.
const maxAttempts = 5

// Apply compiles fn at version ("$LATEST" or a number) and registers it
// unless the job already carries revision.
func (a *Applier) Apply(ctx context.Context, fn *specs.Function, version, revision string) error {
	return a.ApplyFloor(ctx, fn, fn.Provisioned, version, revision)
}

// ApplyFloor is Apply with the provisioned group compiled from floor (a
// provisioned concurrency config's block, nil: none) instead of
// fn.Provisioned. The job's meta still describes fn, so a floor change
// changes only the provisioned group's count and scaling: Nomad replaces
// no running instance of the other group. A job that carries revision (or
// fn) is registered again only when its provisioned scaling differs.
func (a *Applier) ApplyFloor(ctx context.Context, fn *specs.Function, floor *specs.ProvisionedConcurrency, version, revision string) error {
	opts := a.Options
	opts.Version = version
	if len(fn.Layers) > 0 {
		if a.Layers == nil {
			return fmt.Errorf("function %s: layers are not available here", fn.Name)
		}
		arts, err := a.Layers(ctx, fn.Runtime, fn.Layers)
		if err != nil {
			return fmt.Errorf("function %s: layers: %w", fn.Name, err)
		}
		opts.LayerArtifacts = arts
	}
	job, err := jobs.Compile(fn, opts)
	if err != nil {
		return err
	}
	if floor != fn.Provisioned {
		run := *fn
		run.Provisioned = floor
		floored, err := jobs.Compile(&run, opts)
		if err != nil {
			return err
		}
		floored.Meta = job.Meta
		job = floored
	}
	job.Meta[MetaRevision] = revision
	secrets, err := jobs.InvokeVariable(job, a.Key)
	if err != nil {
		return err
	}
	scope := submit.ScopeOf(job)
	for range maxAttempts {
		cur, err := a.Submitter.Current(ctx, scope, *job.ID)
		if err != nil && !errors.Is(err, submit.ErrNoJob) {
			return err
		}
		var index uint64
		if cur != nil {
			if !stopped(cur) && (cur.Meta[MetaRevision] == revision || cur.Meta[jobs.MetaSpec] == job.Meta[jobs.MetaSpec]) &&
				sameScaling(group(cur, jobs.GroupProvisioned), group(job, jobs.GroupProvisioned)) {
				return nil // registered already (by another gateway, or by nimbus deploy)
			}
			index = *cur.JobModifyIndex
		}
		_, err = a.Submitter.RegisterAt(ctx, job, secrets, index)
		if submit.IsIndexConflict(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("registering job %s: still contended after %d attempts", *job.ID, maxAttempts)
}

func group(job *api.Job, name string) *api.TaskGroup {
	for _, g := range job.TaskGroups {
		if g != nil && g.Name != nil && *g.Name == name {
			return g
		}
	}
	return nil
}

// sameScaling reports whether two groups have the same scaling bounds
// (the floor and ceiling a provisioned concurrency config sets).
func sameScaling(a, b *api.TaskGroup) bool {
	if a == nil || b == nil {
		return a == b
	}
	var sa, sb api.ScalingPolicy
	if a.Scaling != nil {
		sa = *a.Scaling
	}
	if b.Scaling != nil {
		sb = *b.Scaling
	}
	return eq(sa.Min, sb.Min) && eq(sa.Max, sb.Max) && eq(sa.Enabled, sb.Enabled)
}

func eq[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func stopped(job *api.Job) bool { return job.Stop != nil && *job.Stop }

// Remove deregisters (and purges) the jobs of fn's versions.
func (a *Applier) Remove(ctx context.Context, fn string, versions []string) error {
	scope := submit.Scope{Namespace: a.Options.Namespace, Region: a.Options.Region}
	var errs []string
	for _, v := range versions {
		id := jobs.JobID(fn, v)
		if _, err := a.Submitter.Current(ctx, scope, id); errors.Is(err, submit.ErrNoJob) {
			continue
		}
		if _, err := a.Submitter.Deregister(ctx, scope, id, true); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
