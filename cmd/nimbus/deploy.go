package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/jobs/submit"
)

func init() {
	register("deploy", command{
		summary: "build, package and register functions as Nomad jobs (NOMAD_ADDR, NOMAD_TOKEN)",
		run:     runDeploy,
	})
}

func runDeploy(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "deploy", "[spec file or dir]")
	var f jobFlags
	f.add(fs)
	endpoint := fs.String("endpoint", "", "deploy through this gateway's management API (env NIMBUS_ENDPOINT): "+
		"the gateway stores each function and compiles its jobs; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY sign the calls. "+
		"Without it, deploy registers jobs in Nomad itself (NOMAD_ADDR, NOMAD_TOKEN)")
	direct := fs.Bool("nomad", false, "register the jobs in Nomad yourself (NOMAD_ADDR, NOMAD_TOKEN) instead of through the gateway's API; "+
		"with --endpoint the code bundles still go to that gateway's artifact store (without an endpoint, deploy always does this)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if ep := cmp.Or(*endpoint, env.getenv("NIMBUS_ENDPOINT")); ep != "" && !*direct {
		if err := refuseNomadOnlyFlags(fs); err != nil {
			return err
		}
		path, err := specPath(fs)
		if err != nil {
			return err
		}
		return deployThroughAPI(ctx, env, ep, path, &f)
	}
	// Without an explicit artifact base URL, bundles go to the gateway's
	// artifact store and the jobs fetch them from there.
	upload := ""
	if f.artifactBaseURL == "" && env.getenv(envArtifactBaseURL) == "" {
		if upload = *endpoint; upload == "" {
			upload = env.getenv("NIMBUS_ENDPOINT")
		}
		if upload != "" {
			f.artifactBaseURL = strings.TrimRight(upload, "/") + strings.TrimRight(artifacts.Path, "/")
		}
	}
	path, err := specPath(fs)
	if err != nil {
		return err
	}
	// Everything compiles before anything is registered: one bad function
	// leaves the cluster untouched.
	cs, err := compileSpecs(ctx, env, path, &f, true)
	if err != nil {
		return err
	}
	if upload != "" {
		if err := uploadBundles(ctx, env, upload, cs); err != nil {
			return err
		}
	} else {
		reportBundles(env.stderr, cs)
	}
	client, err := nomadClient(env)
	if err != nil {
		return err
	}
	s := submit.New(client.Jobs(), client.Variables(), hclog.NewNullLogger())
	for _, c := range cs {
		res, err := s.Register(ctx, c.job, c.secrets)
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

// uploadBundles sends every packaged bundle to the gateway's artifact store
// before any job that fetches it is registered.
func uploadBundles(ctx context.Context, env *cliEnv, endpoint string, cs []compiled) error {
	c := artifactClient(env, endpoint)
	seen := map[string]bool{}
	for _, cj := range cs {
		for _, b := range cj.bundles {
			if seen[b.path] {
				continue
			}
			seen[b.path] = true
			data, err := os.ReadFile(b.path)
			if err != nil {
				return fmt.Errorf("reading bundle: %w", err)
			}
			up, err := c.Upload(ctx, data)
			if err != nil {
				return err
			}
			if c.URL(up.SHA256) != b.url {
				return fmt.Errorf("bundle %s was stored as %s, not at %s the job fetches", b.path, c.URL(up.SHA256), b.url)
			}
			state := "already stored"
			if up.Created {
				state = "uploaded"
			}
			fmt.Fprintf(env.stderr, "bundle %s %s (%d bytes)\n", up.SHA256, state, up.Size)
		}
	}
	return nil
}
