package submittest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Request is one recorded request.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Body   []byte
	// Token is the X-Nomad-Token header.
	Token string
}

// Server is the double. The zero value is not usable; call New.
type Server struct {
	URL string

	mu         sync.Mutex
	jobs       map[string]*api.Job      // by namespace + "/" + id
	vars       map[string]*api.Variable // by namespace + "/" + path
	requests   []Request
	unexpected []Request
	index      uint64
	evals      int
	// events are the scaling events of each job's groups, newest first.
	events map[string]map[string][]api.ScalingEvent
	// allocs are the allocations each job lists (SetAllocations).
	allocs map[string][]*api.AllocationListStub
	// evaluations are what each job lists (SetEvaluations).
	evaluations map[string][]*api.Evaluation
	// changed is closed (and replaced) whenever the jobs table changes,
	// waking blocked job listings.
	changed chan struct{}
	// jobsIndex is the jobs table's index: the X-Nomad-Index of a job
	// listing, which a blocking listing waits to pass.
	jobsIndex uint64
}

// New starts a double that stops when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{jobs: map[string]*api.Job{}, vars: map[string]*api.Variable{}, index: 100,
		events: map[string]map[string][]api.ScalingEvent{}, allocs: map[string][]*api.AllocationListStub{},
		evaluations: map[string][]*api.Evaluation{}, changed: make(chan struct{})}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Client returns a real Nomad API client pointed at the double.
func (s *Server) Client(t testing.TB) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Requests returns the recorded requests in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Unexpected returns requests to endpoints the double does not serve.
func (s *Server) Unexpected() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.unexpected...)
}

// Reset forgets the recorded requests (not the jobs).
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.unexpected = nil, nil
}

// Job returns a copy of a stored job, or nil.
func (s *Server) Job(namespace, id string) *api.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[key(namespace, id)]
	if j == nil {
		return nil
	}
	return clone(j)
}

// Put stores a job as if it had been registered.
func (s *Server) Put(job *api.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store(clone(job))
}

// SetAllocations sets what GET /v1/job/<id>/allocations lists for a job
// (the double places nothing itself).
func (s *Server) SetAllocations(namespace, id string, allocs []*api.AllocationListStub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allocs[key(namespace, id)] = allocs
}

// SetEvaluations sets what GET /v1/job/<id>/evaluations lists for a job
// (the double schedules nothing itself).
func (s *Server) SetEvaluations(namespace, id string, evals []*api.Evaluation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evaluations[key(namespace, id)] = evals
}

// Variable returns a copy of a stored variable, or nil.
func (s *Server) Variable(namespace, path string) *api.Variable {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vars[key(namespace, path)]
	if v == nil {
		return nil
	}
	return v.Copy()
}

// PutVariable stores a variable as if it had been written.
func (s *Server) PutVariable(v *api.Variable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeVar(v.Namespace, v.Path, v.Items)
}

func key(namespace, id string) string {
	if namespace == "" {
		namespace = "default"
	}
	return namespace + "/" + id
}

func clone(j *api.Job) *api.Job {
	b, err := json.Marshal(j)
	if err != nil {
		panic(err)
	}
	var out api.Job
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

func (s *Server) store(j *api.Job) {
	s.index++
	ns := "default"
	if j.Namespace != nil && *j.Namespace != "" {
		ns = *j.Namespace
	}
	j.Namespace = &ns
	idx := s.index
	j.JobModifyIndex = &idx
	j.ModifyIndex = &idx
	if old := s.jobs[key(ns, *j.ID)]; old != nil && old.Version != nil {
		v := *old.Version + 1
		j.Version = &v
	} else {
		v := uint64(0)
		j.Version = &v
	}
	s.jobs[key(ns, *j.ID)] = j
	s.jobsChangedLocked()
}

// jobsChangedLocked advances the jobs table's index to the last write and
// wakes blocked listings.
func (s *Server) jobsChangedLocked() {
	s.jobsIndex = s.index
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) nextEval() string {
	s.evals++
	return fmt.Sprintf("eval-%d", s.evals)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body, Token: r.Header.Get("X-Nomad-Token")}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	if r.Method == http.MethodGet && r.URL.Path == "/v1/jobs" {
		s.list(w, r)
		return
	}
	ns := r.URL.Query().Get("namespace")

	path := r.URL.Path
	switch {
	case r.Method == http.MethodPut && path == "/v1/jobs":
		s.register(w, body)
	case strings.HasPrefix(path, "/v1/job/"):
		rest := strings.TrimPrefix(path, "/v1/job/")
		id, sub, _ := strings.Cut(rest, "/")
		switch {
		case r.Method == http.MethodGet && sub == "":
			j := s.jobs[key(ns, id)]
			if j == nil {
				http.Error(w, "job not found", http.StatusNotFound)
				return
			}
			writeJSON(w, j)
		case r.Method == http.MethodDelete && sub == "":
			s.deregister(w, ns, id, r.URL.Query().Get("purge") == "true")
		case r.Method == http.MethodPut && sub == "plan":
			s.plan(w, ns, id, body)
		case r.Method == http.MethodPut && sub == "scale":
			s.scale(w, ns, id, body)
		case r.Method == http.MethodGet && sub == "scale":
			s.scaleStatus(w, ns, id)
		case r.Method == http.MethodGet && sub == "allocations":
			list := s.allocs[key(ns, id)]
			if list == nil {
				list = []*api.AllocationListStub{}
			}
			writeJSON(w, list)
		case r.Method == http.MethodGet && sub == "evaluations":
			list := s.evaluations[key(ns, id)]
			if list == nil {
				list = []*api.Evaluation{}
			}
			writeJSON(w, list)
		default:
			s.notServed(w, req)
		}
	case strings.HasPrefix(path, "/v1/var/"):
		s.variable(w, r.Method, ns, strings.TrimPrefix(path, "/v1/var/"), r.URL.Query(), body, req)
	default:
		s.notServed(w, req)
	}
}

// variable serves Nomad's variable endpoints the submitter calls: read,
// and check-and-set (?cas=<modify index>, 0 = must not exist) write and
// delete, answering a conflict with 409 and the current variable.
func (s *Server) variable(w http.ResponseWriter, method, ns, path string, q url.Values, body []byte, req Request) {
	cur := s.vars[key(ns, path)]
	cas, hasCAS := uint64(0), q.Has("cas")
	if hasCAS {
		n, err := strconv.ParseUint(q.Get("cas"), 10, 64)
		if err != nil {
			http.Error(w, "bad cas", http.StatusBadRequest)
			return
		}
		cas = n
	}
	conflict := func() bool {
		if !hasCAS {
			return false
		}
		have := uint64(0)
		if cur != nil {
			have = cur.ModifyIndex
		}
		if have == cas {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		out := cur
		if out == nil {
			out = &api.Variable{}
		}
		_ = json.NewEncoder(w).Encode(out)
		return true
	}
	switch method {
	case http.MethodGet:
		if cur == nil {
			http.Error(w, "variable not found", http.StatusNotFound)
			return
		}
		writeJSON(w, cur)
	case http.MethodPut:
		var v api.Variable
		if err := decode(body, &v); err != nil || v.Path != path {
			http.Error(w, "bad variable", http.StatusBadRequest)
			return
		}
		if conflict() {
			return
		}
		writeJSON(w, s.storeVar(ns, path, v.Items))
	case http.MethodDelete:
		if conflict() {
			return
		}
		delete(s.vars, key(ns, path))
		w.WriteHeader(http.StatusNoContent)
	default:
		s.notServed(w, req)
	}
}

func (s *Server) storeVar(ns, path string, items api.VariableItems) *api.Variable {
	if ns == "" {
		ns = "default"
	}
	s.index++
	v := &api.Variable{Namespace: ns, Path: path, Items: api.VariableItems{}, ModifyIndex: s.index, CreateIndex: s.index}
	if old := s.vars[key(ns, path)]; old != nil {
		v.CreateIndex = old.CreateIndex
	}
	for k, val := range items {
		v.Items[k] = val
	}
	s.vars[key(ns, path)] = v
	return v.Copy()
}

func (s *Server) notServed(w http.ResponseWriter, req Request) {
	s.unexpected = append(s.unexpected, req)
	http.Error(w, "submittest: endpoint not served", http.StatusNotFound)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Nomad-Index", "1")
	_ = json.NewEncoder(w).Encode(v)
}

func decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	return dec.Decode(v)
}

func (s *Server) register(w http.ResponseWriter, body []byte) {
	var req api.JobRegisterRequest
	if err := decode(body, &req); err != nil || req.Job == nil || req.Job.ID == nil || *req.Job.ID == "" {
		http.Error(w, "bad register request", http.StatusBadRequest)
		return
	}
	job := req.Job
	ns := ""
	if job.Namespace != nil {
		ns = *job.Namespace
	}
	if req.EnforceIndex {
		// Nomad's check-index, with its messages.
		old, want := s.jobs[key(ns, *job.ID)], req.JobModifyIndex
		var msg string
		switch {
		case old != nil && want == 0:
			msg = "Enforcing job modify index 0: job already exists"
		case old != nil && want != *old.JobModifyIndex:
			msg = fmt.Sprintf("Enforcing job modify index %d: job exists with conflicting job modify index: %d", want, *old.JobModifyIndex)
		case old == nil && want != 0:
			msg = fmt.Sprintf("Enforcing job modify index %d: job does not exist", want)
		}
		if msg != "" {
			http.Error(w, msg, http.StatusInternalServerError)
			return
		}
	}
	if old := s.jobs[key(ns, *job.ID)]; old != nil && req.PreserveCounts {
		counts := map[string]*int{}
		for _, g := range old.TaskGroups {
			counts[*g.Name] = g.Count
		}
		for _, g := range job.TaskGroups {
			if c, ok := counts[*g.Name]; ok {
				g.Count = c
			}
		}
	}
	s.store(job)
	writeJSON(w, api.JobRegisterResponse{EvalID: s.nextEval(), JobModifyIndex: *job.JobModifyIndex})
}

func (s *Server) deregister(w http.ResponseWriter, ns, id string, purge bool) {
	j := s.jobs[key(ns, id)]
	if j == nil {
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	s.index++
	if purge {
		delete(s.jobs, key(ns, id))
	} else {
		stop := true
		j.Stop = &stop
		idx := s.index
		j.ModifyIndex = &idx
	}
	s.jobsChangedLocked()
	writeJSON(w, api.JobDeregisterResponse{EvalID: s.nextEval()})
}

func (s *Server) plan(w http.ResponseWriter, ns, id string, body []byte) {
	var req api.JobPlanRequest
	if err := decode(body, &req); err != nil || req.Job == nil || req.Job.ID == nil || *req.Job.ID != id {
		http.Error(w, "bad plan request", http.StatusBadRequest)
		return
	}
	old := s.jobs[key(ns, id)]
	diff := &api.JobDiff{Type: "Added", ID: id}
	oldCounts := map[string]int{}
	if old != nil {
		diff.Type = "None"
		for _, g := range old.TaskGroups {
			oldCounts[*g.Name] = *g.Count
		}
	}
	for _, g := range req.Job.TaskGroups {
		n := 0
		if g.Count != nil {
			n = *g.Count
		}
		gd := &api.TaskGroupDiff{Type: "Added", Name: *g.Name, Updates: map[string]uint64{}}
		if was, ok := oldCounts[*g.Name]; ok {
			gd.Type = "None"
			if was != n {
				gd.Type = "Edited"
				gd.Fields = []*api.FieldDiff{{Type: "Edited", Name: "Count", Old: fmt.Sprint(was), New: fmt.Sprint(n)}}
				diff.Type = "Edited"
			}
		} else if n > 0 {
			gd.Updates["create"] = uint64(n)
		}
		diff.TaskGroups = append(diff.TaskGroups, gd)
	}
	var index uint64
	if old != nil {
		index = *old.JobModifyIndex
	}
	writeJSON(w, api.JobPlanResponse{JobModifyIndex: index, Diff: diff})
}

func (s *Server) scale(w http.ResponseWriter, ns, id string, body []byte) {
	var req api.ScalingRequest
	if err := decode(body, &req); err != nil || req.Count == nil {
		http.Error(w, "bad scale request", http.StatusBadRequest)
		return
	}
	j := s.jobs[key(ns, id)]
	if j == nil {
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	group := req.Target["Group"]
	for _, g := range j.TaskGroups {
		if *g.Name != group {
			continue
		}
		n := *req.Count
		if sc := g.Scaling; sc != nil {
			if sc.Max != nil && n > *sc.Max {
				http.Error(w, fmt.Sprintf("group count was greater than scaling policy maximum: %d > %d", n, *sc.Max), http.StatusBadRequest)
				return
			}
			if sc.Min != nil && n < *sc.Min {
				http.Error(w, fmt.Sprintf("group count was less than scaling policy minimum: %d < %d", n, *sc.Min), http.StatusBadRequest)
				return
			}
		}
		// Nomad checks JobModifyIndex when the request sets it, and
		// refuses with this text.
		if req.JobModifyIndex != 0 && req.JobModifyIndex != *j.JobModifyIndex {
			http.Error(w, fmt.Sprintf("Enforcing job modify index %d: job exists with conflicting job modify index: %d",
				req.JobModifyIndex, *j.JobModifyIndex), http.StatusInternalServerError)
			return
		}
		prev := int64(0)
		if g.Count != nil {
			prev = int64(*g.Count)
		}
		c := int(n)
		g.Count = &c
		s.store(j)
		k := key(ns, id)
		if s.events[k] == nil {
			s.events[k] = map[string][]api.ScalingEvent{}
		}
		s.events[k][group] = append([]api.ScalingEvent{{Count: &n, PreviousCount: prev, Message: req.Message,
			Meta: req.Meta, Time: *j.JobModifyIndex}}, s.events[k][group]...)
		writeJSON(w, api.JobRegisterResponse{EvalID: s.nextEval(), JobModifyIndex: *j.JobModifyIndex})
		return
	}
	http.Error(w, fmt.Sprintf("task group %q specified for scaling does not exist in job", group), http.StatusBadRequest)
}

// scaleStatus answers GET /v1/job/<id>/scale: each group's desired count
// and its scaling events, newest first.
func (s *Server) scaleStatus(w http.ResponseWriter, ns, id string) {
	j := s.jobs[key(ns, id)]
	if j == nil {
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	st := api.JobScaleStatusResponse{JobID: id, Namespace: *j.Namespace, JobModifyIndex: *j.ModifyIndex,
		TaskGroups: map[string]api.TaskGroupScaleStatus{}}
	for _, g := range j.TaskGroups {
		n := 0
		if g.Count != nil {
			n = *g.Count
		}
		st.TaskGroups[*g.Name] = api.TaskGroupScaleStatus{Desired: n, Events: s.events[key(ns, id)][*g.Name]}
	}
	writeJSON(w, st)
}

// list answers GET /v1/jobs as Nomad does: the stubs of the jobs whose ID
// has the prefix (?prefix=), in the namespace asked (?namespace=, "*" for
// all, default "default"), each job's meta only with ?meta=true. With
// ?index=N it is a blocking query as Nomad's API documentation describes
// them (developer.hashicorp.com/nomad/api-docs#blocking-queries): it
// answers once the jobs table's index exceeds N, or when ?wait= (default
// 5m; Nomad adds up to wait/16 of jitter, the double none) has passed, with
// the unchanged index; X-Nomad-Index is always the table's index, never
// below 1. s.mu is held and released while blocked.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wait := 5 * time.Minute
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			http.Error(w, "bad wait", http.StatusBadRequest)
			return
		}
		wait = d
	}
	var want uint64
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "bad index", http.StatusBadRequest)
			return
		}
		want = n
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for want > 0 && s.jobsIndex <= want {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timeout.C:
			want = 0
		case <-r.Context().Done():
			s.mu.Lock()
			return
		}
		s.mu.Lock()
	}
	ns := q.Get("namespace")
	if ns == "" {
		ns = "default"
	}
	out := []*api.JobListStub{}
	for _, j := range s.jobs {
		if (ns != "*" && *j.Namespace != ns) || !strings.HasPrefix(*j.ID, q.Get("prefix")) {
			continue
		}
		st := &api.JobListStub{ID: *j.ID, Name: *j.ID, Namespace: *j.Namespace, Status: s.statusLocked(j),
			JobModifyIndex: *j.JobModifyIndex, ModifyIndex: *j.ModifyIndex}
		if j.Type != nil {
			st.Type = *j.Type
		}
		if j.Name != nil {
			st.Name = *j.Name
		}
		if j.ParentID != nil {
			st.ParentID = *j.ParentID
		}
		if j.Stop != nil {
			st.Stop = *j.Stop
		}
		if q.Get("meta") == "true" {
			st.Meta = j.Meta
		}
		out = append(out, st)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(max(s.jobsIndex, 1), 10))
	_ = json.NewEncoder(w).Encode(out)
}

// statusLocked is a job's status as Nomad reports it: dead once stopped,
// running while an allocation a test set runs, else pending (the double
// places nothing itself).
func (s *Server) statusLocked(j *api.Job) string {
	if j.Stop != nil && *j.Stop {
		return "dead"
	}
	for _, a := range s.allocs[key(*j.Namespace, *j.ID)] {
		if a.ClientStatus == "running" {
			return "running"
		}
	}
	return "pending"
}
