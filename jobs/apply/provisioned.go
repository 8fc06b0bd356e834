package apply

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit"
)

// Allocations is the part of Nomad's jobs API ProvisionedRunning reads.
type Allocations interface {
	Allocations(jobID string, allAllocs bool, q *api.QueryOptions) ([]*api.AllocationListStub, *api.QueryMeta, error)
	Evaluations(jobID string, q *api.QueryOptions) ([]*api.Evaluation, *api.QueryMeta, error)
}

var _ Allocations = (*api.Jobs)(nil)

// ProvisionedRunning counts the instances of the provisioned group of fn's
// version job (jobs.JobID) that Nomad runs: allocations the client reports
// running whose tasks all run. An allocation of the group that failed and
// was not replaced makes the error (with what its tasks last reported), and
// so does the job's newest evaluation (a blocked one waits for capacity)
// when it could not place the group (with the scheduler's reasons); the
// running count is returned with it. A job that is not registered runs
// nothing yet.
func ProvisionedRunning(ctx context.Context, allocs Allocations, scope submit.Scope, fn, version string) (int, error) {
	id := jobs.JobID(fn, version)
	q := (&api.QueryOptions{Namespace: scope.Namespace, Region: scope.Region}).WithContext(ctx)
	list, _, err := allocs.Allocations(id, false, q)
	if err != nil {
		var ure api.UnexpectedResponseError
		if errors.As(err, &ure) && ure.StatusCode() == http.StatusNotFound {
			return 0, nil
		}
		return 0, fmt.Errorf("reading the allocations of job %s: %w", id, err)
	}
	running := 0
	var failed []string
	for _, a := range list {
		if a == nil || a.TaskGroup != jobs.GroupProvisioned || a.DesiredStatus != api.AllocDesiredStatusRun {
			continue
		}
		switch a.ClientStatus {
		case api.AllocClientStatusRunning:
			if tasksRunning(a) {
				running++
			}
		case api.AllocClientStatusFailed, api.AllocClientStatusLost:
			if a.NextAllocation == "" {
				failed = append(failed, fmt.Sprintf("allocation %s %s: %s", shortID(a.ID), a.ClientStatus, lastEvent(a)))
			}
		}
	}
	sort.Strings(failed)
	evals, _, err := allocs.Evaluations(id, q)
	if err != nil {
		return running, fmt.Errorf("reading the evaluations of job %s: %w", id, err)
	}
	if m := unplaced(evals); m != nil {
		failed = append(failed, "placement failed: "+placementReason(m))
	}
	if len(failed) > 0 {
		return running, fmt.Errorf("provisioned instances of %s:%s failed: %s", fn, version, strings.Join(failed, "; "))
	}
	return running, nil
}

func tasksRunning(a *api.AllocationListStub) bool {
	if len(a.TaskStates) == 0 {
		return false
	}
	for _, ts := range a.TaskStates {
		if ts == nil || ts.State != "running" {
			return false
		}
	}
	return true
}

// lastEvent is the newest event any task of a reported, for a failure's
// reason.
func lastEvent(a *api.AllocationListStub) string {
	var newest *api.TaskEvent
	for _, ts := range a.TaskStates {
		if ts == nil {
			continue
		}
		for _, e := range ts.Events {
			if e != nil && (newest == nil || e.Time > newest.Time) {
				newest = e
			}
		}
	}
	if newest == nil {
		return "no task events"
	}
	if newest.DisplayMessage != "" {
		return newest.Type + ": " + newest.DisplayMessage
	}
	return newest.Type
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// unplaced is the provisioned group's placement failure in the newest
// evaluation that ran (blocked evaluations wait to run again), or nil.
func unplaced(evals []*api.Evaluation) *api.AllocationMetric {
	var newest *api.Evaluation
	for _, e := range evals {
		if e == nil || e.Status == api.EvalStatusBlocked {
			continue
		}
		if newest == nil || e.CreateIndex > newest.CreateIndex {
			newest = e
		}
	}
	if newest == nil {
		return nil
	}
	return newest.FailedTGAllocs[jobs.GroupProvisioned]
}

// placementReason says why the scheduler placed nothing, as `nomad job
// status` does: exhausted dimensions and filtering constraints.
func placementReason(m *api.AllocationMetric) string {
	var parts []string
	add := func(what string, counts map[string]int) {
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %q on %d nodes", what, k, counts[k]))
		}
	}
	add("constraint", m.ConstraintFiltered)
	add("class", m.ClassFiltered)
	add("exhausted", m.DimensionExhausted)
	if len(m.QuotaExhausted) > 0 {
		parts = append(parts, "quota exhausted: "+strings.Join(m.QuotaExhausted, ", "))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("none of the %d nodes evaluated could take it", m.NodesEvaluated)
	}
	return strings.Join(parts, "; ")
}
