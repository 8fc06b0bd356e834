package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/discovery"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/images"
	"github.com/nimbus-fn/nimbus/gateway/server"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/apply"
	"github.com/nimbus-fn/nimbus/jobs/submit"
)

// versionsPass is how often a cluster gateway checks that every published
// version of an API-managed function has its job.
const versionsPass = 10 * time.Second

// clusterManagement wires the management API's writes in a cluster: the
// function store on the same Nomad Variables as the versions, a controller
// that compiles each stored revision into its Nomad job (registered with
// check-index), the deregistration of deleted functions' jobs, and the
// provisioned concurrency status from what Nomad runs and source (the
// gateway's discovery) routes to. run starts the loops; they stop with its
// context.
func clusterManagement(cfg *config.Config, nc *nomadapi.Client, backend versions.Backend, source discovery.Source, gatewayID string, logger hclog.Logger) (*server.ManageDeps, func(ctx context.Context)) {
	vstore := versions.New(backend, logger)
	fstore := functions.NewStore(backend)
	base := cfg.Artifacts.PublicURL
	if base == "" {
		base = "http://" + gatewayID + artifacts.Path
	}
	provider := jobs.ProviderConsul
	if cfg.Discovery == config.DiscoveryNomad {
		provider = jobs.ProviderNomad
	}
	a := &apply.Applier{
		Submitter: submit.New(nc.Jobs(), nc.Variables(), logger),
		Options: jobs.Options{
			Region: cfg.Nomad.Region, Namespace: cfg.Nomad.Namespace, ServiceProvider: provider,
			// A gateway in the mesh makes its functions' instances
			// Connect-native (mTLS + intentions in place of the invoke
			// secret); Nomad's own services cannot join, so with
			// discovery = "nomad" instances stay on the secret.
			Connect:   cfg.ConnectEnabled() && provider == jobs.ProviderConsul,
			AWSRegion: cfg.Region, AccountID: cfg.AccountID,
		},
		Key: cfg.InvokeKeyBytes,
		Layers: func(ctx context.Context, runtime string, refs []string) ([]jobs.Artifact, error) {
			lvs, err := vstore.ResolveLayers(ctx, runtime, refs)
			if err != nil {
				return nil, err
			}
			out := make([]jobs.Artifact, len(lvs))
			for i, lv := range lvs {
				out[i] = jobs.Artifact{Source: base + lv.CodeSHA256 + ".zip", Checksum: "sha256:" + lv.CodeSHA256}
			}
			return out, nil
		},
		Logger: logger,
	}
	// Image functions: the gateway pins tags with the registry
	// credentials of its own environment (DOCKER_CONFIG or
	// ~/.docker/config.json), and checks the pinned image is still there
	// before it registers a job, so a deleted image fails the function
	// with Lambda's ImageDeleted instead of failing every placement.
	resolver := images.NewResolver(oci.DockerConfig(os.Getenv))
	ctl := functions.NewController(fstore, functions.ApplierFunc(func(ctx context.Context, f *functions.Function) error {
		if err := checkImage(ctx, resolver, f.Spec); err != nil {
			return err
		}
		return a.Apply(ctx, f.Spec, jobs.LatestVersion, f.RevisionID)
	}), time.Second, logger)
	kickVersions := make(chan struct{}, 1)
	scope := submit.Scope{Namespace: cfg.Nomad.Namespace, Region: cfg.Nomad.Region}
	deps := &server.ManageDeps{
		Functions: fstore, Versions: vstore,
		ArtifactBaseURL: func() string { return base },
		Applied: func() {
			ctl.Kick()
			select {
			case kickVersions <- struct{}{}:
			default:
			}
		},
		Remove:       a.Remove,
		ResolveImage: resolver.Resolve,
		Provisioned: func(ctx context.Context, fn, version string) (int, error) {
			return provisionedReady(ctx, nc.Jobs(), source, vstore, scope, fn, version)
		},
	}
	run := func(ctx context.Context) {
		go ctl.Run(ctx)
		go applyVersions(ctx, fstore, vstore, a, kickVersions, logger)
	}
	return deps, run
}

// provisionedReady is the management API's provisioned status in a
// cluster, in execution environments (each instance holds
// environments_per_instance): the provisioned instances of the version's
// job that Nomad runs and that passed their health check, so the gateway
// routes to them (an allocation's task runs before its environments have
// finished init). A failed provisioned allocation is the error.
func provisionedReady(ctx context.Context, allocs apply.Allocations, source discovery.Source, vstore *versions.Store, scope submit.Scope, fn, version string) (int, error) {
	n, err := strconv.Atoi(version)
	if err != nil {
		return 0, fmt.Errorf("version %q of %s is not a published version", version, fn)
	}
	v, err := vstore.Version(ctx, fn, n)
	if err != nil {
		return 0, fmt.Errorf("reading version %d of %s: %w", n, fn, err)
	}
	running, runErr := apply.ProvisionedRunning(ctx, allocs, scope, fn, version)
	healthy := 0
	if running > 0 {
		ins, err := source.Instances(ctx, fn, version)
		if err != nil {
			return 0, fmt.Errorf("reading the healthy instances of %s:%s: %w", fn, version, err)
		}
		for _, in := range ins {
			if in.Group == discovery.GroupProvisioned {
				healthy++
			}
		}
	}
	return min(running, healthy) * max(v.Spec.EnvironmentsPerInstance, 1), runErr
}

// applyVersions keeps the job of every published version of the
// API-managed functions registered as the store says it runs: PublishVersion
// stores a version and a provisioned concurrency config raises (or, deleted,
// drops) its provisioned group's floor; the job follows here, on whichever
// gateway gets there first, every versionsPass or when kicked.
func applyVersions(ctx context.Context, fstore *functions.Store, vstore *versions.Store, a *apply.Applier, kick <-chan struct{}, logger hclog.Logger) {
	t := time.NewTicker(versionsPass)
	defer t.Stop()
	for {
		applyVersionsOnce(ctx, fstore, vstore, a, logger)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// applyVersionsOnce is one pass of applyVersions.
func applyVersionsOnce(ctx context.Context, fstore *functions.Store, vstore *versions.Store, a *apply.Applier, logger hclog.Logger) {
	fns, err := fstore.List(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		logger.Warn("listing functions for their versions' jobs", "error", err)
	}
	for _, f := range fns {
		vs, err := vstore.ProvisionedVersions(ctx, f.Name)
		if err != nil {
			logger.Warn("listing versions", "function", f.Name, "error", err)
			continue
		}
		for _, pv := range vs {
			v := pv.Version
			if err := a.ApplyFloor(ctx, v.Spec, pv.Spec.Provisioned, v.Name(), "version-"+v.Name()); err != nil {
				logger.Warn("registering a published version's job", "function", f.Name, "version", v.Number, "error", err)
			}
		}
	}
}
