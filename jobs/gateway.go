package jobs

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// The gateway job: `nimbus render gateway` prints it, an operator runs it
// with `nomad job run`. Like Compile, Gateway is pure and deterministic.
//
// Who owns what:
//   - Consul: the gateway registers itself (service + HTTP check on its
//     health path, deregistered on shutdown and by Consul after a critical
//     spell) and every function URL's "<fn>-url" service at its own address,
//     so the job carries no `service` block: one owner, no double
//     registration. Deployments judge health by task state.
//   - Secrets (invoke key, access keys, NATS credentials) live only in the
//     job's Nomad Variable (nomad/jobs/<job id>, which the job's workload
//     identity may read); templates render them into the task's secrets dir.
//   - The Nomad API: the Task API socket in the secrets dir with the task's
//     workload identity as its token (identity { env = true } sets
//     NOMAD_TOKEN). Without ACLs that is enough; with ACLs an operator binds
//     a policy to the job (GatewayACLPolicy).

// Gateway job names and Variable items.
const (
	// GatewayJobID is the default job ID.
	GatewayJobID = "nimbus-gateway"
	// GatewayGroup and GatewayTask name the job's one group and task.
	GatewayGroup = "gateway"
	GatewayTask  = "gateway"
	// GatewayPortHTTP is the port label of the HTTP listener (Invoke API,
	// function URLs, health, metrics, artifacts).
	GatewayPortHTTP = "http"
	// GatewayPortMesh is the port label of the Connect-native mesh listener
	// (GatewayOptions.Connect).
	GatewayPortMesh = "mesh"
	// GatewayItemConfig is the Variable item holding the operator's part of
	// the gateway config (HCL: access_key blocks, url_domain, account_id,
	// artifacts { … }, …): everything but what the job writes itself
	// (listen, invoke_key_file, nomad, consul, queue, and connect when the
	// job turns the mesh on).
	GatewayItemConfig = "config"
	// GatewayItemInvokeKey is the Variable item holding the cluster key
	// instances' invoke secrets derive from.
	GatewayItemInvokeKey = "invoke_key"
	// GatewayItemConsulToken is the Variable item holding the gateway's
	// Consul ACL token with GatewayOptions.ConsulToken set to
	// ConsulTokenVariable.
	GatewayItemConsulToken = "consul_token"
	// GatewayDataMount is where a host volume is mounted in the task.
	GatewayDataMount = "/srv/nimbus"
)

// NATS credential kinds for several gateways (GatewayOptions.NATSAuth) and
// the Variable item each reads.
const (
	NATSAuthCreds = "creds"
	NATSAuthToken = "token"
	NATSAuthNKey  = "nkey"
)

var natsAuthItems = map[string]struct{ item, file, attr string }{
	NATSAuthCreds: {"nats_creds", "nats.creds", "nats_creds_file"},
	NATSAuthToken: {"nats_token", "nats.token", "nats_token_file"},
	NATSAuthNKey:  {"nats_nkey_seed", "nats.nk", "nats_nkey_seed_file"},
}

// Where the gateway job's Consul ACL token comes from
// (GatewayOptions.ConsulToken).
const (
	// ConsulTokenVariable: the job's Variable holds it (item
	// GatewayItemConsulToken); a template writes it to the task's secrets
	// dir and the config's consul block names it as token_file.
	ConsulTokenVariable = "variable"
)

// GatewayNATSItem is the Variable item that holds the NATS credential of
// kind auth ("" for an unknown kind).
func GatewayNATSItem(auth string) string { return natsAuthItems[auth].item }

// GatewayOptions say how to run the gateways. Zero values take the
// defaults noted on each field.
type GatewayOptions struct {
	// JobID of the gateway job. Default GatewayJobID.
	JobID string
	// Count of gateways. Default 1. More than one needs NATSURL: the
	// embedded NATS (async queue and artifact store) belongs to one gateway.
	Count int
	// Region, Namespace, NodePool and Datacenters place the job; Region and
	// Namespace are also where the gateway manages function jobs.
	// Defaults "global", "default", none and ["*"].
	Region      string
	Namespace   string
	NodePool    string
	Datacenters []string
	// Driver runs the task: "raw_exec" or "exec". Default "exec".
	Driver string
	// Binary is the nimbus binary (a static Linux build) the task runs,
	// fetched by an artifact block with its checksum. Required.
	Binary Artifact
	// Port is a static HTTP port; 0 takes a dynamic one. Default 0.
	Port int
	// Connect makes each gateway a Connect-native service of Consul's mesh:
	// a second port, GatewayPortMesh, for the mTLS listener that serves
	// function URLs ("<fn>-url" services) and the Invoke API to mesh
	// callers under Consul's intentions. Default false.
	Connect bool
	// PlainURLs keeps function URLs on the HTTP port too (connect {
	// plain_urls = true }): with Connect they are otherwise served only
	// through the mesh, where intentions apply. Only with Connect.
	// Default false.
	PlainURLs bool
	// MeshPort is a static mesh port; 0 takes a dynamic one. Only with
	// Connect. Default 0.
	MeshPort int
	// ConsulAddress is the Consul agent's HTTP API as the task reaches it.
	// Default "127.0.0.1:8500".
	ConsulAddress string
	// ConsulToken says where the gateway's Consul ACL token comes from:
	// "" (none in the job: the CONSUL_HTTP_TOKEN Nomad gives the task
	// when its servers have consul { task_identity { … } }, else the local
	// agent's default token) or ConsulTokenVariable. Default "".
	ConsulToken string
	// DataVolume names a host volume (exec driver only) mounted at
	// GatewayDataMount for the embedded NATS store (async queue and
	// artifacts) of a single gateway. Default: none; the store then lives
	// in the allocation's data dir, kept across updates on the same node
	// (ephemeral_disk sticky + migrate) but lost with the node.
	DataVolume string
	// NATSURL is the external NATS cluster several gateways share. Required
	// with Count > 1; refused with DataVolume.
	NATSURL string
	// NATSAuth is the credential kind the gateways present to NATSURL:
	// NATSAuthCreds, NATSAuthToken or NATSAuthNKey, read from the
	// Variable's GatewayNATSItem. Default NATSAuthCreds.
	NATSAuth string
	// CPU (MHz) and MemoryMB reserved for each gateway. Defaults 500 and 512.
	CPU      int
	MemoryMB int
	// KillTimeout is how long Nomad waits after SIGTERM (the gateway drains
	// in-flight invocations for its shutdown_grace, default 30s). Default 35s.
	KillTimeout time.Duration
}

var jobIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

func (o GatewayOptions) withDefaults() GatewayOptions {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&o.JobID, GatewayJobID)
	set(&o.Region, DefaultRegion)
	set(&o.Namespace, DefaultNamespace)
	set(&o.Driver, "exec")
	set(&o.ConsulAddress, "127.0.0.1:8500")
	if o.NATSURL != "" {
		set(&o.NATSAuth, NATSAuthCreds)
	}
	if len(o.Datacenters) == 0 {
		o.Datacenters = []string{"*"}
	}
	if o.Count == 0 {
		o.Count = 1
	}
	if o.CPU == 0 {
		o.CPU = 500
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 512
	}
	if o.KillTimeout == 0 {
		o.KillTimeout = 35 * time.Second
	}
	return o
}

func (o GatewayOptions) validate() []string {
	var errs []string
	if !jobIDPattern.MatchString(o.JobID) {
		errs = append(errs, fmt.Sprintf("job ID %q must be 1-128 letters, digits, '_', '.' or '-'", o.JobID))
	}
	if o.Count < 1 {
		errs = append(errs, fmt.Sprintf("count %d must be at least 1", o.Count))
	}
	if o.Count > 1 && o.NATSURL == "" {
		errs = append(errs, fmt.Sprintf("%d gateways need an external NATS cluster (nats URL): the embedded NATS that holds the async queue and the artifact store serves one gateway only", o.Count))
	}
	if o.NATSURL != "" {
		if u, err := url.Parse(o.NATSURL); err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls") {
			errs = append(errs, fmt.Sprintf("nats URL %q must be nats://host:port or tls://host:port (several servers: give one; NATS discovers the cluster)", o.NATSURL))
		} else if u.User != nil {
			errs = append(errs, "nats URL must not carry credentials: they belong in the job's Nomad Variable, never in the job")
		}
		if _, ok := natsAuthItems[o.NATSAuth]; !ok {
			errs = append(errs, fmt.Sprintf("nats auth %q must be %s, %s or %s", o.NATSAuth, NATSAuthCreds, NATSAuthToken, NATSAuthNKey))
		}
		if o.DataVolume != "" {
			errs = append(errs, "a data volume holds the embedded NATS store; with an external NATS the gateways keep no state: drop one of them")
		}
	} else if o.NATSAuth != "" {
		errs = append(errs, "nats auth applies only with a nats URL")
	}
	switch o.Driver {
	case "exec":
	case "raw_exec":
		if o.DataVolume != "" {
			errs = append(errs, "the raw_exec driver cannot mount a host volume: use the exec driver for a data volume")
		}
	default:
		errs = append(errs, fmt.Sprintf("driver %q must be exec or raw_exec", o.Driver))
	}
	if o.Binary.Source == "" {
		errs = append(errs, "the nimbus binary's artifact URL is required")
	} else if u, err := url.Parse(o.Binary.Source); err != nil || u.Scheme == "" {
		errs = append(errs, fmt.Sprintf("binary URL %q is not an absolute URL", o.Binary.Source))
	}
	if _, err := ParseChecksum(o.Binary.Checksum); err != nil {
		errs = append(errs, fmt.Sprintf("binary checksum: %v", err))
	}
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, fmt.Sprintf("port %d is outside 0-65535", o.Port))
	}
	switch {
	case o.PlainURLs && !o.Connect:
		errs = append(errs, "plain URLs apply only with connect on (without it every URL is served on the HTTP port)")
	case o.MeshPort != 0 && !o.Connect:
		errs = append(errs, "a mesh port applies only with connect on")
	case o.MeshPort < 0 || o.MeshPort > 65535:
		errs = append(errs, fmt.Sprintf("mesh port %d is outside 0-65535", o.MeshPort))
	case o.MeshPort != 0 && o.MeshPort == o.Port:
		errs = append(errs, fmt.Sprintf("the HTTP and the mesh listener cannot share port %d", o.Port))
	}
	if o.ConsulToken != "" && o.ConsulToken != ConsulTokenVariable {
		errs = append(errs, fmt.Sprintf("consul token %q must be %q or empty", o.ConsulToken, ConsulTokenVariable))
	}
	if o.ConsulAddress == "" || strings.ContainsAny(o.ConsulAddress, "\"\\\n{}") {
		errs = append(errs, fmt.Sprintf("consul address %q is empty or not an address", o.ConsulAddress))
	}
	if o.CPU < 1 || o.MemoryMB < 64 {
		errs = append(errs, fmt.Sprintf("resources cpu %d MHz and memory %d MB: want cpu ≥ 1 and memory ≥ 64", o.CPU, o.MemoryMB))
	}
	if o.KillTimeout < time.Second {
		errs = append(errs, fmt.Sprintf("kill timeout %s is below 1s", o.KillTimeout))
	}
	return errs
}

// Gateway builds the service job that runs opts.Count gateways. Its
// Variable (GatewayVariablePath) must hold GatewayItemInvokeKey,
// GatewayItemConfig and, with an external NATS, GatewayNATSItem(auth)
// before the job runs: Nomad holds the task until it can render them.
func Gateway(opts GatewayOptions) (*api.Job, error) {
	opts = opts.withDefaults()
	if errs := opts.validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	varPath := VariablePath(opts.JobID)
	secret := func(item, file string) *api.Template {
		return &api.Template{
			EmbeddedTmpl: new(fmt.Sprintf("{{ with nomadVar %q }}{{ .%s }}{{ end }}", varPath, item)),
			DestPath:     new("secrets/" + file),
			ChangeMode:   new("restart"),
			Perms:        new("0400"),
		}
	}
	templates := []*api.Template{
		secret(GatewayItemInvokeKey, "invoke.key"),
		{
			EmbeddedTmpl: new(gatewayConfigTemplate(opts, varPath)),
			DestPath:     new("secrets/gateway.hcl"),
			ChangeMode:   new("restart"),
			Perms:        new("0400"),
		},
	}
	if opts.NATSURL != "" {
		a := natsAuthItems[opts.NATSAuth]
		templates = append(templates, secret(a.item, a.file))
	}
	if opts.ConsulToken == ConsulTokenVariable {
		templates = append(templates, secret(GatewayItemConsulToken, gatewayConsulTokenFile))
	}

	network := &api.NetworkResource{}
	addPort := func(label string, static int) {
		if static > 0 {
			network.ReservedPorts = append(network.ReservedPorts, api.Port{Label: label, Value: static})
		} else {
			network.DynamicPorts = append(network.DynamicPorts, api.Port{Label: label})
		}
	}
	addPort(GatewayPortHTTP, opts.Port)
	if opts.Connect {
		addPort(GatewayPortMesh, opts.MeshPort)
	}
	task := &api.Task{
		Name:   GatewayTask,
		Driver: opts.Driver,
		Config: map[string]any{
			"command": "local/nimbus",
			"args":    []string{"gateway", "--config", "${NOMAD_SECRETS_DIR}/gateway.hcl"},
		},
		Artifacts: []*api.TaskArtifact{{
			GetterSource:  new(opts.Binary.Source),
			GetterOptions: map[string]string{"checksum": opts.Binary.Checksum},
			GetterMode:    new("file"),
			RelativeDest:  new("local/nimbus"),
		}},
		Templates: templates,
		Identity:  &api.WorkloadIdentity{Env: true},
		Resources: &api.Resources{CPU: new(opts.CPU), MemoryMB: new(opts.MemoryMB)},
		// The gateway drains on SIGTERM (its shutdown_grace), then
		// deregisters from Consul.
		KillSignal:  "SIGTERM",
		KillTimeout: new(opts.KillTimeout),
	}
	group := &api.TaskGroup{
		Name:     new(GatewayGroup),
		Count:    new(opts.Count),
		Networks: []*api.NetworkResource{network},
		Tasks:    []*api.Task{task},
		// No Nomad service: the gateway registers itself in Consul, so
		// deployments judge health by the task running.
		Update: &api.UpdateStrategy{
			MaxParallel:     new(1),
			HealthCheck:     new("task_states"),
			MinHealthyTime:  new(10 * time.Second),
			HealthyDeadline: new(5 * time.Minute),
			AutoRevert:      new(true),
		},
	}
	switch {
	case opts.DataVolume != "":
		group.Volumes = map[string]*api.VolumeRequest{"nimbus-data": {Name: "nimbus-data", Type: "host", Source: opts.DataVolume}}
		task.VolumeMounts = []*api.VolumeMount{{Volume: new("nimbus-data"), Destination: new(GatewayDataMount)}}
	case opts.NATSURL == "":
		group.EphemeralDisk = &api.EphemeralDisk{Sticky: new(true), Migrate: new(true)}
	}
	if (opts.Port > 0 || opts.MeshPort > 0) && opts.Count > 1 {
		group.Constraints = []*api.Constraint{{Operand: api.ConstraintDistinctHosts, RTarget: "true"}}
	}
	job := &api.Job{
		ID:          new(opts.JobID),
		Name:        new(opts.JobID),
		Type:        new(api.JobTypeService),
		Region:      new(opts.Region),
		Namespace:   new(opts.Namespace),
		Datacenters: opts.Datacenters,
		TaskGroups:  []*api.TaskGroup{group},
		Meta:        map[string]string{"nimbus.role": "gateway"},
	}
	if opts.NodePool != "" {
		job.NodePool = new(opts.NodePool)
	}
	return job, nil
}

// gatewayConfigTemplate is the gateway config file as a Nomad template:
// what the job decides (listen address, the Task API, Consul, the queue's
// storage) written here, the operator's part and every secret read from
// the Variable at varPath.
func gatewayConfigTemplate(o GatewayOptions, varPath string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Rendered by Nomad from job %s and its Variable %s.\n", o.JobID, varPath)
	b.WriteString("listen          = \"{{ env \"NOMAD_ADDR_" + GatewayPortHTTP + "\" }}\"\n")
	b.WriteString("invoke_key_file = \"{{ env \"NOMAD_SECRETS_DIR\" }}/invoke.key\"\n")
	b.WriteString("nomad {\n")
	b.WriteString("  address   = \"unix://{{ env \"NOMAD_SECRETS_DIR\" }}/api.sock\"\n")
	fmt.Fprintf(&b, "  region    = %q\n  namespace = %q\n}\n", o.Region, o.Namespace)
	fmt.Fprintf(&b, "consul {\n  address = %q\n", o.ConsulAddress)
	if o.ConsulToken == ConsulTokenVariable {
		b.WriteString("  token_file = \"{{ env \"NOMAD_SECRETS_DIR\" }}/" + gatewayConsulTokenFile + "\"\n")
	}
	b.WriteString("}\n")
	if o.Connect {
		b.WriteString("connect {\n  enabled = true\n")
		b.WriteString("  listen  = \"{{ env \"NOMAD_ADDR_" + GatewayPortMesh + "\" }}\"\n")
		if o.PlainURLs {
			b.WriteString("  plain_urls = true\n")
		}
		b.WriteString("}\n")
	}
	b.WriteString("queue {\n")
	switch {
	case o.NATSURL != "":
		a := natsAuthItems[o.NATSAuth]
		fmt.Fprintf(&b, "  nats_url = %q\n", o.NATSURL)
		fmt.Fprintf(&b, "  %s = \"{{ env \"NOMAD_SECRETS_DIR\" }}/%s\"\n", a.attr, a.file)
	case o.DataVolume != "":
		fmt.Fprintf(&b, "  data_dir = %q\n", GatewayDataMount+"/queue")
	default:
		b.WriteString("  data_dir = \"{{ env \"NOMAD_ALLOC_DIR\" }}/data/queue\"\n")
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "{{ with nomadVar %q }}{{ .%s }}{{ end }}\n", varPath, GatewayItemConfig)
	return b.String()
}

// gatewayConsulTokenFile is the secrets-dir file of the Consul token.
const gatewayConsulTokenFile = "consul.token"

// GatewayACLPolicy is the Nomad ACL policy the gateway job's workload
// identity needs when ACLs are on (apply it with `nomad acl policy apply
// -namespace <ns> -job <job id> <name> <file>`): it registers, scales and
// deregisters function jobs, reads their allocations and scaling events,
// lists Nomad services (discovery "nomad") and keeps the catalog in
// Variables under nimbus/ and the function jobs' own Variables.
func GatewayACLPolicy(namespace string) string {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return fmt.Sprintf(`namespace %q {
  policy       = "write"
  capabilities = ["submit-job", "dispatch-job", "read-job", "list-jobs", "scale-job", "read-scaling-policy", "list-scaling-policies", "read-job-scaling"]
  variables {
    path "nimbus/*" {
      capabilities = ["read", "write", "list", "destroy"]
    }
    path "nomad/jobs/*" {
      capabilities = ["read", "write", "list", "destroy"]
    }
  }
}
`, namespace)
}
