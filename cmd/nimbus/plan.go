package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/jobs/submit"
)

func init() {
	register("plan", command{
		summary: "show what deploy would change in Nomad (nomad job plan for every function)",
		run:     runPlan,
	})
}

// nomadClient builds a Nomad API client from api.DefaultConfig, with
// NOMAD_ADDR and NOMAD_TOKEN taken from the command's environment.
func nomadClient(env *cliEnv) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if addr := env.getenv("NOMAD_ADDR"); addr != "" {
		cfg.Address = addr
	}
	if token := env.getenv("NOMAD_TOKEN"); token != "" {
		cfg.SecretID = token
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client for %s: %w", cfg.Address, err)
	}
	return c, nil
}

func runPlan(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "plan", "[spec file or dir]")
	var f jobFlags
	f.add(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := specPath(fs)
	if err != nil {
		return err
	}
	cs, err := compileSpecs(ctx, env, path, &f, false)
	if err != nil {
		return err
	}
	client, err := nomadClient(env)
	if err != nil {
		return err
	}
	s := submit.New(client.Jobs(), client.Variables(), hclog.NewNullLogger())
	for _, c := range cs {
		p, err := s.Plan(ctx, c.job)
		if err != nil {
			return fmt.Errorf("%s: function %q: %w", c.fn.Pos, c.fn.Name, err)
		}
		state := "update"
		if p.Created {
			state = "new"
		}
		fmt.Fprintf(env.stdout, "job %s (%s):\n", p.JobID, state)
		fmt.Fprint(env.stdout, submit.FormatDiff(p.Response.Diff))
		groups := make([]string, 0, len(p.Response.FailedTGAllocs))
		for g := range p.Response.FailedTGAllocs {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		for _, g := range groups {
			fmt.Fprintf(env.stdout, "  ! group %q could not be placed now (no client with the nimbus driver and room?)\n", g)
		}
		if p.Response.Warnings != "" {
			fmt.Fprintf(env.stdout, "  warnings: %s\n", p.Response.Warnings)
		}
	}
	reportBundles(env.stderr, cs)
	return nil
}
