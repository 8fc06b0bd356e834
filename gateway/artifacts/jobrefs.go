package artifacts

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// JobsAPI is the part of Nomad's jobs API JobReferences uses (*api.Jobs).
type JobsAPI interface {
	List(q *api.QueryOptions) ([]*api.JobListStub, *api.QueryMeta, error)
	Info(jobID string, q *api.QueryOptions) (*api.Job, *api.QueryMeta, error)
}

var _ JobsAPI = (*api.Jobs)(nil)

// JobReferences names every bundle a function job fetches (code and layers
// of $LATEST and of every published version's job): those the driver
// fetches itself, named by the task config's code_sha256 and layer_sha256s,
// and those artifact blocks fetch, by their checksum getter option. It is a
// Referencer for GC in a cluster.
type JobReferences struct {
	Jobs JobsAPI
	// Prefix selects the function jobs. Default "nimbus-".
	Prefix string
}

var _ Referencer = (*JobReferences)(nil)

// References implements Referencer.
func (j *JobReferences) References(ctx context.Context) (map[string]bool, error) {
	prefix := j.Prefix
	if prefix == "" {
		prefix = "nimbus-"
	}
	// Every namespace: a function's jobs live where its placement says.
	stubs, _, err := j.Jobs.List((&api.QueryOptions{Prefix: prefix, Namespace: "*"}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("listing jobs %s*: %w", prefix, err)
	}
	out := map[string]bool{}
	for _, s := range stubs {
		job, _, err := j.Jobs.Info(s.ID, (&api.QueryOptions{Namespace: s.Namespace}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("reading job %s: %w", s.ID, err)
		}
		for _, g := range job.TaskGroups {
			for _, t := range g.Tasks {
				for _, a := range t.Artifacts {
					if d, ok := strings.CutPrefix(a.GetterOptions["checksum"], "sha256:"); ok && ValidDigest(d) {
						out[d] = true
					}
				}
				// The attribute names are driver/taskconfig's (code_sha256,
				// layer_sha256s), which gateway/** may not import.
				if d, ok := t.Config["code_sha256"].(string); ok && ValidDigest(d) {
					out[d] = true
				}
				if ds, ok := t.Config["layer_sha256s"].([]any); ok {
					for _, d := range ds {
						if d, ok := d.(string); ok && ValidDigest(d) {
							out[d] = true
						}
					}
				}
			}
		}
	}
	return out, nil
}
