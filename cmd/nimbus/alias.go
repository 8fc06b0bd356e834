package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/nimbus-fn/nimbus/specs"
)

func init() {
	register("alias set", command{
		summary: "point an alias at a version, optionally splitting traffic with --weight N=0.1",
		run:     runAliasSet,
	})
	register("alias list", command{
		summary: "list a function's aliases",
		run:     runAliasList,
	})
	register("alias delete", command{
		summary: "delete an alias",
		run:     runAliasDelete,
	})
}

// parseWeight reads "2=0.1" or "v2=0.1" (version 2 gets 10% of the calls).
func parseWeight(s string) (string, float64, error) {
	v, w, ok := strings.Cut(s, "=")
	v = strings.TrimPrefix(v, "v")
	if !ok {
		return "", 0, fmt.Errorf("--weight %q: want VERSION=WEIGHT, e.g. 2=0.1", s)
	}
	if _, err := strconv.Atoi(v); err != nil {
		return "", 0, fmt.Errorf("--weight %q: %q is not a version number", s, v)
	}
	f, err := strconv.ParseFloat(w, 64)
	if err != nil {
		return "", 0, fmt.Errorf("--weight %q: %q is not a number", s, w)
	}
	return v, f, nil
}

func runAliasSet(ctx context.Context, env *cliEnv, args []string) error {
	fs, sf := newStoreFlags(env, "alias set", "FUNCTION ALIAS VERSION")
	var weights listFlag
	fs.Var(&weights, "weight", "route a share of the alias's calls to another version: VERSION=WEIGHT (0–1; at most one)")
	desc := fs.String("description", "", "description of the alias")
	pos, err := positional(fs, args, 3, 3)
	if err != nil {
		return err
	}
	a := &specs.Alias{Name: pos[1], Version: strings.TrimPrefix(pos[2], "v"), Description: *desc}
	for _, w := range weights {
		v, f, err := parseWeight(w)
		if err != nil {
			return err
		}
		if a.Routing == nil {
			a.Routing = map[string]float64{}
		}
		a.Routing[v] = f
	}
	if c, err := sf.apiClient(env); err != nil {
		return err
	} else if c != nil {
		if err := c.setAlias(ctx, pos[0], a); err != nil {
			return err
		}
	} else {
		st, err := sf.open(env)
		if err != nil {
			return err
		}
		if err := st.store.SetAlias(ctx, pos[0], a); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stdout, "alias %s of %s -> %s\n", a.Name, pos[0], describeAlias(a))
	return nil
}

func runAliasList(ctx context.Context, env *cliEnv, args []string) error {
	fs, sf := newStoreFlags(env, "alias list", "FUNCTION")
	pos, err := positional(fs, args, 1, 1)
	if err != nil {
		return err
	}
	var as []*specs.Alias
	if c, err := sf.apiClient(env); err != nil {
		return err
	} else if c != nil {
		if as, err = c.listAliases(ctx, pos[0]); err != nil {
			return err
		}
	} else {
		st, err := sf.open(env)
		if err != nil {
			return err
		}
		if as, err = st.store.Aliases(ctx, pos[0]); err != nil {
			return err
		}
	}
	tw := newTable(env.stdout, "ALIAS", "VERSION", "ROUTING", "DESCRIPTION")
	for _, a := range as {
		var r []string
		for v, w := range a.Routing {
			r = append(r, fmt.Sprintf("%s=%g", v, w))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.Version, strings.Join(r, ","), a.Description)
	}
	return tw.Flush()
}

func runAliasDelete(ctx context.Context, env *cliEnv, args []string) error {
	fs, sf := newStoreFlags(env, "alias delete", "FUNCTION ALIAS")
	pos, err := positional(fs, args, 2, 2)
	if err != nil {
		return err
	}
	if c, err := sf.apiClient(env); err != nil {
		return err
	} else if c != nil {
		if err := c.call(ctx, http.MethodDelete, aliasPath(pos[0], pos[1]), nil, nil); err != nil {
			return fmt.Errorf("DeleteAlias: %w", err)
		}
	} else {
		st, err := sf.open(env)
		if err != nil {
			return err
		}
		if err := st.store.DeleteAlias(ctx, pos[0], pos[1]); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stdout, "deleted alias %s of %s\n", pos[1], pos[0])
	return nil
}
