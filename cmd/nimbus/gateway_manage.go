package main

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/config"
	"github.com/nimbus-fn/nimbus/gateway/functions"
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
// check-index), and the deregistration of deleted functions' jobs. run
// starts the loops; they stop with its context.
func clusterManagement(cfg *config.Config, nc *nomadapi.Client, backend versions.Backend, gatewayID string, logger hclog.Logger) (*server.ManageDeps, func(ctx context.Context)) {
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
	ctl := functions.NewController(fstore, functions.ApplierFunc(func(ctx context.Context, f *functions.Function) error {
		return a.Apply(ctx, f.Spec, jobs.LatestVersion, f.RevisionID)
	}), time.Second, logger)
	deps := &server.ManageDeps{
		Functions: fstore, Versions: vstore,
		ArtifactBaseURL: func() string { return base },
		Applied:         ctl.Kick,
		Remove:          a.Remove,
	}
	run := func(ctx context.Context) {
		go ctl.Run(ctx)
		go applyVersions(ctx, fstore, vstore, a, logger)
	}
	return deps, run
}

// applyVersions registers the job of every published version of the
// API-managed functions that has none (PublishVersion stores a version; its
// job follows here, on whichever gateway gets there first).
func applyVersions(ctx context.Context, fstore *functions.Store, vstore *versions.Store, a *apply.Applier, logger hclog.Logger) {
	t := time.NewTicker(versionsPass)
	defer t.Stop()
	for {
		fns, err := fstore.List(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			logger.Warn("listing functions for their versions' jobs", "error", err)
		}
		for _, f := range fns {
			vs, err := vstore.Versions(ctx, f.Name)
			if err != nil {
				logger.Warn("listing versions", "function", f.Name, "error", err)
				continue
			}
			for _, v := range vs {
				if err := a.Apply(ctx, v.Spec, strconv.Itoa(v.Number), "version-"+v.Name()); err != nil {
					logger.Warn("registering a published version's job", "function", f.Name, "version", v.Number, "error", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
