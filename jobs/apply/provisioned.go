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
}

var _ Allocations = (*api.Jobs)(nil)

// ProvisionedRunning counts the instances of the provisioned group of fn's
// version job (jobs.JobID) that Nomad runs: allocations the client reports
// running whose tasks all run. An allocation of the group that failed and
// was not replaced makes the error (with what its tasks last reported);
// the running count is returned with it. A job that is not registered
// runs nothing yet.
func ProvisionedRunning(ctx context.Context, allocs Allocations, scope submit.Scope, fn, version string) (int, error) {
	id := jobs.JobID(fn, version)
	list, _, err := allocs.Allocations(id, false, (&api.QueryOptions{Namespace: scope.Namespace, Region: scope.Region}).WithContext(ctx))
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
	if len(failed) > 0 {
		sort.Strings(failed)
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
