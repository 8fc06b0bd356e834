package versionstest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// validPath is Nomad's Variable path rule.
var validPath = regexp.MustCompile(`^[a-zA-Z0-9-_~/]{1,128}$`)

// Variables is the double; serve it with httptest or mount it in a mux.
type Variables struct {
	t     testing.TB
	mu    sync.Mutex
	index uint64
	vars  map[string]*api.Variable
	// changed is closed (and replaced) on every write, waking blocked
	// listings.
	changed chan struct{}
}

// New returns an empty double that reports unexpected requests to t.
func New(t testing.TB) *Variables {
	return &Variables{t: t, vars: map[string]*api.Variable{}, changed: make(chan struct{})}
}

// Items returns a copy of the items at path (nil if absent).
func (d *Variables) Items(path string) map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.vars[path]
	if !ok {
		return nil
	}
	out := make(map[string]string, len(v.Items))
	for k, x := range v.Items {
		out[k] = x
	}
	return out
}

// Paths lists the stored paths, sorted.
func (d *Variables) Paths() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.vars))
	for p := range d.vars {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ServeHTTP implements http.Handler.
func (d *Variables) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	path, isVar := strings.CutPrefix(r.URL.Path, "/v1/var/")
	switch {
	case r.URL.Path == "/v1/vars" && r.Method == http.MethodGet:
		if !d.block(w, r) {
			return
		}
		prefix := r.URL.Query().Get("prefix")
		out := []*api.VariableMetadata{}
		for p, v := range d.vars {
			if strings.HasPrefix(p, prefix) {
				out = append(out, &api.VariableMetadata{Namespace: v.Namespace, Path: p, ModifyIndex: v.ModifyIndex})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
		d.reply(w, http.StatusOK, out)
	case isVar && r.Method == http.MethodGet:
		v, ok := d.vars[path]
		if !ok {
			http.Error(w, "variable not found", http.StatusNotFound)
			return
		}
		d.reply(w, http.StatusOK, v)
	case isVar && (r.Method == http.MethodPut || r.Method == http.MethodDelete):
		cas, err := strconv.ParseUint(r.URL.Query().Get("cas"), 10, 64)
		if err != nil {
			d.t.Errorf("variables double: %s %s without cas", r.Method, r.URL)
			http.Error(w, "cas required", http.StatusBadRequest)
			return
		}
		cur, exists := d.vars[path]
		if (cas == 0 && exists) || (cas != 0 && (!exists || cur.ModifyIndex != cas)) {
			if !exists {
				cur = &api.Variable{}
			}
			d.reply(w, http.StatusConflict, cur)
			return
		}
		if r.Method == http.MethodDelete {
			delete(d.vars, path)
			d.index++
			d.wake()
			w.WriteHeader(http.StatusOK)
			return
		}
		var in api.Variable
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Nomad's own validation of a variable.
		size := 0
		for k, v := range in.Items {
			size += len(k) + len(v)
		}
		switch {
		case !validPath.MatchString(path):
			http.Error(w, "invalid path \""+path+"\"", http.StatusBadRequest)
			return
		case len(in.Items) == 0:
			http.Error(w, "empty variables are invalid", http.StatusBadRequest)
			return
		case size > 64*1024:
			http.Error(w, "variables are limited to 64KiB in total size", http.StatusBadRequest)
			return
		}
		d.index++
		in.Path, in.ModifyIndex = path, d.index
		if in.Namespace == "" {
			in.Namespace = "default"
		}
		if !exists {
			in.CreateIndex = d.index
		}
		d.vars[path] = &in
		d.wake()
		d.reply(w, http.StatusOK, &in)
	default:
		d.t.Errorf("variables double: unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

func (d *Variables) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(max(d.index, 1), 10)) // Nomad's index starts at 1
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// wake ends the blocked listings after a write. d.mu is held.
func (d *Variables) wake() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// block gives a listing with ?index=N Nomad's blocking-query semantics
// (developer.hashicorp.com/nomad/api-docs#blocking-queries): it returns
// once the variables' index exceeds N or ?wait= (default 5m, without
// Nomad's jitter) passed; false when the client went away. d.mu is held, and released
// while blocked.
func (d *Variables) block(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	var want uint64
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "bad index", http.StatusBadRequest)
			return false
		}
		want = n
	}
	wait := 5 * time.Minute
	if v := q.Get("wait"); v != "" {
		x, err := time.ParseDuration(v)
		if err != nil {
			http.Error(w, "bad wait", http.StatusBadRequest)
			return false
		}
		wait = x
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for want > 0 && d.index <= want {
		ch := d.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-timeout.C:
			want = 0
		case <-r.Context().Done():
			d.mu.Lock()
			return false
		}
		d.mu.Lock()
	}
	return true
}
