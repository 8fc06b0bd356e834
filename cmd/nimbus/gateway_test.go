package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/gateway/versions/versionstest"
	"github.com/nimbus-fn/nimbus/specs"
)

// A cluster gateway's GC keeps what published versions, layer versions
// (Nomad Variables) and function jobs (their artifact checksums) name,
// read from the Nomad the config points at (its job prefix selects the
// jobs): doubles of exactly the variables and jobs endpoints used.
func TestClusterArtifactRefs(t *testing.T) {
	code, layer, job := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	vars := versionstest.New(t)
	fnJob := &api.Job{ID: new("fnx-hello"), Namespace: new("default"), TaskGroups: []*api.TaskGroup{{Tasks: []*api.Task{{
		Artifacts: []*api.TaskArtifact{{GetterOptions: map[string]string{"checksum": "sha256:" + job}}},
	}}}}}
	mux := http.NewServeMux()
	mux.Handle("/v1/var/", vars)
	mux.Handle("/v1/vars", vars)
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var stubs []*api.JobListStub
		if strings.HasPrefix("fnx-hello", r.URL.Query().Get("prefix")) && r.URL.Query().Get("namespace") == "*" {
			stubs = append(stubs, &api.JobListStub{ID: "fnx-hello", Namespace: "default"})
		}
		_ = json.NewEncoder(w).Encode(stubs)
	})
	mux.HandleFunc("GET /v1/job/fnx-hello", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(fnJob)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	nc, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	st := versions.New(versions.NewNomad(nc.Variables(), ""), hclog.NewNullLogger())
	if _, _, err := st.Publish(ctx, "hello", versions.Snapshot{Spec: &specs.Function{Name: "hello", Runtime: "provided.al2023"}, CodeSHA256: code}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PublishLayer(ctx, "deps", versions.LayerSnapshot{CodeSHA256: layer, Size: 1}); err != nil {
		t.Fatal(err)
	}

	cfg := &config.Config{Nomad: &config.NomadConfig{Address: srv.URL, JobPrefix: "fnx-"}}
	refs, err := artifactRefs(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range refs {
		m, err := r.References(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for d := range m {
			got[d] = true
		}
	}
	if want := map[string]bool{code: true, layer: true, job: true}; !reflect.DeepEqual(got, want) {
		t.Fatalf("references %v, want %v", got, want)
	}
}
