package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/nimbus-fn/nimbus/driver/instance"
	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/images"
	"github.com/nimbus-fn/nimbus/specs"
)

// imageFlags are the registry settings of commands that resolve or push
// images (deploy, render, plan, publish, build --image, dev).
type imageFlags struct {
	insecure listFlag
}

func (f *imageFlags) add(fs *flag.FlagSet) {
	fs.Var(&f.insecure, "insecure-registry", "registry host[:port] reached over plain HTTP (repeatable; loopback registries always are). Credentials come from $DOCKER_CONFIG/config.json, else ~/.docker/config.json")
}

// auth is how this process reaches registries: the docker-style config
// of env ($DOCKER_CONFIG/config.json, else ~/.docker/config.json, read at
// each use and anonymous while missing) and the insecure registries. The
// resolver and the instances this process launches (dev, local invoke)
// share it.
func (f *imageFlags) auth(env *cliEnv) oci.Auth {
	a := oci.DockerConfig(env.getenv)
	a.InsecureRegistries = f.insecure
	return a
}

// resolver pins image references with f.auth.
func (f *imageFlags) resolver(env *cliEnv) *images.Resolver {
	return images.NewResolver(f.auth(env))
}

// checkImage asks the registry for an image function's pinned image before
// it is put into service (dev and cluster appliers); the error carries
// Lambda's reason (ImageDeleted, ImageAccessDenied), which the controller
// records as the function's state reason. Zip functions pass.
func checkImage(ctx context.Context, r *images.Resolver, fn *specs.Function) error {
	if !fn.IsImage() {
		return nil
	}
	pinned := fn.Code.PinnedImage()
	if pinned == "" {
		return fmt.Errorf("image %s was never resolved to a digest", fn.Code.Image)
	}
	_, err := r.Resolve(ctx, pinned)
	return err
}

// imageInstance is the instance config's image part for an image function
// run by this process (dev, local invoke): the same driver path as under
// Nomad (driver/instance pulls into cacheDir). A tag not pinned yet (a
// spec file's) is resolved now.
func imageInstance(ctx context.Context, res *images.Resolver, auth oci.Auth, fn *specs.Function, cacheDir string) (*instance.ImageConfig, error) {
	pinned := fn.Code.PinnedImage()
	if pinned == "" {
		var err error
		if pinned, err = res.Resolve(ctx, fn.Code.Image); err != nil {
			return nil, fmt.Errorf("function %s: %w", fn.Name, err)
		}
	}
	ic := &instance.ImageConfig{Ref: pinned, CacheDir: cacheDir, Auth: auth}
	if c := fn.ImageConfig; c != nil {
		ic.Entrypoint, ic.Command, ic.WorkingDirectory = c.Entrypoint, c.Command, c.WorkingDirectory
	}
	return ic, nil
}
