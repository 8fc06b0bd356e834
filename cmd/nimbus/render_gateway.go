package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/nimbus-fn/nimbus/jobs"
)

func init() {
	register("render gateway", command{
		summary: "print the Nomad service job that runs the gateways (HCL for `nomad job run`, or JSON)",
		run:     runRenderGateway,
	})
}

func runRenderGateway(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "render gateway", "")
	var o jobs.GatewayOptions
	var dcs listFlag
	fs.StringVar(&o.JobID, "job", jobs.GatewayJobID, "job ID (its Nomad Variable is nomad/jobs/<job>)")
	fs.IntVar(&o.Count, "count", 1, "number of gateways; more than one needs --nats-url")
	fs.StringVar(&o.Region, "region", "", "Nomad region of the job and of the function jobs the gateways manage (default \"global\")")
	fs.StringVar(&o.Namespace, "namespace", "", "Nomad namespace of the job and of the function jobs (default \"default\")")
	fs.StringVar(&o.NodePool, "node-pool", "", "Nomad node pool for the gateways (default: the namespace's)")
	fs.Var(&dcs, "datacenter", "Nomad datacenter (repeatable; default \"*\")")
	fs.StringVar(&o.Driver, "driver", "exec", "task driver: exec (isolated) or raw_exec")
	fs.StringVar(&o.Binary.Source, "binary-url", "", "URL the Nomad clients fetch the nimbus binary (a static linux build) from (required)")
	fs.StringVar(&o.Binary.Checksum, "binary-checksum", "", "sha256:<hex> of that binary (required: the job runs exactly that build)")
	fs.IntVar(&o.Port, "port", 0, "static HTTP port (default: a dynamic port; the gateway registers the one it got in Consul)")
	fs.BoolVar(&o.Connect, "connect", false, "make the gateways Connect-native in Consul's service mesh: a mesh port serving <fn>-url services over mTLS under intentions")
	fs.BoolVar(&o.PlainURLs, "plain-urls", false, "with --connect, serve function URLs on the HTTP port too (no intention check there); by default the mesh serves them")
	fs.IntVar(&o.MeshPort, "mesh-port", 0, "static mesh port, with --connect (default: a dynamic port)")
	fs.StringVar(&o.ConsulAddress, "consul-address", "127.0.0.1:8500", "the Consul agent's HTTP API as the gateway task reaches it")
	fs.StringVar(&o.ConsulToken, "consul-token", "", "where the gateway's Consul ACL token comes from: variable (item consul_token of the job's Variable, rendered into the secrets dir) or empty (the CONSUL_HTTP_TOKEN Nomad's Consul workload identity gives the task, else the agent's default token)")
	fs.StringVar(&o.DataVolume, "data-volume", "", "host volume for one gateway's embedded NATS store (async queue, artifacts); exec driver only (default: the allocation's data dir, sticky)")
	fs.StringVar(&o.NATSURL, "nats-url", "", "external NATS cluster several gateways share (nats:// or tls://; no credentials in it)")
	fs.StringVar(&o.NATSAuth, "nats-auth", "", "credential the gateways present to --nats-url, read from the job's Variable: creds (item nats_creds), token (nats_token) or nkey (nats_nkey_seed) (default creds)")
	fs.IntVar(&o.CPU, "cpu", 500, "CPU reserved per gateway, MHz")
	fs.IntVar(&o.MemoryMB, "memory", 512, "memory reserved per gateway, MB")
	fs.DurationVar(&o.KillTimeout, "kill-timeout", 0, "how long Nomad waits after SIGTERM; keep it above the gateway's shutdown_grace (default 35s)")
	format := fs.String("format", "hcl", "output format: hcl (nomad job run) or json (nomad job run -json)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: every setting is a flag", fs.Args())
	}
	if *format != "hcl" && *format != "json" {
		return fmt.Errorf("--format %q: want hcl or json", *format)
	}
	o.Datacenters = dcs
	job, err := jobs.Gateway(o)
	if err != nil {
		return err
	}
	var out []byte
	if *format == "hcl" {
		out, err = jobs.RenderHCL(job)
	} else {
		out, err = jobs.RenderJSON(job)
	}
	if err != nil {
		return err
	}
	if _, err := env.stdout.Write(out); err != nil {
		return err
	}
	items := []string{jobs.GatewayItemInvokeKey + "=@invoke.key", jobs.GatewayItemConfig + "=@gateway-secrets.hcl"}
	if o.NATSURL != "" {
		auth := o.NATSAuth
		if auth == "" {
			auth = jobs.NATSAuthCreds
		}
		items = append(items, jobs.GatewayNATSItem(auth)+"=@nats-credential")
	}
	if o.ConsulToken == jobs.ConsulTokenVariable {
		items = append(items, jobs.GatewayItemConsulToken+"=@consul.token")
	}
	fmt.Fprintf(env.stderr, "job %s holds no secret: before it runs, put its Variable (the files hold the values; %s is HCL with at least the access_key blocks):\n"+
		"  nomad var put -namespace %s %s %s\n"+
		"with Nomad ACLs on, grant the job's workload identity the gateway's policy; with Consul ACLs on, the gateway's Consul token needs the gateway's Consul policy (both in docs/gateway-on-nomad.md).\n",
		*job.ID, jobs.GatewayItemConfig, *job.Namespace, jobs.VariablePath(*job.ID), strings.Join(items, " "))
	return nil
}
