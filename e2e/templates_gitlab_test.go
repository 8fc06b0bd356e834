package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// GitLab publishes a JSON schema for .gitlab-ci.yml, but this machine has
// no network to fetch it and the test must not depend on one; so the check
// uses testdata/gitlab-ci.schema.json, a schema of the keywords the
// templates use written from GitLab's keyword reference, plus the
// cross-references a schema cannot express (stages and needs).

const gitlabSchemaID = "https://nimbus.invalid/schemas/gitlab-ci-subset.json"

func gitlabSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "gitlab-ci.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(gitlabSchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(gitlabSchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkGitLabCI validates a .gitlab-ci.yml document; it returns every
// problem found.
func checkGitLabCI(t *testing.T, s *jsonschema.Schema, src []byte) []string {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		return []string{"YAML: " + err.Error()}
	}
	// Through JSON, so the validator sees JSON's types.
	b, err := json.Marshal(v)
	if err != nil {
		return []string{"not representable as JSON: " + err.Error()}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	if err := s.Validate(inst); err != nil {
		problems = append(problems, err.Error())
	}
	doc, _ := inst.(map[string]any)
	stages := map[string]bool{}
	if l, ok := doc["stages"].([]any); ok {
		for _, s := range l {
			if str, ok := s.(string); ok {
				stages[str] = true
			}
		}
	} else {
		for _, s := range []string{".pre", "build", "test", "deploy", ".post"} {
			stages[s] = true
		}
	}
	jobs := map[string]map[string]any{}
	for k, v := range doc {
		if j, ok := v.(map[string]any); ok && !gitlabKeywords[k] && !strings.HasPrefix(k, ".") {
			jobs[k] = j
		}
	}
	for name, j := range jobs {
		if st, ok := j["stage"].(string); ok && !stages[st] {
			problems = append(problems, "job "+name+": stage "+st+" is not in stages")
		}
		needs, _ := j["needs"].([]any)
		for _, n := range needs {
			ref, _ := n.(string)
			if m, ok := n.(map[string]any); ok {
				ref, _ = m["job"].(string)
			}
			if _, ok := jobs[ref]; !ok {
				problems = append(problems, "job "+name+": needs unknown job "+ref)
			}
		}
	}
	return problems
}

// TestTemplatesGitLabCI: every template's .gitlab-ci.yml, as nimbus init
// writes it, passes the schema and the cross-reference checks.
func TestTemplatesGitLabCI(t *testing.T) {
	s := gitlabSchema(t)
	for _, name := range templateNames(t) {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(scaffoldTemplate(t, name), ".gitlab-ci.yml"))
			if err != nil {
				t.Fatal(err)
			}
			if p := checkGitLabCI(t, s, src); len(p) > 0 {
				t.Fatalf(".gitlab-ci.yml:\n%s", strings.Join(p, "\n"))
			}
		})
	}
}

// TestGitLabCICheckFindsMistakes: the check can fail, on each class of
// mistake it exists for.
func TestGitLabCICheckFindsMistakes(t *testing.T) {
	s := gitlabSchema(t)
	base := "stages: [test, deploy]\nunit:\n  stage: test\n  script: [go test ./...]\n"
	for _, tc := range []struct{ name, yaml, says string }{
		{"misspelt keyword", base + "ship:\n  stage: deploy\n  scripts: [x]\n", "scripts"},
		{"job without script", base + "ship:\n  stage: deploy\n", "script"},
		{"bad when", base + "ship:\n  stage: deploy\n  script: [x]\n  rules:\n    - if: $CI\n      when: sometimes\n", "when"},
		{"unknown stage", base + "ship:\n  stage: release\n  script: [x]\n", "stage release is not in stages"},
		{"needs a missing job", base + "ship:\n  stage: deploy\n  script: [x]\n  needs: [build]\n", "needs unknown job build"},
		{"service without name", base + "ship:\n  stage: deploy\n  script: [x]\n  services:\n    - alias: db\n", "name"},
		{"variable with a bad name", "variables:\n  BAD-NAME: x\n" + base, "BAD-NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := checkGitLabCI(t, s, []byte(tc.yaml))
			if len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), tc.says) {
				t.Fatalf("want a problem mentioning %q, got %q", tc.says, p)
			}
		})
	}
	if p := checkGitLabCI(t, s, []byte(base)); len(p) > 0 {
		t.Fatalf("a correct file: %q", p)
	}
}
