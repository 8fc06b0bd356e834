package jobs

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

const gatewayTestSum = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// gatewayCases are the golden gateway jobs: one gateway keeping its NATS
// store in the allocation, one on a host volume, and three behind an
// external NATS with a static port.
var gatewayCases = map[string]GatewayOptions{
	"gateway-single": {
		Binary:  Artifact{Source: "https://releases.example.com/nimbus/1.0.0/nimbus_linux_amd64", Checksum: gatewayTestSum},
		Driver:  "raw_exec",
		Connect: true,
	},
	"gateway-volume": {
		Binary:        Artifact{Source: "https://releases.example.com/nimbus/1.0.0/nimbus_linux_amd64", Checksum: gatewayTestSum},
		DataVolume:    "nimbus-gateway",
		Datacenters:   []string{"dc1", "dc2"},
		NodePool:      "edge",
		ConsulAddress: "10.0.0.2:8500",
		CPU:           1000,
		MemoryMB:      1024,
	},
	"gateway-cluster": {
		JobID:       "lambda-gateway",
		Count:       3,
		Region:      "eu",
		Namespace:   "functions",
		Binary:      Artifact{Source: "https://releases.example.com/nimbus/1.0.0/nimbus_linux_amd64", Checksum: gatewayTestSum},
		Port:        9000,
		Connect:     true,
		MeshPort:    9443,
		NATSURL:     "tls://nats.service.consul:4222",
		NATSAuth:    NATSAuthNKey,
		KillTimeout: time.Minute,
		ConsulToken: ConsulTokenVariable,
	},
}

func TestGatewayGolden(t *testing.T) {
	for name, opts := range gatewayCases {
		t.Run(name, func(t *testing.T) {
			job, err := Gateway(opts)
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
			again, _ := Gateway(opts)
			if js2, _ := RenderJSON(again); !bytes.Equal(js, js2) {
				t.Error("two builds of the same options differ")
			}
		})
	}
}

// What each option changes, read from the built job rather than the golden
// text, so a golden rewritten by -update cannot hide a lost setting.
func TestGatewayShape(t *testing.T) {
	single, err := Gateway(gatewayCases["gateway-single"])
	if err != nil {
		t.Fatal(err)
	}
	g := single.TaskGroups[0]
	task := g.Tasks[0]
	if *single.ID != GatewayJobID || *single.Type != api.JobTypeService || *g.Count != 1 || task.Driver != "raw_exec" {
		t.Fatalf("job %s type %s count %d driver %s", *single.ID, *single.Type, *g.Count, task.Driver)
	}
	if len(g.Services) != 0 || len(task.Services) != 0 {
		t.Error("the job registers a Nomad service; the gateway registers itself in Consul")
	}
	if n := g.Networks[0]; len(n.DynamicPorts) != 2 || n.DynamicPorts[0].Label != GatewayPortHTTP || n.DynamicPorts[1].Label != GatewayPortMesh || len(n.ReservedPorts) != 0 {
		t.Errorf("network %+v: want dynamic http and mesh ports", n)
	}
	if d := g.EphemeralDisk; d == nil || !*d.Sticky || !*d.Migrate {
		t.Errorf("one gateway without a volume keeps its NATS store on a sticky, migrating disk: %+v", d)
	}
	if task.Identity == nil || !task.Identity.Env {
		t.Error("the task does not get its workload identity as NOMAD_TOKEN")
	}
	a := task.Artifacts[0]
	if *a.GetterSource != gatewayCases["gateway-single"].Binary.Source || a.GetterOptions["checksum"] != gatewayTestSum || *a.RelativeDest != "local/nimbus" {
		t.Errorf("binary artifact %+v", a)
	}
	if task.Config["command"] != "local/nimbus" {
		t.Errorf("command %v", task.Config["command"])
	}
	cfg := gatewayTemplate(t, task, "secrets/gateway.hcl")
	for _, want := range []string{
		`listen          = "{{ env "NOMAD_ADDR_http" }}"`,
		`address   = "unix://{{ env "NOMAD_SECRETS_DIR" }}/api.sock"`,
		`data_dir = "{{ env "NOMAD_ALLOC_DIR" }}/data/queue"`,
		`address = "127.0.0.1:8500"`,
		`{{ with nomadVar "nomad/jobs/nimbus-gateway" }}{{ .config }}{{ end }}`,
		"connect {\n  enabled = true\n  listen  = \"{{ env \"NOMAD_ADDR_mesh\" }}\"\n}",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config template lacks %s:\n%s", want, cfg)
		}
	}
	if key := gatewayTemplate(t, task, "secrets/invoke.key"); key != `{{ with nomadVar "nomad/jobs/nimbus-gateway" }}{{ .invoke_key }}{{ end }}` {
		t.Errorf("invoke key template %q", key)
	}

	vol, err := Gateway(gatewayCases["gateway-volume"])
	if err != nil {
		t.Fatal(err)
	}
	vg, vt := vol.TaskGroups[0], vol.TaskGroups[0].Tasks[0]
	if vg.Volumes["nimbus-data"] == nil || vg.Volumes["nimbus-data"].Source != "nimbus-gateway" || *vt.VolumeMounts[0].Destination != GatewayDataMount ||
		vg.EphemeralDisk != nil || vt.Driver != "exec" || *vol.NodePool != "edge" || *vt.Resources.MemoryMB != 1024 {
		t.Errorf("volume job: volumes %+v mounts %+v disk %+v driver %s", vg.Volumes, vt.VolumeMounts, vg.EphemeralDisk, vt.Driver)
	}
	if n := vg.Networks[0]; len(n.DynamicPorts) != 1 {
		t.Errorf("without connect the job has ports %+v, want http only", n.DynamicPorts)
	}
	if cfg := gatewayTemplate(t, vt, "secrets/gateway.hcl"); !strings.Contains(cfg, `data_dir = "/srv/nimbus/queue"`) || !strings.Contains(cfg, `address = "10.0.0.2:8500"`) || strings.Contains(cfg, "connect") {
		t.Errorf("volume config template:\n%s", cfg)
	}

	cl, err := Gateway(gatewayCases["gateway-cluster"])
	if err != nil {
		t.Fatal(err)
	}
	cg, ct := cl.TaskGroups[0], cl.TaskGroups[0].Tasks[0]
	if rp := cg.Networks[0].ReservedPorts; len(rp) != 2 || rp[1].Label != GatewayPortMesh || rp[1].Value != 9443 {
		t.Errorf("cluster job: reserved ports %+v, want http 9000 and mesh 9443", rp)
	}
	if *cg.Count != 3 || cg.EphemeralDisk != nil || len(cg.Volumes) != 0 || cg.Networks[0].ReservedPorts[0].Value != 9000 ||
		len(cg.Constraints) != 1 || cg.Constraints[0].Operand != api.ConstraintDistinctHosts || *ct.KillTimeout != time.Minute {
		t.Errorf("cluster job: count %d disk %+v ports %+v constraints %+v", *cg.Count, cg.EphemeralDisk, cg.Networks[0], cg.Constraints)
	}
	cfg = gatewayTemplate(t, ct, "secrets/gateway.hcl")
	for _, want := range []string{`nats_url = "tls://nats.service.consul:4222"`, `nats_nkey_seed_file = "{{ env "NOMAD_SECRETS_DIR" }}/nats.nk"`,
		`region    = "eu"`, `namespace = "functions"`, `nomadVar "nomad/jobs/lambda-gateway"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("cluster config template lacks %s:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "data_dir") {
		t.Error("gateways on an external NATS still get an embedded store")
	}
	if nk := gatewayTemplate(t, ct, "secrets/nats.nk"); nk != `{{ with nomadVar "nomad/jobs/lambda-gateway" }}{{ .nats_nkey_seed }}{{ end }}` {
		t.Errorf("nkey template %q", nk)
	}
	// The Consul token: from the Variable into the secrets dir, named by
	// the consul block; the job itself holds none.
	if tok := gatewayTemplate(t, ct, "secrets/consul.token"); tok != `{{ with nomadVar "nomad/jobs/lambda-gateway" }}{{ .consul_token }}{{ end }}` {
		t.Errorf("consul token template %q", tok)
	}
	if !strings.Contains(cfg, "consul {\n  address = \"127.0.0.1:8500\"\n  token_file = \"{{ env \"NOMAD_SECRETS_DIR\" }}/consul.token\"\n}") {
		t.Errorf("cluster config's consul block does not name the token file:\n%s", cfg)
	}
	single, err = Gateway(gatewayCases["gateway-single"])
	if err != nil {
		t.Fatal(err)
	}
	if c := gatewayTemplate(t, single.TaskGroups[0].Tasks[0], "secrets/gateway.hcl"); strings.Contains(c, "plain_urls") {
		t.Errorf("a connect job serves plain URLs without being asked:\n%s", c)
	}
	opts := gatewayCases["gateway-single"]
	opts.PlainURLs = true
	plainJob, err := Gateway(opts)
	if err != nil {
		t.Fatal(err)
	}
	if c := gatewayTemplate(t, plainJob.TaskGroups[0].Tasks[0], "secrets/gateway.hcl"); !strings.Contains(c, "  plain_urls = true\n}") {
		t.Errorf("PlainURLs did not reach the connect block:\n%s", c)
	}
	for _, tp := range single.TaskGroups[0].Tasks[0].Templates {
		if strings.Contains(*tp.EmbeddedTmpl, "consul_token") || strings.Contains(*tp.EmbeddedTmpl, "token_file") {
			t.Errorf("without a consul token option the job still renders one: %s", *tp.EmbeddedTmpl)
		}
	}
}

func gatewayTemplate(t *testing.T, task *api.Task, dest string) string {
	t.Helper()
	for _, tp := range task.Templates {
		if *tp.DestPath == dest {
			if *tp.Perms != "0400" || *tp.ChangeMode != "restart" {
				t.Errorf("template %s: perms %s change_mode %s", dest, *tp.Perms, *tp.ChangeMode)
			}
			return *tp.EmbeddedTmpl
		}
	}
	t.Fatalf("no template renders %s", dest)
	return ""
}

// The rendered HCL carries the default workload identity as an `identity`
// block (the api field has no hcl tag).
func TestGatewayHCLHasIdentity(t *testing.T) {
	job, err := Gateway(gatewayCases["gateway-single"])
	if err != nil {
		t.Fatal(err)
	}
	hcl, err := RenderHCL(job)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hcl), "identity {\n        env = true\n      }") {
		t.Errorf("no identity block:\n%s", hcl)
	}
}

func TestGatewayRefusals(t *testing.T) {
	bin := Artifact{Source: "https://example.com/nimbus", Checksum: gatewayTestSum}
	for name, c := range map[string]struct {
		opts GatewayOptions
		want string
	}{
		"several without NATS":    {GatewayOptions{Binary: bin, Count: 2}, "2 gateways need an external NATS cluster"},
		"no binary":               {GatewayOptions{}, "artifact URL is required"},
		"no checksum":             {GatewayOptions{Binary: Artifact{Source: bin.Source}}, "binary checksum"},
		"relative binary":         {GatewayOptions{Binary: Artifact{Source: "nimbus", Checksum: gatewayTestSum}}, "not an absolute URL"},
		"credentials in URL":      {GatewayOptions{Binary: bin, NATSURL: "nats://u:p@nats:4222"}, "must not carry credentials"},
		"http NATS":               {GatewayOptions{Binary: bin, NATSURL: "http://nats:4222"}, "nats://host:port"},
		"unknown NATS auth":       {GatewayOptions{Binary: bin, NATSURL: "nats://nats:4222", NATSAuth: "password"}, `nats auth "password"`},
		"NATS auth without URL":   {GatewayOptions{Binary: bin, NATSAuth: NATSAuthToken}, "only with a nats URL"},
		"volume and NATS":         {GatewayOptions{Binary: bin, NATSURL: "nats://nats:4222", DataVolume: "v"}, "drop one of them"},
		"volume under raw_exec":   {GatewayOptions{Binary: bin, Driver: "raw_exec", DataVolume: "v"}, "cannot mount a host volume"},
		"docker":                  {GatewayOptions{Binary: bin, Driver: "docker"}, `driver "docker"`},
		"bad port":                {GatewayOptions{Binary: bin, Port: 70000}, "port 70000"},
		"mesh port without mesh":  {GatewayOptions{Binary: bin, MeshPort: 9443}, "only with connect on"},
		"shared port":             {GatewayOptions{Binary: bin, Connect: true, Port: 9000, MeshPort: 9000}, "cannot share port 9000"},
		"bad job ID":              {GatewayOptions{Binary: bin, JobID: "a b"}, `job ID "a b"`},
		"negative count":          {GatewayOptions{Binary: bin, Count: -1}, "count -1"},
		"tiny memory":             {GatewayOptions{Binary: bin, MemoryMB: 10}, "memory 10 MB"},
		"short kill timeout":      {GatewayOptions{Binary: bin, KillTimeout: time.Millisecond}, "kill timeout"},
		"quote in consul address": {GatewayOptions{Binary: bin, ConsulAddress: `a"b`}, "consul address"},
		"plain URLs without mesh": {GatewayOptions{Binary: bin, PlainURLs: true}, "plain URLs apply only with connect on"},
		"unknown consul token":    {GatewayOptions{Binary: bin, ConsulToken: "env"}, `consul token "env"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Gateway(c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestGatewayACLPolicyNamesNamespace(t *testing.T) {
	p := GatewayACLPolicy("functions")
	for _, want := range []string{`namespace "functions"`, "scale-job", `path "nimbus/*"`} {
		if !strings.Contains(p, want) {
			t.Errorf("policy lacks %s:\n%s", want, p)
		}
	}
}
