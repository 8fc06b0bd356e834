package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/rollout"
)

// rolloutRoutes are Nimbus's own operations on the record of an alias's
// rollout (nimbus rollout): the CLI that shifts the alias keeps its state
// here so that another run can show, resume or abort it.
var rolloutRoutes = []route{
	{Route{"GetRollout", []string{http.MethodGet}, SpecPathPrefix + fnLabel + "/rollouts/{Alias}"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.manage(w, r, name, a.getRollout) }},
	{Route{"PutRollout", []string{http.MethodPut}, SpecPathPrefix + fnLabel + "/rollouts/{Alias}"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) { a.manage(w, r, name, a.putRollout) }},
	{Route{"DeleteRollout", []string{http.MethodDelete}, SpecPathPrefix + fnLabel + "/rollouts/{Alias}"},
		func(a *API, w http.ResponseWriter, r *http.Request, name string) {
			a.manage(w, r, name, a.deleteRollout)
		}},
}

// RolloutState is GetRollout's answer and PutRollout's body and answer:
// the record and its revision. PutRollout writes only if RevisionId is the
// stored record's ("" or absent: only if there is none), and answers
// PreconditionFailedException otherwise.
type RolloutState struct {
	Rollout    *rollout.Record `json:"Rollout"`
	RevisionID string          `json:"RevisionId"`
}

func (a *API) rolloutTarget(c *manageCall, op string) (string, *apiError) {
	if e := a.aliasFunction(c, op); e != nil {
		return "", e
	}
	return pathValue(c.r, "Alias")
}

func rolloutNotFound(fn, alias string) *apiError {
	return &apiError{Code: CodeResourceNotFound, Message: "No rollout recorded for alias " + alias + " of " + fn}
}

func parseRevision(s string) (uint64, *apiError) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, invalidParam("RevisionId " + strconv.Quote(s) + " is not a rollout revision")
	}
	return n, nil
}

func rolloutPrecondition() *apiError {
	return &apiError{Code: CodePreconditionFailed, Message: "The RevisionId provided does not match the rollout's latest RevisionId. Call GetRollout to retrieve it"}
}

// getRollout answers GetRollout.
func (a *API) getRollout(c *manageCall) (int, any, *apiError) {
	alias, e := a.rolloutTarget(c, "GetRollout")
	if e != nil {
		return 0, nil, e
	}
	rec, idx, err := a.opts.Manage.Versions.Rollout(c.r.Context(), c.ref.Name, alias)
	if errors.Is(err, versions.ErrNotFound) {
		return 0, nil, rolloutNotFound(c.ref.Name, alias)
	}
	if err != nil {
		return 0, nil, serviceErr("reading the rollout", err)
	}
	return http.StatusOK, &RolloutState{Rollout: rec, RevisionID: strconv.FormatUint(idx, 10)}, nil
}

// putRollout answers PutRollout.
func (a *API) putRollout(c *manageCall) (int, any, *apiError) {
	alias, e := a.rolloutTarget(c, "PutRollout")
	if e != nil {
		return 0, nil, e
	}
	var in RolloutState
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return 0, nil, &apiError{Code: CodeInvalidRequestContent, Message: "decoding the rollout: " + err.Error()}
	}
	if in.Rollout == nil {
		return 0, nil, invalidParam("Rollout is required")
	}
	cas, e := parseRevision(in.RevisionID)
	if e != nil {
		return 0, nil, e
	}
	idx, err := a.opts.Manage.Versions.PutRollout(c.r.Context(), c.ref.Name, alias, in.Rollout, cas)
	switch {
	case errors.Is(err, versions.ErrInvalid):
		return 0, nil, invalidParam(err.Error())
	case errors.Is(err, versions.ErrConflict):
		return 0, nil, rolloutPrecondition()
	case err != nil:
		return 0, nil, serviceErr("writing the rollout", err)
	}
	return http.StatusOK, &RolloutState{Rollout: in.Rollout, RevisionID: strconv.FormatUint(idx, 10)}, nil
}

// deleteRollout answers DeleteRollout (?RevisionId= is required: the
// record is deleted only as its caller last saw it).
func (a *API) deleteRollout(c *manageCall) (int, any, *apiError) {
	alias, e := a.rolloutTarget(c, "DeleteRollout")
	if e != nil {
		return 0, nil, e
	}
	rev := c.r.URL.Query().Get("RevisionId")
	if rev == "" {
		return 0, nil, invalidParam("DeleteRollout needs the record's RevisionId")
	}
	cas, e := parseRevision(rev)
	if e != nil {
		return 0, nil, e
	}
	err := a.opts.Manage.Versions.DeleteRollout(c.r.Context(), c.ref.Name, alias, cas)
	switch {
	case errors.Is(err, versions.ErrNotFound):
		return 0, nil, rolloutNotFound(c.ref.Name, alias)
	case errors.Is(err, versions.ErrConflict):
		return 0, nil, rolloutPrecondition()
	case err != nil:
		return 0, nil, serviceErr("deleting the rollout", err)
	}
	return http.StatusNoContent, nil, nil
}
