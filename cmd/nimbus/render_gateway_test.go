package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/jobs"
)

const renderGatewaySum = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// Every flag of `nimbus render gateway` shows in the job it prints.
func TestRenderGatewayFlags(t *testing.T) {
	r := runCLI(t, nil, "render", "gateway", "--format", "json",
		"--job", "gw", "--count", "2", "--region", "eu", "--namespace", "fns", "--node-pool", "edge",
		"--datacenter", "a", "--datacenter", "b", "--driver", "raw_exec",
		"--binary-url", "https://example.com/nimbus", "--binary-checksum", renderGatewaySum,
		"--port", "9000", "--connect", "--mesh-port", "9443", "--consul-address", "10.1.1.1:8500",
		"--nats-url", "nats://nats:4222", "--nats-auth", "token", "--consul-token", "variable", "--plain-urls",
		"--cpu", "700", "--memory", "300", "--kill-timeout", "50s")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var doc struct{ Job *api.Job }
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	j := doc.Job
	g := j.TaskGroups[0]
	task := g.Tasks[0]
	if *j.ID != "gw" || *g.Count != 2 || *j.Region != "eu" || *j.Namespace != "fns" || *j.NodePool != "edge" ||
		strings.Join(j.Datacenters, ",") != "a,b" || task.Driver != "raw_exec" {
		t.Errorf("placement: id %s count %d region %s ns %s pool %s dcs %v driver %s", *j.ID, *g.Count, *j.Region, *j.Namespace, *j.NodePool, j.Datacenters, task.Driver)
	}
	if a := task.Artifacts[0]; *a.GetterSource != "https://example.com/nimbus" || a.GetterOptions["checksum"] != renderGatewaySum {
		t.Errorf("artifact %+v", a)
	}
	if p := g.Networks[0].ReservedPorts; len(p) != 2 || p[0].Value != 9000 || p[1].Value != 9443 {
		t.Errorf("ports %+v", p)
	}
	if *task.Resources.CPU != 700 || *task.Resources.MemoryMB != 300 || *task.KillTimeout != 50*time.Second {
		t.Errorf("resources %+v kill timeout %s", task.Resources, *task.KillTimeout)
	}
	var cfg, natsTmpl, consulTmpl string
	for _, tp := range task.Templates {
		switch *tp.DestPath {
		case "secrets/gateway.hcl":
			cfg = *tp.EmbeddedTmpl
		case "secrets/nats.token":
			natsTmpl = *tp.EmbeddedTmpl
		case "secrets/consul.token":
			consulTmpl = *tp.EmbeddedTmpl
		}
	}
	if !strings.Contains(consulTmpl, ".consul_token") {
		t.Errorf("Consul token template %q", consulTmpl)
	}
	for _, want := range []string{`address = "10.1.1.1:8500"`, `nats_url = "nats://nats:4222"`, "nats_token_file", "connect {", `nomadVar "nomad/jobs/gw"`,
		"token_file = ", "plain_urls = true"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config template lacks %s:\n%s", want, cfg)
		}
	}
	if !strings.Contains(natsTmpl, ".nats_token") {
		t.Errorf("NATS token template %q", natsTmpl)
	}
	if !strings.Contains(r.stderr, "nomad var put -namespace fns nomad/jobs/gw invoke_key=@invoke.key config=@gateway-secrets.hcl nats_token=@nats-credential consul_token=@consul.token") {
		t.Errorf("stderr does not give the Variable command:\n%s", r.stderr)
	}
}

func TestRenderGatewayHCLDefaults(t *testing.T) {
	r := runCLI(t, nil, "render", "gateway", "--binary-url", "https://example.com/nimbus", "--binary-checksum", renderGatewaySum)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{`job "nimbus-gateway" {`, `driver       = "exec"`, `port "http" {`, "sticky  = true", "identity {"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("HCL lacks %s:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, `port "mesh"`) {
		t.Error("a mesh port without --connect")
	}
	if !strings.Contains(r.stderr, "nomad/jobs/"+jobs.GatewayJobID) {
		t.Errorf("stderr: %s", r.stderr)
	}
}

func TestRenderGatewayRefusals(t *testing.T) {
	bin := []string{"--binary-url", "https://example.com/nimbus", "--binary-checksum", renderGatewaySum}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append([]string{"--count", "3"}, bin...), "3 gateways need an external NATS cluster"},
		{[]string{}, "artifact URL is required"},
		{append([]string{"--format", "yaml"}, bin...), `--format "yaml"`},
		{append([]string{"extra"}, bin...), "unexpected arguments"},
		{append([]string{"--nats-auth", "creds"}, bin...), "only with a nats URL"},
		{append([]string{"--plain-urls"}, bin...), "plain URLs apply only with connect on"},
		{append([]string{"--consul-token", "env"}, bin...), `consul token "env"`},
	} {
		r := runCLI(t, nil, append([]string{"render", "gateway"}, c.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("render gateway %v: exit %d, stderr %q; want it refused with %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
