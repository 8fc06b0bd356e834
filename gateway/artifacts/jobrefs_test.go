package artifacts

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// jobsDouble serves exactly GET /v1/jobs?prefix=&namespace=* and GET /v1/job/<id>.
func jobsDouble(t *testing.T, jobs map[string]*api.Job) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/jobs" && r.URL.Query().Get("namespace") == "*":
			var stubs []*api.JobListStub
			for id, j := range jobs {
				if strings.HasPrefix(id, r.URL.Query().Get("prefix")) {
					stubs = append(stubs, &api.JobListStub{ID: id, Namespace: *j.Namespace})
				}
			}
			_ = json.NewEncoder(w).Encode(stubs)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/job/"):
			j, ok := jobs[strings.TrimPrefix(r.URL.Path, "/v1/job/")]
			if !ok || r.URL.Query().Get("namespace") != *j.Namespace {
				http.Error(w, "job not found", http.StatusNotFound)
				return
			}
			_ = json.NewEncoder(w).Encode(j)
		default:
			t.Errorf("jobs double: unexpected %s %s", r.Method, r.URL)
			http.NotFound(w, r)
		}
	}))
}

func jobWith(ns string, sums ...string) *api.Job {
	task := &api.Task{Name: "function"}
	for i, s := range sums {
		dest := "local/code"
		if i > 0 {
			dest = "local/layers/0"
		}
		task.Artifacts = append(task.Artifacts, &api.TaskArtifact{GetterSource: new("http://gw/nimbus/v1/artifacts/" + s + ".zip"), GetterOptions: map[string]string{"checksum": "sha256:" + s}, RelativeDest: new(dest)})
	}
	return &api.Job{Namespace: new(ns), TaskGroups: []*api.TaskGroup{{Tasks: []*api.Task{task}}}}
}

// driverFetched is a job whose task config names its bundles for the
// driver's cache (code_url/code_sha256, layer_urls/layer_sha256s).
func driverFetched(ns, code string, layers ...string) *api.Job {
	cfg := map[string]any{"code_url": "http://gw/nimbus/v1/artifacts/" + code + ".zip", "code_sha256": code}
	var urls, sums []any
	for _, l := range layers {
		urls = append(urls, "http://gw/nimbus/v1/artifacts/"+l+".zip")
		sums = append(sums, l)
	}
	cfg["layer_urls"], cfg["layer_sha256s"] = urls, sums
	return &api.Job{Namespace: new(ns), TaskGroups: []*api.TaskGroup{{Tasks: []*api.Task{{Name: "function", Config: cfg}}}}}
}

func TestJobReferences(t *testing.T) {
	a, b, c, d := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64), strings.Repeat("d", 64)
	e, f := strings.Repeat("e", 64), strings.Repeat("f", 64)
	srv := jobsDouble(t, map[string]*api.Job{
		"nimbus-hello":   jobWith("default", a, c),
		"nimbus-hello-1": jobWith("team", b),
		"nimbus-cached":  driverFetched("default", e, f),
		"other-job":      jobWith("default", d),
	})
	defer srv.Close()
	client, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := (&JobReferences{Jobs: client.Jobs()}).References(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(refs, map[string]bool{a: true, b: true, c: true, e: true, f: true}) {
		t.Fatalf("references %v", refs)
	}
}
