package nomad

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/gatewaytest"
)

// fakeNomad is an httptest double of exactly the Nomad HTTP endpoints this
// package calls, with Nomad's blocking-query semantics: a read with
// ?index=N waits until the state's index passes N (or ?wait= ends) and every
// answer carries X-Nomad-Index. Writes bump the index. Unknown requests fail
// the test.
type fakeNomad struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	index    uint64
	changed  chan struct{}
	jobs     map[string]*api.JobListStub
	vars     map[string]*api.Variable
	services map[string][]*api.ServiceRegistration
	groups   map[string]map[string]int // job → group → count
	// modify is each job's JobModifyIndex (1 until a scale changes it);
	// a scale request carrying another JobModifyIndex is refused as
	// Nomad refuses it.
	modify   map[string]uint64
	scales   []scaleCall
	requests []string // "METHOD path?query"
	failNext int      // answer the next request with this status
	// deploying marks jobs with an active deployment: Nomad refuses to scale them.
	deploying map[string]bool
	// onScale, when set, runs (with mu held) after a group's count changed,
	// standing in for Nomad's scheduler placing or stopping allocations.
	onScale func(job, group string, count int)
}

type scaleCall struct {
	JobID string
	Query url.Values
	Req   api.ScalingRequest
}

func newFakeNomad(t *testing.T) *fakeNomad {
	f := &fakeNomad{
		t: t, index: 10, changed: make(chan struct{}),
		jobs: map[string]*api.JobListStub{}, vars: map[string]*api.Variable{},
		services: map[string][]*api.ServiceRegistration{}, groups: map[string]map[string]int{},
		modify: map[string]uint64{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a real nomad/api client pointed at the double.
func (f *fakeNomad) client() *api.Client {
	f.t.Helper()
	c, err := api.NewClient(&api.Config{Address: f.srv.URL})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// bumpLocked advances the index and wakes blocked queries.
func (f *fakeNomad) bumpLocked() uint64 {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
	return f.index
}

func (f *fakeNomad) update(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
	f.bumpLocked()
}

// calls returns the scale requests received so far.
func (f *fakeNomad) calls() []scaleCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]scaleCall(nil), f.scales...)
}

// count returns a group's current count.
func (f *fakeNomad) count(job, group string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.groups[job][group]
}

func (f *fakeNomad) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakeNomad) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	if s := f.failNext; s != 0 {
		f.failNext = 0
		f.mu.Unlock()
		http.Error(w, "injected failure", s)
		return
	}
	f.mu.Unlock()

	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && path == "/v1/jobs":
		f.blocking(w, r, func() any {
			out := []*api.JobListStub{}
			for id, j := range f.jobs {
				if strings.HasPrefix(id, q.Get("prefix")) {
					c := *j
					if q.Get("meta") != "true" {
						c.Meta = nil // Nomad sends meta only when asked
					}
					out = append(out, &c)
				}
			}
			return out
		})
	case r.Method == http.MethodGet && path == "/v1/vars":
		f.blocking(w, r, func() any {
			out := []*api.VariableMetadata{}
			for p, v := range f.vars {
				if strings.HasPrefix(p, q.Get("prefix")) {
					out = append(out, &api.VariableMetadata{Path: p, ModifyIndex: v.ModifyIndex, Namespace: "default"})
				}
			}
			return out
		})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v1/var/"):
		f.mu.Lock()
		v, ok := f.vars[strings.TrimPrefix(path, "/v1/var/")]
		idx := f.index
		f.mu.Unlock()
		writeHeaders(w, idx)
		if !ok {
			http.Error(w, "variable not found", http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v1/service/"):
		name := strings.TrimPrefix(path, "/v1/service/")
		f.blocking(w, r, func() any {
			out := f.services[name]
			if out == nil {
				out = []*api.ServiceRegistration{}
			}
			return out
		})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v1/job/") && !strings.Contains(strings.TrimPrefix(path, "/v1/job/"), "/"):
		f.job(w, strings.TrimPrefix(path, "/v1/job/"))
	case strings.HasPrefix(path, "/v1/job/") && strings.HasSuffix(path, "/scale"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/job/"), "/scale")
		f.scale(w, r, id, q)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.Error(w, "not in the double", http.StatusNotFound)
	}
}

func writeHeaders(w http.ResponseWriter, index uint64) {
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(index, 10))
	w.Header().Set("X-Nomad-LastContact", "0")
	w.Header().Set("X-Nomad-KnownLeader", "true")
	w.Header().Set("Content-Type", "application/json")
}

// blocking answers a read with Nomad's blocking-query semantics.
func (f *fakeNomad) blocking(w http.ResponseWriter, r *http.Request, read func() any) {
	q := r.URL.Query()
	var wait time.Duration
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			f.t.Errorf("bad wait %q: %v", s, err)
		}
		wait = d
	}
	want, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	timeout := time.After(wait)
	f.mu.Lock()
	for want > 0 && f.index <= want {
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			f.mu.Lock()
			goto answer
		case <-r.Context().Done():
			return // the client gave up (a stopped watch)
		}
		f.mu.Lock()
	}
answer:
	body := read()
	idx := f.index
	f.mu.Unlock()
	writeHeaders(w, idx)
	_ = json.NewEncoder(w).Encode(body)
}

// jobModifyLocked is a job's JobModifyIndex.
func (f *fakeNomad) jobModifyLocked(id string) uint64 {
	if n := f.modify[id]; n != 0 {
		return n
	}
	return 1
}

// job answers GET /v1/job/<id> with the fields the scaler reads: the
// groups' counts and the JobModifyIndex.
func (f *fakeNomad) job(w http.ResponseWriter, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	groups, ok := f.groups[id]
	writeHeaders(w, f.index)
	if !ok {
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	jmi := f.jobModifyLocked(id)
	job := api.Job{ID: &id, JobModifyIndex: &jmi}
	for g, n := range groups {
		job.TaskGroups = append(job.TaskGroups, &api.TaskGroup{Name: new(g), Count: new(n)})
	}
	_ = json.NewEncoder(w).Encode(job)
}

func (f *fakeNomad) scale(w http.ResponseWriter, r *http.Request, id string, q url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	groups, ok := f.groups[id]
	if !ok {
		writeHeaders(w, f.index)
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
		st := api.JobScaleStatusResponse{JobID: id, Namespace: "default", TaskGroups: map[string]api.TaskGroupScaleStatus{}}
		for g, n := range groups {
			st.TaskGroups[g] = api.TaskGroupScaleStatus{Desired: n, Running: n}
		}
		writeHeaders(w, f.index)
		_ = json.NewEncoder(w).Encode(st)
	case http.MethodPut, http.MethodPost:
		var req api.ScalingRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			f.t.Errorf("scale body: %v", err)
		}
		f.scales = append(f.scales, scaleCall{JobID: id, Query: q, Req: req})
		if f.deploying[id] {
			http.Error(w, "job scaling blocked due to active deployment", http.StatusBadRequest)
			return
		}
		g := req.Target["Group"]
		if _, ok := groups[g]; !ok || req.Count == nil {
			http.Error(w, "group not found", http.StatusBadRequest)
			return
		}
		if jmi := f.jobModifyLocked(id); req.JobModifyIndex != 0 && req.JobModifyIndex != jmi {
			http.Error(w, "Enforcing job modify index "+strconv.FormatUint(req.JobModifyIndex, 10)+
				": job exists with conflicting job modify index: "+strconv.FormatUint(jmi, 10), http.StatusInternalServerError)
			return
		}
		groups[g] = int(*req.Count)
		if f.onScale != nil {
			f.onScale(id, g, int(*req.Count))
		}
		idx := f.bumpLocked()
		f.modify[id] = idx
		writeHeaders(w, idx)
		_ = json.NewEncoder(w).Encode(api.JobRegisterResponse{JobModifyIndex: idx, EvalID: "eval-" + strconv.FormatUint(idx, 10)})
	default:
		f.t.Errorf("unexpected %s on %s", r.Method, r.URL)
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	gatewaytest.Eventually(t, timeout, cond, "%s", what)
}
