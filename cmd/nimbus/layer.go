package main

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/nimbus-fn/nimbus/gateway/versions"
)

func init() {
	register("layer publish", command{
		summary: "publish a layer block's code as a new immutable layer version",
		run:     runLayerPublish,
	})
	register("layer versions", command{
		summary: "list a layer's published versions",
		run:     runLayerVersions,
	})
}

func runLayerPublish(ctx context.Context, env *cliEnv, args []string) error {
	fs, sf := newStoreFlagsWith(env, "layer publish", "LAYER [spec file or dir]",
		"the gateway whose artifact store takes the bundle (default "+defaultEndpoint+")")
	pos, err := positional(fs, args, 1, 2)
	if err != nil {
		return err
	}
	name, path := pos[0], "."
	if len(pos) == 2 {
		path = pos[1]
	}
	file, err := loadSpecs(env, path)
	if err != nil {
		return err
	}
	l := file.Layer(name)
	if l == nil {
		return fmt.Errorf("%s: no layer %q", path, name)
	}
	data, sum, unzipped, err := packCode(l.Code, l.Dir, "layer "+name)
	if err != nil {
		return err
	}
	if c, err := sf.apiClient(env); err != nil {
		return err
	} else if c != nil {
		return publishLayerAPI(ctx, env, c, l, data, sum, unzipped)
	}
	st, err := sf.open(env)
	if err != nil {
		return err
	}
	if st.local != nil {
		if _, err := saveLocal(st.local, sf.dir, sum, data); err != nil {
			return err
		}
	} else {
		up, err := artifactClient(env, cmp.Or(sf.endpoint, endpointFlagDefault(env))).Upload(ctx, data)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "bundle %s uploaded (%d bytes, new: %v)\n", up.SHA256, up.Size, up.Created)
	}
	lv, created, err := st.store.PublishLayer(ctx, name, versions.LayerSnapshot{
		CodeSHA256: sum, Size: unzipped, Description: l.Description, CompatibleRuntimes: l.CompatibleRuntimes,
	})
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(env.stdout, "published layer %s version %d (sha256:%s, %.1f MB unzipped)\n", name, lv.Number, sum, mb(unzipped))
	} else {
		fmt.Fprintf(env.stdout, "layer %s is unchanged since version %d (sha256:%s)\n", name, lv.Number, sum)
	}
	return nil
}

func runLayerVersions(ctx context.Context, env *cliEnv, args []string) error {
	fs, sf := newStoreFlags(env, "layer versions", "LAYER")
	pos, err := positional(fs, args, 1, 1)
	if err != nil {
		return err
	}
	var lvs []*versions.LayerVersion
	if c, err := sf.apiClient(env); err != nil {
		return err
	} else if c != nil {
		if lvs, err = c.listLayerVersions(ctx, pos[0]); err != nil {
			return err
		}
	} else {
		st, err := sf.open(env)
		if err != nil {
			return err
		}
		if lvs, err = st.store.LayerVersions(ctx, pos[0]); err != nil {
			return err
		}
	}
	tw := newTable(env.stdout, "VERSION", "SHA256", "UNZIPPED", "RUNTIMES", "DESCRIPTION")
	for _, lv := range lvs {
		fmt.Fprintf(tw, "%d\t%s\t%.1f MB\t%s\t%s\n", lv.Number, short(lv.CodeSHA256), mb(lv.Size), strings.Join(lv.CompatibleRuntimes, ","), lv.Description)
	}
	return tw.Flush()
}
