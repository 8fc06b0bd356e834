package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"go.yaml.in/yaml/v3"

	"github.com/nimbus-fn/nimbus/blueprints"
	"github.com/nimbus-fn/nimbus/specs"
)

// The application templates' CI/CD files are checked three ways: actionlint
// (pinned in tools/actionlint) on every GitHub workflow, a JSON schema of
// the GitLab CI keywords the templates use on every .gitlab-ci.yml, and a
// run of each pipeline's shell steps, in order, against a real `nimbus dev`
// (TestTemplatePipelines).

// scaffoldTemplate writes template name into a new dir called demo with
// the real CLI (`nimbus init --template`), as a user starts a project.
func scaffoldTemplate(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	out, err := exec.Command(nimbusOnce(t), "init", "--template", name, "--module", "example.com/demo", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("nimbus init --template %s: %v\n%s", name, err, out)
	}
	return dir
}

func templateNames(t *testing.T) []string {
	var names []string
	for _, ti := range blueprints.Templates() {
		names = append(names, ti.Name)
	}
	if len(names) == 0 {
		t.Fatal("no application templates")
	}
	return names
}

// TestTemplatesCatalogue: the issue asks for at least a REST API on Redis,
// a queue-driven pipeline and a scheduled report.
func TestTemplatesCatalogue(t *testing.T) {
	have := map[string]bool{}
	for _, n := range templateNames(t) {
		have[n] = true
	}
	for _, want := range []string{"rest-api-redis", "queue-pipeline", "scheduled-report"} {
		if !have[want] {
			t.Errorf("no template %s (have %v)", want, have)
		}
	}
}

var actionlintBin struct {
	sync.Once
	path string
	err  error
}

// actionlint builds the pinned actionlint (tools/actionlint) once per test
// binary.
func actionlint(t *testing.T) string {
	t.Helper()
	actionlintBin.Do(func() {
		dir, err := onceTempDir("actionlint-")
		if err != nil {
			actionlintBin.err = err
			return
		}
		path := filepath.Join(dir, "actionlint")
		cmd := exec.Command("go", "build", "-o", path, "github.com/rhysd/actionlint/cmd/actionlint")
		cmd.Dir = filepath.Join("..", "tools", "actionlint")
		if out, err := cmd.CombinedOutput(); err != nil {
			actionlintBin.err = fmt.Errorf("building tools/actionlint: %w\n%s", err, out)
			return
		}
		actionlintBin.path = path
	})
	if actionlintBin.path == "" {
		t.Fatal(actionlintBin.err)
	}
	return actionlintBin.path
}

// TestTemplatesActionlint: every template's GitHub workflow, as `nimbus
// init` writes it, has no actionlint finding (syntax, expressions, job
// and step keys, action inputs, needs, and shellcheck when it is on PATH).
func TestTemplatesActionlint(t *testing.T) {
	lint := actionlint(t)
	for _, name := range templateNames(t) {
		t.Run(name, func(t *testing.T) {
			dir := scaffoldTemplate(t, name)
			wf, _ := filepath.Glob(filepath.Join(dir, ".github", "workflows", "*.yml"))
			if len(wf) == 0 {
				t.Fatal("no GitHub workflow in .github/workflows")
			}
			cmd := exec.Command(lint, append([]string{"-no-color"}, wf...)...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("actionlint: %v\n%s", err, out)
			}
		})
	}
}

// TestActionlintFindsMistakes: the check can fail: a workflow with an
// unknown step key and an undefined expression context is refused.
func TestActionlintFindsMistakes(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{".github/workflows/bad.yml": "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secret.X }}\n        timeout: 3\n"})
	out, err := exec.Command(actionlint(t), "-no-color", filepath.Join(dir, ".github/workflows/bad.yml")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "timeout") || !strings.Contains(string(out), "secret") {
		t.Fatalf("actionlint accepted a broken workflow: %v\n%s", err, out)
	}
}

// ghWorkflow is the part of a GitHub Actions workflow the pipeline run reads.
type ghWorkflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]struct {
		Needs stringList        `yaml:"needs"`
		Env   map[string]string `yaml:"env"`
		Steps []struct {
			Name  string            `yaml:"name"`
			Uses  string            `yaml:"uses"`
			Run   string            `yaml:"run"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// stringList is YAML's "a string or a list of strings".
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = []string{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// pipelineStep is one shell step of a pipeline, with the environment its
// file gives it (later maps win).
type pipelineStep struct {
	where  string // job / step, for messages
	script string
	env    []map[string]string
}

// skippedSteps are GitHub steps that only make sense on a CI runner: the
// test runs the freshly built nimbus instead of installing a release.
var skippedSteps = map[string]bool{"Install nimbus": true}

// githubSteps returns the run: steps of a workflow's jobs in an order
// that honours needs (ties by name); uses: steps and skippedSteps are left
// out, and named in skipped.
func githubSteps(t *testing.T, path string) (steps []pipelineStep, skipped []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wf ghWorkflow
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	done := map[string]bool{}
	var order []string
	for len(order) < len(wf.Jobs) {
		var ready []string
		for name, j := range wf.Jobs {
			if done[name] {
				continue
			}
			ok := true
			for _, n := range j.Needs {
				ok = ok && done[n]
			}
			if ok {
				ready = append(ready, name)
			}
		}
		if len(ready) == 0 {
			t.Fatalf("%s: jobs with needs that never complete", path)
		}
		sort.Strings(ready)
		done[ready[0]] = true
		order = append(order, ready[0])
	}
	for _, jn := range order {
		j := wf.Jobs[jn]
		for i, s := range j.Steps {
			where := fmt.Sprintf("job %s step %d (%s)", jn, i+1, s.Name)
			switch {
			case s.Uses != "" || skippedSteps[s.Name]:
				skipped = append(skipped, where+" "+s.Uses)
				continue
			case s.Shell != "" && s.Shell != "bash":
				t.Fatalf("%s: shell %q; the test runs bash steps", where, s.Shell)
			}
			steps = append(steps, pipelineStep{where: where, script: s.Run, env: []map[string]string{wf.Env, j.Env, s.Env}})
		}
	}
	return steps, skipped
}

// gitlabKeywords are top-level keys of .gitlab-ci.yml that are not jobs.
var gitlabKeywords = map[string]bool{"stages": true, "variables": true, "default": true, "include": true, "workflow": true,
	"image": true, "services": true, "before_script": true, "after_script": true, "cache": true, "spec": true}

// gitlabSteps returns the script of every job, by stage then name (one
// step per job: GitLab runs a job's script lines in one shell). Each
// before_script is CI setup (installing nimbus) and is named in skipped.
func gitlabSteps(t *testing.T, path string) (steps []pipelineStep, skipped []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var stages []string
	var globals map[string]string
	if n, ok := doc["stages"]; ok {
		if err := n.Decode(&stages); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := doc["variables"]; ok {
		if err := n.Decode(&globals); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := doc["default"]; ok {
		skipped = append(skipped, "default before_script")
	}
	type job struct {
		name         string
		Stage        string            `yaml:"stage"`
		Script       stringList        `yaml:"script"`
		BeforeScript stringList        `yaml:"before_script"`
		Variables    map[string]string `yaml:"variables"`
	}
	var jobs []job
	for name, n := range doc {
		if gitlabKeywords[name] || strings.HasPrefix(name, ".") {
			continue
		}
		var j job
		if err := n.Decode(&j); err != nil {
			t.Fatalf("%s: job %s: %v", path, name, err)
		}
		j.name = name
		if j.Stage == "" {
			j.Stage = "test"
		}
		if len(j.BeforeScript) > 0 {
			skipped = append(skipped, "job "+name+" before_script")
		}
		jobs = append(jobs, j)
	}
	stageIndex := func(s string) int {
		for i, x := range stages {
			if x == s {
				return i
			}
		}
		t.Fatalf("%s: stage %q is not in stages %v", path, s, stages)
		return 0
	}
	sort.Slice(jobs, func(a, b int) bool {
		if sa, sb := stageIndex(jobs[a].Stage), stageIndex(jobs[b].Stage); sa != sb {
			return sa < sb
		}
		return jobs[a].name < jobs[b].name
	})
	for _, j := range jobs {
		steps = append(steps, pipelineStep{where: "job " + j.name, script: strings.Join(j.Script, "\n"), env: []map[string]string{globals, j.Variables}})
	}
	return steps, skipped
}

// runSteps runs steps with bash (as GitHub's and GitLab's runners do:
// errexit and pipefail) in dir. env is the process environment: base
// first, then each step's own (a value holding a GitHub expression takes
// secrets[name], empty when absent, as a missing secret is), then
// override, which also beats values the pipeline file sets (service
// container addresses this machine does not have).
func runSteps(t *testing.T, dir string, steps []pipelineStep, base []string, secrets, override map[string]string) {
	t.Helper()
	for _, s := range steps {
		env := append([]string(nil), base...)
		for _, m := range s.env {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := m[k]
				if strings.Contains(v, "${{") {
					v = secrets[k]
				}
				env = append(env, k+"="+v)
			}
		}
		for k, v := range override {
			env = append(env, k+"="+v)
		}
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s.script)
		cmd.Dir, cmd.Env = dir, env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("%s (%s):\n%s", s.where, time.Since(start).Round(time.Millisecond), out)
		if err != nil {
			t.Fatalf("%s failed: %v\nscript:\n%s", s.where, err, s.script)
		}
	}
}

// pipelineEnv is the environment every pipeline step starts from: this
// process's (Go's caches, HOME) without anything that would point the CLI
// elsewhere, the dir holding the freshly built nimbus first on PATH, and
// extra.
func pipelineEnv(t *testing.T, extra ...string) []string {
	nimbusDir := filepath.Dir(nimbusOnce(t))
	var env []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "NIMBUS_"), strings.HasPrefix(k, "AWS_"), strings.HasPrefix(k, "NOMAD_"),
			strings.HasPrefix(k, "GITHUB_"), strings.HasPrefix(k, "CI_"), k == "REDIS_URL", k == "NATS_URL", k == "GOFLAGS":
		case k == "PATH":
			env = append(env, "PATH="+nimbusDir+string(os.PathListSeparator)+v)
		default:
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// templateCase is what one template's pipeline needs beyond the gateway
// (brokers, as environment overrides) and how to check what it deployed.
type templateCase struct {
	setup func(t *testing.T) map[string]string
	// gatewayConf, when set, is extra gateway config given the brokers.
	gatewayConf func(brokers map[string]string) string
	verify      func(t *testing.T, g *versionsGateway, dir string, env map[string]string, live map[string]string)
}

var templateCases = map[string]templateCase{}

// TestTemplatePipelines runs each template's GitHub workflow and GitLab
// pipeline, shell step by shell step, in the scaffolded project against a
// real `nimbus dev` (access keys on, so every call is signed): validate,
// the project's own tests, build, nimbus deploy --endpoint, publish and
// the move of `live`. Then every function must exist with `live` on its
// newest published version, and the template's own check invokes it.
func TestTemplatePipelines(t *testing.T) {
	for _, name := range templateNames(t) {
		tc, ok := templateCases[name]
		if !ok {
			t.Errorf("template %s has no pipeline test case", name)
			continue
		}
		for _, flavour := range []string{"github", "gitlab"} {
			t.Run(name+"/"+flavour, func(t *testing.T) {
				// Each run has its own gateway, brokers and project; much
				// of a run is waiting (deploys, schedule ticks, retries).
				t.Parallel()
				dir := scaffoldTemplate(t, name)
				brokers := tc.setup(t)
				conf := ""
				if tc.gatewayConf != nil {
					conf = tc.gatewayConf(brokers)
				}
				g := startVersionsGatewayConf(t, nil, conf)
				gwEnv := map[string]string{"NIMBUS_ENDPOINT": g.base, "AWS_ACCESS_KEY_ID": e2eAccessKey,
					"AWS_SECRET_ACCESS_KEY": e2eSecretKey, "AWS_REGION": e2eRegion}
				var steps []pipelineStep
				var skipped []string
				var base []string
				secrets := map[string]string{}
				if flavour == "github" {
					steps, skipped = githubSteps(t, filepath.Join(dir, ".github", "workflows", "deploy.yml"))
					base = pipelineEnv(t, "CI=true", "GITHUB_ACTIONS=true", "GITHUB_SHA=0123456789abcdef0123456789abcdef01234567",
						"GITHUB_REF=refs/heads/main", "RUNNER_TEMP="+t.TempDir())
					// Secrets and vars: the gateway, its key and the brokers.
					for k, v := range gwEnv {
						secrets[k] = v
					}
					for k, v := range brokers {
						secrets[k] = v
					}
				} else {
					steps, skipped = gitlabSteps(t, filepath.Join(dir, ".gitlab-ci.yml"))
					// CI/CD variables are the project's, not the file's.
					base = pipelineEnv(t, "CI=true", "GITLAB_CI=true", "CI_COMMIT_SHA=0123456789abcdef0123456789abcdef01234567",
						"CI_COMMIT_BRANCH=main", "CI_DEFAULT_BRANCH=main", "CI_PROJECT_DIR="+dir)
					for k, v := range gwEnv {
						base = append(base, k+"="+v)
					}
				}
				t.Logf("skipped (CI runner setup): %s", strings.Join(skipped, "; "))
				runSteps(t, dir, steps, base, secrets, brokers)
				live := checkLive(t, g, dir)
				tc.verify(t, g, dir, brokers, live)
				if flavour != "github" {
					return
				}
				// A second push with changed code: the deploy job publishes
				// version 2 of every function and nimbus rollout moves live
				// to it in two steps.
				writeTree(t, dir, map[string]string{"push2.go": "package main\n\nimport \"log\"\n\nfunc init() { log.SetPrefix(\"[push 2] \") }\n"})
				var deploySteps []pipelineStep
				for _, s := range steps {
					if strings.HasPrefix(s.where, "job deploy ") {
						deploySteps = append(deploySteps, s)
					}
				}
				override := map[string]string{"NIMBUS_ROLLOUT": "--steps 50,100 --interval 1s"}
				for k, v := range brokers {
					override[k] = v
				}
				runSteps(t, dir, deploySteps, base, secrets, override)
				live2 := checkLive(t, g, dir)
				for fn, v := range live2 {
					if want := fmt.Sprint(mustAtoi(t, live[fn]) + 1); v != want {
						t.Errorf("after the second push %s:live is on %s, want %s", fn, v, want)
					}
					if out := g.mustCLI(t, "rollout", "status", fn, "--alias", "live"); !strings.Contains(out, "Succeeded") {
						t.Errorf("nimbus rollout status %s:\n%s", fn, out)
					}
				}
				tc.verify(t, g, dir, brokers, live2)
			})
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkLive asserts every function of the project's spec exists on the
// gateway with a published version and `live` pointing at the newest one,
// and returns function → that version.
func checkLive(t *testing.T, g *versionsGateway, dir string) map[string]string {
	t.Helper()
	file, diags := specs.Load(dir, &specs.Options{Env: func(string) string { return "" }})
	if diags.HasErrors() {
		t.Fatalf("loading the project's spec: %s", specs.FormatDiagnostics(diags, nil))
	}
	c := g.lambda()
	ctx := context.Background()
	live := map[string]string{}
	for _, fn := range file.Functions {
		vs, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(fn.Name)})
		if err != nil {
			t.Fatalf("ListVersionsByFunction %s: %v", fn.Name, err)
		}
		newest := 0
		for _, v := range vs.Versions {
			if n, err := strconv.Atoi(aws.ToString(v.Version)); err == nil && n > newest {
				newest = n
			}
		}
		if newest == 0 {
			t.Fatalf("%s has no published version", fn.Name)
		}
		a, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(fn.Name), Name: aws.String("live")})
		if err != nil {
			t.Fatalf("GetAlias %s live: %v", fn.Name, err)
		}
		if got := aws.ToString(a.FunctionVersion); got != strconv.Itoa(newest) || (a.RoutingConfig != nil && len(a.RoutingConfig.AdditionalVersionWeights) > 0) {
			t.Fatalf("%s:live is %s (routing %+v), want all of it on the newest version %d", fn.Name, got, a.RoutingConfig, newest)
		}
		live[fn.Name] = strconv.Itoa(newest)
	}
	if len(live) == 0 {
		t.Fatal("the project declares no functions")
	}
	return live
}

// invokeLive invokes fn:live through the Invoke API and checks the version
// that ran is want.
func invokeLive(t *testing.T, g *versionsGateway, fn, want string, payload []byte) []byte {
	t.Helper()
	out, err := g.lambda().Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn), Qualifier: aws.String("live"), Payload: payload})
	if err != nil {
		t.Fatalf("invoking %s:live: %v", fn, err)
	}
	if out.FunctionError != nil {
		t.Fatalf("%s:live: function error %s: %s", fn, *out.FunctionError, out.Payload)
	}
	if got := aws.ToString(out.ExecutedVersion); got != want {
		t.Fatalf("%s:live ran version %s, want %s", fn, got, want)
	}
	return bytes.TrimSpace(out.Payload)
}
