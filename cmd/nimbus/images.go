package main

import (
	"context"
	"flag"
	"fmt"

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

// resolver pins image references with the docker-style config of env.
func (f *imageFlags) resolver(env *cliEnv) *images.Resolver {
	return images.NewResolver(images.Options{Keychain: images.DockerConfig(env.getenv), Insecure: f.insecure})
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
