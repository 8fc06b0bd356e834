package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/jobs/submit"
)

func init() {
	register("deploy", command{
		summary: "package and register functions as Nomad jobs (NOMAD_ADDR, NOMAD_TOKEN)",
		run:     runDeploy,
	})
}

func runDeploy(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "deploy", "[spec file or dir]")
	var f jobFlags
	f.add(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	path, err := specPath(fs)
	if err != nil {
		return err
	}
	// Everything compiles before anything is registered: one bad function
	// leaves the cluster untouched.
	cs, err := compileSpecs(env, path, &f)
	if err != nil {
		return err
	}
	reportBundles(env.stderr, cs)
	client, err := nomadClient(env)
	if err != nil {
		return err
	}
	s := submit.New(client.Jobs(), hclog.NewNullLogger())
	for _, c := range cs {
		res, err := s.Register(ctx, c.job)
		if err != nil {
			return fmt.Errorf("%s: function %q: %w", c.fn.Pos, c.fn.Name, err)
		}
		verb := "updated"
		if res.Created {
			verb = "created"
		}
		fmt.Fprintf(env.stdout, "%s job %s (eval %s)", verb, res.JobID, res.EvalID)
		if len(res.PreservedCounts) > 0 {
			var kept []string
			for g, n := range res.PreservedCounts {
				kept = append(kept, fmt.Sprintf("%s=%d", g, n))
			}
			sort.Strings(kept)
			fmt.Fprintf(env.stdout, ", kept running counts %s", strings.Join(kept, " "))
		}
		fmt.Fprintln(env.stdout)
		if len(res.Clamped) > 0 {
			fmt.Fprintf(env.stdout, "  running counts of %s were outside the new scaling bounds and moved to the nearest bound\n", strings.Join(res.Clamped, ", "))
		}
		if res.Warnings != "" {
			fmt.Fprintf(env.stdout, "  warnings: %s\n", res.Warnings)
		}
	}
	return nil
}
