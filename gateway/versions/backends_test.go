package versions

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/nomad/api"
)

func TestLocalContract(t *testing.T) {
	runContract(t, func(t *testing.T) *Store {
		b, err := NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return New(b, nil)
	})
}

// Two Local backends on one directory (the CLI and `nimbus dev`) see each
// other's writes and share the counter.
func TestLocalSharedDirectory(t *testing.T) {
	dir := t.TempDir()
	a, _ := NewLocal(dir)
	b, _ := NewLocal(dir)
	sa, sb := New(a, nil), New(b, nil)
	mustPublish(t, sa, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('a')}, 1, true)
	mustPublish(t, sb, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('b')}, 2, true)
	mustPublish(t, sa, "fn", Snapshot{Spec: spec(128), CodeSHA256: sha('b')}, 2, false)
}

// nomadDouble serves exactly the variables endpoints the Nomad backend
// uses, with Nomad's check-and-set rules, and fails the test on any other
// request.
type nomadDouble struct {
	t     *testing.T
	mu    sync.Mutex
	index uint64
	vars  map[string]*api.Variable
}

func (d *nomadDouble) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	path, isVar := strings.CutPrefix(r.URL.Path, "/v1/var/")
	switch {
	case r.URL.Path == "/v1/vars" && r.Method == http.MethodGet:
		prefix := r.URL.Query().Get("prefix")
		out := []*api.VariableMetadata{}
		for p, v := range d.vars {
			if strings.HasPrefix(p, prefix) {
				out = append(out, &api.VariableMetadata{Namespace: "default", Path: p, ModifyIndex: v.ModifyIndex})
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
			d.t.Errorf("nomad double: %s %s without cas", r.Method, r.URL)
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
			w.WriteHeader(http.StatusOK)
			return
		}
		var in api.Variable
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d.index++
		in.Path, in.Namespace, in.ModifyIndex = path, "default", d.index
		if !exists {
			in.CreateIndex = d.index
		}
		d.vars[path] = &in
		d.reply(w, http.StatusOK, &in)
	default:
		d.t.Errorf("nomad double: unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

func (d *nomadDouble) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(d.index, 10))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func nomadStore(t *testing.T, addr string) *Store {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return New(NewNomad(c.Variables(), ""), nil)
}

func TestNomadContractAgainstDouble(t *testing.T) {
	runContract(t, func(t *testing.T) *Store {
		srv := httptest.NewServer(&nomadDouble{t: t, vars: map[string]*api.Variable{}})
		t.Cleanup(srv.Close)
		return nomadStore(t, srv.URL)
	})
}

// With NOMAD_BINARY set, the same suite runs against `nomad agent -dev`.
func TestNomadContractAgainstAgent(t *testing.T) {
	bin := os.Getenv("NOMAD_BINARY")
	if bin == "" {
		t.Skip("NOMAD_BINARY is not set: skipping the versions contract against a real Nomad agent")
	}
	addr := startNomad(t, bin)
	runContract(t, func(t *testing.T) *Store {
		// One agent for the whole suite: subtests reuse function and layer
		// names, so each starts from an empty nimbus/ tree.
		wipe(t, addr)
		return nomadStore(t, addr)
	})
}

func wipe(t *testing.T, addr string) {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	list, _, err := c.Variables().PrefixList(Prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if _, err := c.Variables().Delete(m.Path, nil); err != nil {
			t.Fatal(err)
		}
	}
}
