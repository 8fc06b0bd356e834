package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	gwapi "github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/jobs/submit"
	"github.com/nimbus-fn/nimbus/specs"
)

// envStateDir names the local version store `nimbus dev` and the CLI share.
const envStateDir = "NIMBUS_STATE_DIR"

func init() {
	register("versions", command{
		summary: "list a function's published versions and the aliases pointing at them",
		run:     runVersions,
	})
	register("versions delete", command{
		summary: "delete a published version no alias points at",
		run:     runVersionsDelete,
	})
}

// stateFlags choose where versions, aliases and layers live: the local
// state dir (dev mode), Nomad Variables (--nomad) or a gateway's Lambda
// management API (--endpoint; the order is apiClient's).
type stateFlags struct {
	fs        *flag.FlagSet
	dir       string
	cluster   bool
	namespace string
	endpoint  string
	// endpointWithNomad: the command uses --endpoint with --nomad too.
	endpointWithNomad bool
}

func (f *stateFlags) add(env *cliEnv, fs *flag.FlagSet, nomadEndpointUse string) {
	f.fs = fs
	fs.StringVar(&f.dir, "state-dir", defaultStateDir(env), "local version store shared with nimbus dev (env "+envStateDir+")")
	fs.BoolVar(&f.cluster, "nomad", false, "keep versions in Nomad Variables under nimbus/ and jobs (NOMAD_ADDR, NOMAD_TOKEN)")
	fs.StringVar(&f.namespace, "namespace", "", "Nomad namespace of the variables and jobs (with --nomad; default the client's)")
	help := "go through this gateway's Lambda management API (env NIMBUS_ENDPOINT, used when neither --state-dir, " +
		envStateDir + " nor --nomad is given)"
	if nomadEndpointUse != "" {
		f.endpointWithNomad = true
		help += "; with --nomad: " + nomadEndpointUse
	}
	fs.StringVar(&f.endpoint, "endpoint", "", help)
}

// newStoreFlags returns the flag set of a command that works on the version
// store (publish, versions, alias, layer), with the state flags added.
func newStoreFlags(env *cliEnv, name, argsUsage string) (*flag.FlagSet, *stateFlags) {
	return newStoreFlagsWith(env, name, argsUsage, "")
}

// newStoreFlagsWith is newStoreFlags for a command that also uses
// --endpoint with --nomad, saying what for.
func newStoreFlagsWith(env *cliEnv, name, argsUsage, nomadEndpointUse string) (*flag.FlagSet, *stateFlags) {
	fs := newFlags(env, name, argsUsage)
	sf := &stateFlags{}
	sf.add(env, fs, nomadEndpointUse)
	return fs, sf
}

// state is an opened version store and, in a cluster, the Nomad client.
type state struct {
	store *versions.Store
	local *versions.Local // nil in a cluster
	nomad *api.Client     // nil locally
	ns    string
}

func (f *stateFlags) open(env *cliEnv) (*state, error) {
	if f.cluster {
		c, err := nomadClient(env)
		if err != nil {
			return nil, err
		}
		return &state{store: versions.New(versions.NewNomad(c.Variables(), f.namespace), hclog.NewNullLogger()), nomad: c, ns: f.namespace}, nil
	}
	l, err := versions.NewLocal(f.dir)
	if err != nil {
		return nil, err
	}
	return &state{store: versions.New(l, hclog.NewNullLogger()), local: l}, nil
}

// versionJobID is the job of a published version (jobs.Compile names it so).
func versionJobID(fn string, n int) string { return "nimbus-" + fn + "-" + strconv.Itoa(n) }

func runVersions(ctx context.Context, env *cliEnv, args []string) error {
	fs, sf := newStoreFlags(env, "versions", "FUNCTION")
	pos, err := positional(fs, args, 1, 1)
	if err != nil {
		return err
	}
	fn := pos[0]
	var vs []*versions.Version
	var aliases []*specs.Alias
	if c, err := sf.apiClient(env); err != nil {
		return err
	} else if c != nil {
		if vs, err = c.listVersions(ctx, fn); err != nil {
			return err
		}
		if aliases, err = c.listAliases(ctx, fn); err != nil {
			return err
		}
	} else {
		st, err := sf.open(env)
		if err != nil {
			return err
		}
		if vs, err = st.store.Versions(ctx, fn); err != nil {
			return err
		}
		if aliases, err = st.store.Aliases(ctx, fn); err != nil {
			return err
		}
	}
	if len(vs) == 0 {
		fmt.Fprintf(env.stdout, "%s has no published versions (nimbus publish %s)\n", fn, fn)
		return nil
	}
	return printVersions(env.stdout, vs, aliases)
}

func printVersions(w io.Writer, vs []*versions.Version, aliases []*specs.Alias) error {
	tw := newTable(w, "VERSION", "CODE SHA256", "CREATED", "ALIASES", "DESCRIPTION")
	for _, v := range vs {
		var names []string
		for _, a := range aliases {
			if a.Version == v.Name() {
				names = append(names, a.Name)
			} else if wt, ok := a.Routing[v.Name()]; ok {
				names = append(names, fmt.Sprintf("%s (%g)", a.Name, wt))
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", v.Number, short(v.CodeSHA256), v.Created.Format("2006-01-02 15:04:05Z"), strings.Join(names, ", "), v.Description)
	}
	return tw.Flush()
}

func runVersionsDelete(ctx context.Context, env *cliEnv, args []string) error {
	fs, sf := newStoreFlags(env, "versions delete", "FUNCTION VERSION")
	pos, err := positional(fs, args, 2, 2)
	if err != nil {
		return err
	}
	fn := pos[0]
	n, err := strconv.Atoi(pos[1])
	if err != nil || n < 1 {
		return fmt.Errorf("version %q: want a published version number", pos[1])
	}
	if c, err := sf.apiClient(env); err != nil {
		return err
	} else if c != nil {
		err := c.call(ctx, http.MethodDelete, fnPath(fn)+"?Qualifier="+strconv.Itoa(n), nil, nil)
		if isCode(err, gwapi.CodeResourceConflict) {
			return fmt.Errorf("DeleteFunction: %w (move the alias first: nimbus alias set)", err)
		}
		if err != nil {
			return fmt.Errorf("DeleteFunction: %w", err)
		}
		fmt.Fprintf(env.stdout, "deleted version %d of %s\n", n, fn)
		return nil
	}
	st, err := sf.open(env)
	if err != nil {
		return err
	}
	if err := st.store.DeleteVersion(ctx, fn, n); err != nil {
		if errors.Is(err, versions.ErrVersionInUse) {
			return fmt.Errorf("%w (move the alias first: nimbus alias set)", err)
		}
		return err
	}
	if st.nomad != nil {
		s := submit.New(st.nomad.Jobs(), st.nomad.Variables(), hclog.NewNullLogger())
		if _, err := s.Deregister(ctx, submit.Scope{Namespace: st.ns}, versionJobID(fn, n), true); err != nil {
			return fmt.Errorf("version %d deleted, but its job %s was not: %w", n, versionJobID(fn, n), err)
		}
	}
	fmt.Fprintf(env.stdout, "deleted version %d of %s\n", n, fn)
	return nil
}
