package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
	"github.com/nimbus-fn/nimbus/specs"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// baseOptions are the options every golden case starts from; a case's
// <name>.opts.json is decoded over them.
func baseOptions() Options {
	return Options{
		ArtifactBaseURL: "https://artifacts.nimbus.test/v1/bundles/",
		CodeChecksum:    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
	}
}

func loadCase(t *testing.T, name string) (*specs.Function, Options) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fn specs.Function
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fn); err != nil {
		t.Fatalf("decoding %s.spec.json: %v", name, err)
	}
	opts := baseOptions()
	if raw, err := os.ReadFile(filepath.Join("testdata", name+".opts.json")); err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&opts); err != nil {
			t.Fatalf("decoding %s.opts.json: %v", name, err)
		}
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return &fn, opts
}

func goldenCases(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden cases in testdata")
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".spec.json"))
	}
	return names
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./jobs -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the compiled output (run with -update and review the diff)\n--- got ---\n%s", path, got)
	}
}

func TestGolden(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			fn, opts := loadCase(t, name)
			job, err := Compile(fn, opts)
			if err != nil {
				t.Fatal(err)
			}
			js, err := RenderJSON(job)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", name+".job.json"), js)
			hcl, err := RenderHCL(job)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", name+".job.hcl"), hcl)
		})
	}
}

func TestDeterministic(t *testing.T) {
	for _, name := range goldenCases(t) {
		fn, opts := loadCase(t, name)
		var first, firstHCL []byte
		for i := range 20 {
			job, err := Compile(fn, opts)
			if err != nil {
				t.Fatal(err)
			}
			js, err := RenderJSON(job)
			if err != nil {
				t.Fatal(err)
			}
			hcl, err := RenderHCL(job)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first, firstHCL = js, hcl
				continue
			}
			if !bytes.Equal(js, first) || !bytes.Equal(hcl, firstHCL) {
				t.Fatalf("%s: compile %d differs from the first", name, i)
			}
		}
	}
}

func TestCompileShape(t *testing.T) {
	fn, opts := loadCase(t, "full")
	job, err := Compile(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if *job.ID != "nimbus-orders-3" || *job.Namespace != "payments" || *job.Region != "eu" || *job.NodePool != "functions" || *job.Priority != 70 {
		t.Errorf("job placement: id=%s ns=%s region=%s pool=%s prio=%d", *job.ID, *job.Namespace, *job.Region, *job.NodePool, *job.Priority)
	}
	if len(job.TaskGroups) != 2 || *job.TaskGroups[0].Name != GroupProvisioned || *job.TaskGroups[1].Name != GroupOnDemand {
		t.Fatalf("groups: %+v", job.TaskGroups)
	}
	prov, od := job.TaskGroups[0], job.TaskGroups[1]
	// 5..20 environments at 4 per instance = 2..5 instances.
	if *prov.Count != 2 || *prov.Scaling.Min != 2 || *prov.Scaling.Max != 5 || !*prov.Scaling.Enabled {
		t.Errorf("provisioned scaling: count=%d min=%d max=%d enabled=%v", *prov.Count, *prov.Scaling.Min, *prov.Scaling.Max, *prov.Scaling.Enabled)
	}
	// reserved concurrency 40 at 4 per instance = 10 instances.
	if *od.Count != 0 || *od.Scaling.Max != 10 || *od.Scaling.Enabled {
		t.Errorf("ondemand scaling: count=%d max=%d enabled=%v", *od.Count, *od.Scaling.Max, *od.Scaling.Enabled)
	}
	check := prov.Scaling.Policy["check"].([]any)[0].(map[string]any)[CheckName].([]any)[0].(map[string]any)
	if check["source"] != APMSource || check["query"] != "orders/3" {
		t.Errorf("check: %v", check)
	}
	strategy := check["strategy"].([]any)[0].(map[string]any)[StrategyName].([]any)[0].(map[string]any)
	if strategy[StrategyTarget] != 0.6 || strategy[StrategyMin] != 2 || strategy[StrategyMax] != 5 {
		t.Errorf("strategy config: %v", strategy)
	}
	var windows []scheduleConfig
	if err := json.Unmarshal([]byte(strategy[StrategySchedules].(string)), &windows); err != nil {
		t.Fatal(err)
	}
	if len(windows) != 1 || windows[0].Min != 3 || windows[0].Timezone != "Europe/Berlin" {
		t.Errorf("schedules: %+v", windows)
	}

	for _, g := range job.TaskGroups {
		task := g.Tasks[0]
		if task.Driver != taskconfig.DriverName {
			t.Errorf("%s: driver %q", *g.Name, task.Driver)
		}
		wantInit := taskconfig.InitOnDemand
		if *g.Name == GroupProvisioned {
			wantInit = taskconfig.InitProvisioned
		}
		if task.Config["initialization_type"] != wantInit {
			t.Errorf("%s: initialization_type %v", *g.Name, task.Config["initialization_type"])
		}
		schema := map[string]bool{}
		for _, a := range taskconfig.Schema() {
			schema[a.Name] = true
			if _, ok := task.Config[a.Name]; a.Required && !ok {
				t.Errorf("%s: required config attribute %s missing", *g.Name, a.Name)
			}
		}
		for k := range task.Config {
			if !schema[k] {
				t.Errorf("%s: config attribute %s is not in the driver's schema", *g.Name, k)
			}
		}
		if _, ok := task.Config["invoke_secret"]; ok || task.Config["invoke_secret_file"] != InvokeSecretFile {
			t.Errorf("%s: config carries invoke_secret %v / invoke_secret_file %v, want only the file", *g.Name, task.Config["invoke_secret"], task.Config["invoke_secret_file"])
		}
		if len(task.Templates) != 2 {
			t.Fatalf("%s: %d templates, want the invoke secret's and the spec secrets'", *g.Name, len(task.Templates))
		}
		inv := task.Templates[0]
		wantTmpl := `{{ with nomadVar "nomad/jobs/nimbus-orders-3" }}{{ .invoke_secret }}{{ end }}`
		if *inv.EmbeddedTmpl != wantTmpl || *inv.DestPath != InvokeSecretFile || *inv.ChangeMode != "restart" || *inv.Perms != "0400" || inv.Envvars != nil {
			t.Errorf("%s: invoke secret template %q -> %q change_mode %q perms %q", *g.Name, *inv.EmbeddedTmpl, *inv.DestPath, *inv.ChangeMode, *inv.Perms)
		}
		// 1769 MB x 4 environments + 64 MB overhead; 4 vCPUs at 1000 MHz.
		if *task.Resources.MemoryMB != 1769*4+64 || *task.Resources.CPU != 4000 {
			t.Errorf("%s: resources memory=%d cpu=%d", *g.Name, *task.Resources.MemoryMB, *task.Resources.CPU)
		}
		// http(s) bundles are the driver's to fetch and cache: no artifact blocks.
		if len(task.Artifacts) != 0 || task.Config["code_url"] != fn.Code.URL ||
			task.Config["code_sha256"] != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" ||
			task.Config["code_dir"] != nil || fmt.Sprint(task.Config["layer_urls"]) != "[https://artifacts.example.com/layers/pydeps-4.zip https://artifacts.example.com/layers/otel-1.zip]" ||
			fmt.Sprint(task.Config["layer_sha256s"]) != "[2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9]" {
			t.Errorf("%s: artifacts %+v, config %v", *g.Name, task.Artifacts, task.Config)
		}
		svc := g.Services[0]
		wantTags := []string{"function=orders", "version=3", "group=" + *g.Name}
		if svc.Name != "nimbus-orders" || svc.Provider != ProviderNomad || strings.Join(svc.Tags, ",") != strings.Join(wantTags, ",") {
			t.Errorf("%s: service %+v", *g.Name, svc)
		}
		if svc.Checks[0].Path != invokeapi.PathHealth || svc.Checks[0].Type != "http" {
			t.Errorf("%s: check %+v", *g.Name, svc.Checks[0])
		}
		tmpl := *task.Templates[1].EmbeddedTmpl
		want := "{{ with nomadVar \"nimbus/orders/api\" }}\nAPI_TOKEN={{ index . \"token\" | toJSON }}\n{{ end }}\n" +
			"{{ with nomadVar \"nimbus/orders/db\" }}\nDB_PASSWORD={{ index . \"password\" | toJSON }}\nDB_USER={{ index . \"user\" | toJSON }}\n{{ end }}\n"
		if tmpl != want || !*task.Templates[1].Envvars {
			t.Errorf("%s: template\n%s", *g.Name, tmpl)
		}
	}
	var spec specs.Function
	if err := json.Unmarshal([]byte(job.Meta[MetaSpec]), &spec); err != nil {
		t.Fatalf("meta spec: %v", err)
	}
	if spec.Name != "orders" || job.Meta[MetaVersion] != "3" || job.Meta[MetaCodeSHA256] != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" {
		t.Errorf("meta: %v", job.Meta)
	}
}

// Code and layers from sources go-getter understands but the driver does not
// fetch (s3::, git::, …) stay artifact blocks unpacked into the task dir;
// one such layer keeps every layer on that path, so their order holds.
func TestCompileGoGetterSourcesStayArtifacts(t *testing.T) {
	fn, opts := loadCase(t, "hello")
	fn.Code = &specs.Code{URL: "s3::https://bucket.s3.amazonaws.com/fn.zip", Checksum: opts.CodeChecksum}
	fn.Layers = []string{"a", "b"}
	opts.LayerArtifacts = []Artifact{
		{Source: "https://a/1.zip", Checksum: opts.CodeChecksum},
		{Source: "git::https://example.com/layer.git", Checksum: opts.CodeChecksum},
	}
	job, err := Compile(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	task := job.TaskGroups[0].Tasks[0]
	if len(task.Artifacts) != 3 || *task.Artifacts[0].RelativeDest != "local/code" || *task.Artifacts[2].RelativeDest != "local/layers/1" {
		t.Errorf("artifacts %+v", task.Artifacts)
	}
	if task.Config["code_dir"] != "local/code" || task.Config["code_url"] != nil || task.Config["layer_urls"] != nil ||
		fmt.Sprint(task.Config["layer_dirs"]) != "[local/layers/0 local/layers/1]" {
		t.Errorf("config %v", task.Config)
	}
	if got := Bundles(task); len(got) != 3 || got[0].Source != fn.Code.URL || got[2].Source != "git::https://example.com/layer.git" {
		t.Errorf("Bundles of an artifact-block task: %+v", got)
	}
	// Code from go-getter, layers for the driver: Bundles still puts code first.
	opts.LayerArtifacts = []Artifact{{Source: "https://a/1.zip", Checksum: opts.CodeChecksum}}
	fn.Layers = []string{"a"}
	if job, err = Compile(fn, opts); err != nil {
		t.Fatal(err)
	}
	if got := Bundles(job.TaskGroups[0].Tasks[0]); len(got) != 2 || got[0].Source != fn.Code.URL || got[1].Source != "https://a/1.zip" ||
		got[1].Checksum != opts.CodeChecksum {
		t.Errorf("Bundles of a mixed task: %+v", got)
	}
}

func TestCompileLatestWithoutProvisioned(t *testing.T) {
	fn, opts := loadCase(t, "hello")
	job, err := Compile(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if *job.ID != "nimbus-hello" || *job.Region != DefaultRegion || job.Datacenters[0] != "*" {
		t.Errorf("job: id=%s region=%s dcs=%v", *job.ID, *job.Region, job.Datacenters)
	}
	prov := job.TaskGroups[0]
	if *prov.Count != 0 || *prov.Scaling.Enabled || prov.Scaling.Policy != nil {
		t.Errorf("provisioned group without provisioned concurrency: count=%d scaling=%+v", *prov.Count, prov.Scaling)
	}
	src := Bundles(prov.Tasks[0])
	if len(src) != 1 || src[0].Source != "https://artifacts.nimbus.test/v1/bundles/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.zip" ||
		src[0].Checksum != "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Errorf("code bundle %+v", src)
	}
	if *job.TaskGroups[1].Scaling.Max != DefaultConcurrency {
		t.Errorf("ondemand max %d", *job.TaskGroups[1].Scaling.Max)
	}
	if *prov.Tasks[0].Resources.CPU != minCPU {
		t.Errorf("cpu %d, want the floor %d", *prov.Tasks[0].Resources.CPU, minCPU)
	}
}

func TestCompileErrors(t *testing.T) {
	good := func() (*specs.Function, Options) {
		return &specs.Function{Name: "f", Runtime: "provided.al2023", Code: &specs.Code{Dir: "."}, MemoryMB: 128, Timeout: "3s"}, baseOptions()
	}
	cases := []struct {
		name   string
		mutate func(*specs.Function, *Options)
		want   string
	}{
		{"bad version", func(_ *specs.Function, o *Options) { o.Version = "01" }, `version "01"`},
		{"bad provider", func(_ *specs.Function, o *Options) { o.ServiceProvider = "etcd" }, `service provider "etcd"`},
		{"no code", func(f *specs.Function, _ *Options) { f.Code = nil }, "code is required"},
		{"empty code", func(f *specs.Function, _ *Options) { f.Code = &specs.Code{} }, "one of dir, zip or url"},
		{"url without checksum", func(f *specs.Function, _ *Options) { f.Code = &specs.Code{URL: "https://x/y.zip"} }, `checksum "" is not sha256`},
		{"bad packaged checksum", func(_ *specs.Function, o *Options) { o.CodeChecksum = "sha256:abc" }, "64 hex digits"},
		{"no artifact base", func(_ *specs.Function, o *Options) { o.ArtifactBaseURL = "" }, "artifact base URL"},
		{"layer mismatch", func(f *specs.Function, _ *Options) { f.Layers = []string{"a"} }, "1 layers in the spec but 0 layer artifacts"},
		{"bad memory", func(f *specs.Function, _ *Options) { f.MemoryMB = 64 }, "memory_mb 64"},
		{"bad timeout", func(f *specs.Function, _ *Options) { f.Timeout = "forever" }, `timeout "forever"`},
		{"too many envs", func(f *specs.Function, _ *Options) { f.EnvironmentsPerInstance = 65 }, "environments_per_instance 65"},
		{"bad secret", func(f *specs.Function, _ *Options) { f.Secrets = []*specs.Secret{{Env: "X"}} }, "secret 0 needs env, path and key"},
		{"no name", func(f *specs.Function, _ *Options) { f.Name = "" }, "function name is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fn, opts := good()
			tc.mutate(fn, &opts)
			_, err := Compile(fn, opts)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
	if _, err := Compile(nil, baseOptions()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil function: %v", err)
	}
	fn, opts := good()
	if _, err := Compile(fn, opts); err != nil {
		t.Fatalf("baseline: %v", err)
	}
}

func TestServiceName(t *testing.T) {
	long := strings.Repeat("a", 64)
	cases := map[string]string{
		"hello":            "nimbus-hello",
		"Hello-World":      "nimbus-Hello-World",
		"legacy_batch_job": "nimbus-legacy-batch-job-",
		"trailing-":        "nimbus-trailing-",
		long:               "nimbus-" + strings.Repeat("a", 47),
	}
	for fn, prefix := range cases {
		got := ServiceName(fn)
		if !serviceNameRE.MatchString(got) {
			t.Errorf("ServiceName(%q) = %q is not a valid Nomad service name", fn, got)
		}
		if !strings.HasPrefix(got, prefix) {
			t.Errorf("ServiceName(%q) = %q, want prefix %q", fn, got, prefix)
		}
	}
	if ServiceName("a_b") == ServiceName("a-b") {
		t.Errorf("a_b and a-b share service name %q", ServiceName("a-b"))
	}
}

func TestJobIDAndVersion(t *testing.T) {
	if JobID("f", "$LATEST") != "nimbus-f" || JobID("f", "") != "nimbus-f" || JobID("f", "12") != "nimbus-f-12" {
		t.Error("JobID")
	}
	for v, ok := range map[string]bool{"$LATEST": true, "1": true, "42": true, "0": false, "01": false, "-1": false, "x": false, "": false} {
		if ValidVersion(v) != ok {
			t.Errorf("ValidVersion(%q) = %v", v, !ok)
		}
	}
}

// The compiled job survives a JSON round trip through the api types, which
// is what the register endpoint and `nomad job run -json` do with it.
func TestRenderJSONRoundTrip(t *testing.T) {
	fn, opts := loadCase(t, "full")
	job, err := Compile(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	js, err := RenderJSON(job)
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ Job *api.Job }
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	again, err := RenderJSON(back.Job)
	if err != nil {
		t.Fatal(err)
	}
	// Numbers inside free-form maps come back as float64 and print the same.
	if !bytes.Equal(js, again) {
		t.Errorf("JSON round trip changed the job")
	}
}

func BenchmarkCompile(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "full.spec.json"))
	if err != nil {
		b.Fatal(err)
	}
	var fn specs.Function
	if err := json.Unmarshal(raw, &fn); err != nil {
		b.Fatal(err)
	}
	opts := baseOptions()
	opts.Version = "3"
	opts.LayerArtifacts = []Artifact{
		{Source: "https://a/1.zip", Checksum: opts.CodeChecksum},
		{Source: "https://a/2.zip", Checksum: opts.CodeChecksum},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(&fn, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderHCL(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "full.spec.json"))
	if err != nil {
		b.Fatal(err)
	}
	var fn specs.Function
	if err := json.Unmarshal(raw, &fn); err != nil {
		b.Fatal(err)
	}
	opts := baseOptions()
	opts.LayerArtifacts = []Artifact{
		{Source: "https://a/1.zip", Checksum: opts.CodeChecksum},
		{Source: "https://a/2.zip", Checksum: opts.CodeChecksum},
	}
	job, err := Compile(&fn, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RenderHCL(job); err != nil {
			b.Fatal(err)
		}
	}
}

// goldenKey is the cluster key the compiler was given before invoke secrets
// moved out of jobs; the goldens then held secrets derived from it.
const goldenKey = "golden-test-key"

// secretAttr finds an invoke_secret attribute in a job's JSON or HCL.
var secretAttr = regexp.MustCompile(`"invoke_secret"\s*:|\binvoke_secret\s*=`)

// No compiled job — in memory, rendered as JSON or HCL, or as a golden on
// disk — may carry the invoke secret: it lives in the job's Nomad Variable.
func TestCompiledJobsHoldNoSecret(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			fn, opts := loadCase(t, name)
			job, err := Compile(fn, opts)
			if err != nil {
				t.Fatal(err)
			}
			v, err := InvokeVariable(job, []byte(goldenKey))
			if err != nil {
				t.Fatal(err)
			}
			if opts.Connect {
				// TestCompileConnect: no secret, no Variable.
				if v != nil {
					t.Fatalf("a Connect-native job got variable %+v", v)
				}
				return
			}
			secret := v.Items[VariableInvokeSecret]
			if secret != invokeapi.DeriveSecret([]byte(goldenKey), fn.Name, opts.withDefaults().Version) {
				t.Fatalf("variable secret %q is not derived from the key", secret)
			}
			if v.Path != VariablePath(*job.ID) || v.Path != "nomad/jobs/"+*job.ID || v.Namespace != *job.Namespace {
				t.Errorf("variable %s in namespace %q, want nomad/jobs/%s in %q", v.Path, v.Namespace, *job.ID, *job.Namespace)
			}
			js, err := RenderJSON(job)
			if err != nil {
				t.Fatal(err)
			}
			hcl, err := RenderHCL(job)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := json.Marshal(job)
			if err != nil {
				t.Fatal(err)
			}
			texts := map[string][]byte{"json": js, "hcl": hcl, "api.Job": raw}
			for _, ext := range []string{".job.json", ".job.hcl"} {
				b, err := os.ReadFile(filepath.Join("testdata", name+ext))
				if err != nil {
					t.Fatal(err)
				}
				texts["golden "+name+ext] = b
			}
			for what, b := range texts {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s holds the invoke secret", what)
				}
				if secretAttr.Match(b) {
					t.Errorf("%s has an invoke_secret attribute", what)
				}
			}
		})
	}
}

func TestInvokeVariableAndCommand(t *testing.T) {
	fn, opts := loadCase(t, "hello")
	job, err := Compile(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InvokeVariable(job, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("no key: %v", err)
	}
	v, err := InvokeVariable(job, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := VarPutCommand(v)
	if err != nil {
		t.Fatal(err)
	}
	want := "nomad var put -namespace default nomad/jobs/" + *job.ID + " invoke_secret=" + invokeapi.DeriveSecret([]byte("k"), fn.Name, LatestVersion)
	if cmd != want {
		t.Errorf("command\n%s\nwant\n%s", cmd, want)
	}
	if got := shellQuote("it's $x"); got != `'it'\''s $x'` {
		t.Errorf("quote: %s", got)
	}
}

// An image function's job pulls the pinned image: no code artifact, no
// runtime, the digest as the code's sha256; a tag nobody resolved is refused.
func TestCompileImage(t *testing.T) {
	fn, opts := loadCase(t, "image")
	job, err := Compile(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range job.TaskGroups {
		task := tg.Tasks[0]
		if len(task.Artifacts) != 0 {
			t.Errorf("group %s: an image function has no artifacts; got %d", *tg.Name, len(task.Artifacts))
		}
		if _, ok := task.Config["runtime"]; ok {
			t.Errorf("group %s: task config has a runtime: %v", *tg.Name, task.Config["runtime"])
		}
		if task.Config["image"] != fn.Code.ResolvedImage {
			t.Errorf("group %s: image %v, want %s", *tg.Name, task.Config["image"], fn.Code.ResolvedImage)
		}
	}
	if got := job.Meta[MetaCodeSHA256]; got != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" {
		t.Errorf("code sha256 meta %q, want the image digest", got)
	}
	fn.Code.ResolvedImage = ""
	if _, err := Compile(fn, opts); err == nil || !strings.Contains(err.Error(), "names a tag") {
		t.Fatalf("compiling an unresolved tag: %v", err)
	}
}

func TestCompileConnect(t *testing.T) {
	fn, opts := loadCase(t, "connect")
	job, err := Compile(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range job.TaskGroups {
		s := g.Services[0]
		if s.Connect == nil || !s.Connect.Native || s.TaskName != TaskName {
			t.Errorf("group %s: service %+v is not Connect-native for task %s", *g.Name, s, TaskName)
		}
		task := g.Tasks[0]
		if got := task.Config["connect_service"]; got != ServiceName(fn.Name) {
			t.Errorf("group %s: connect_service = %v, want %s", *g.Name, got, ServiceName(fn.Name))
		}
		if _, ok := task.Config["invoke_secret_file"]; ok || len(task.Templates) != 0 {
			t.Errorf("group %s: a Connect task still carries the invoke secret (config %v, %d templates)", *g.Name, task.Config, len(task.Templates))
		}
	}
	// No secret Variable is derived for it: nothing in the job reads one.
	if ReadsInvokeSecret(job) {
		t.Error("ReadsInvokeSecret is true for a Connect-native job")
	}
	if v, err := InvokeVariable(job, []byte(goldenKey)); err != nil || v != nil {
		t.Errorf("InvokeVariable of a Connect-native job = %+v, %v; want nil, nil", v, err)
	}
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "nomadVar") || strings.Contains(string(b), VariableInvokeSecret) || strings.Contains(string(b), VariablePath(*job.ID)) {
		t.Errorf("the Connect-native job still references its invoke-secret Variable:\n%s", b)
	}
	plain, plainOpts := loadCase(t, "connect")
	plainOpts.Connect = false
	pj, err := Compile(plain, plainOpts)
	if err != nil {
		t.Fatal(err)
	}
	if !ReadsInvokeSecret(pj) {
		t.Error("ReadsInvokeSecret is false for the same function compiled without connect")
	}
	opts.ServiceProvider = ProviderNomad
	if _, err := Compile(fn, opts); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "connect needs service provider") {
		t.Fatalf("connect with nomad services: err = %v, want ErrInvalid naming the provider", err)
	}
}
