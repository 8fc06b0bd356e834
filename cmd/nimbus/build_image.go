package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nimbus-fn/nimbus/bundle/build"
	"github.com/nimbus-fn/nimbus/bundle/ociimage"
	"github.com/nimbus-fn/nimbus/specs"
)

func init() {
	register("build", command{
		summary: "build a function's container image (--image) without a Docker daemon; write an OCI layout or push it",
		run:     runBuild,
	})
}

func runBuild(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "build", "--image [--base REF] [--tag REF] [--push] DIR")
	image := fs.Bool("image", false, "build an OCI image (required: zip bundles are built by deploy, render and publish)")
	base := fs.String("base", "", "base image; required for python and node (one with the interpreter and a runtime interface client, e.g. public.ecr.aws/lambda/python:3.12); default for provided runtimes: an empty image")
	tag := fs.String("tag", "", "image reference to name the image (registry/repo:tag); required with --push")
	push := fs.Bool("push", false, "push the image to --tag's registry instead of writing an OCI layout")
	output := fs.String("output", "", "OCI layout directory to write (default .nimbus/images/<function>); not with --push")
	function := fs.String("function", "", "the function to build when DIR's specs declare several")
	runtime := fs.String("runtime", "", "runtime when DIR has no spec (provided.al2023, python3.N, nodejsNN.x)")
	handler := fs.String("handler", "", "handler when DIR has no spec (python and node)")
	vars := specVars{}
	fs.Var(vars, "var", "set a spec variable, name=value (repeatable)")
	var imgFlags imageFlags
	imgFlags.add(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case !*image:
		return errors.New("nimbus build builds container images: pass --image (zip bundles are built by deploy, render and publish)")
	case fs.NArg() != 1:
		return fmt.Errorf("want one function directory, got %d arguments", fs.NArg())
	case *push && *tag == "":
		return errors.New("--push needs --tag (the reference to push to)")
	case *push && *output != "":
		return errors.New("--output writes an OCI layout; --push sends the image to a registry: give one")
	}
	dir := fs.Arg(0)
	fn, err := buildTarget(env, dir, *function, *runtime, *handler, vars)
	if err != nil {
		return err
	}
	codeDir, err := functionCodeDir(fn)
	if err != nil {
		return err
	}
	cache, err := makeOwnedTempDir("", buildTempPrefix)
	if err != nil {
		return fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(cache)
	res, err := buildFunction(ctx, fn, codeDir, build.Options{CacheDir: cache}, env.stderr)
	if err != nil {
		return err
	}
	resolver := imgFlags.resolver(env)
	var baseImg v1.Image
	if *base != "" {
		ref, err := resolver.Parse(*base)
		if err != nil {
			return fmt.Errorf("--base: %w", err)
		}
		opts := append(resolver.RemoteOptions(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
		if baseImg, err = remote.Image(ref, opts...); err != nil {
			return fmt.Errorf("--base %s: %w", *base, err)
		}
	}
	img, err := ociimage.Build(ociimage.Options{CodeDir: res.Dir, Runtime: fn.Runtime, Handler: fn.Handler, Base: baseImg})
	if err != nil {
		return fmt.Errorf("function %s: %w", fn.Name, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("function %s: %w", fn.Name, err)
	}
	if *push {
		ref, err := resolver.Parse(*tag)
		if err != nil {
			return fmt.Errorf("--tag: %w", err)
		}
		if err := remote.Write(ref, img, resolver.RemoteOptions(ctx)...); err != nil {
			return fmt.Errorf("pushing %s: %w", *tag, err)
		}
		fmt.Fprintf(env.stdout, "pushed %s\nimage %s@%s\n", *tag, ref.Context().Name(), digest)
		return nil
	}
	out := *output
	if out == "" {
		out = filepath.Join(".nimbus", "images", fn.Name)
	}
	p, err := layout.FromPath(out)
	if err != nil {
		if p, err = layout.Write(out, empty.Index); err != nil {
			return fmt.Errorf("writing the OCI layout %s: %w", out, err)
		}
	}
	var opts []layout.Option
	if *tag != "" {
		if _, err := name.ParseReference(*tag); err != nil {
			return fmt.Errorf("--tag: %w", err)
		}
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": *tag}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("writing the OCI layout %s: %w", out, err)
	}
	fmt.Fprintf(env.stdout, "wrote OCI layout %s\nimage digest %s\n", out, digest)
	return nil
}

// buildTarget is the function nimbus build packages: the one the specs in
// dir declare (or --function of them), else a function of --runtime and
// --handler whose code is dir itself.
func buildTarget(env *cliEnv, dir, function, runtime, handler string, vars specVars) (*specs.Function, error) {
	hcl, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	if len(hcl) == 0 {
		if runtime == "" {
			return nil, fmt.Errorf("%s has no spec (*.hcl): pass --runtime (and --handler for python and node)", dir)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		return &specs.Function{Name: filepath.Base(abs), Runtime: runtime, Handler: handler, Code: &specs.Code{Dir: "."}, Dir: abs, Pos: abs}, nil
	}
	if runtime != "" || handler != "" {
		return nil, fmt.Errorf("%s has a spec: its runtime and handler apply; drop --runtime and --handler", dir)
	}
	file, diags := specs.Load(dir, &specs.Options{Vars: vars, Env: env.getenv})
	if len(diags) > 0 {
		fmt.Fprint(env.stderr, specs.FormatDiagnostics(diags, nil))
	}
	if diags.HasErrors() || file == nil {
		return nil, errReported
	}
	fns, err := selectFunctions(file, dir, function)
	if err != nil {
		return nil, err
	}
	if len(fns) != 1 {
		return nil, fmt.Errorf("%s declares %d functions: pass --function", dir, len(fns))
	}
	fn := fns[0]
	if fn.IsImage() {
		return nil, fmt.Errorf("%s: function %q is already an image (%s); build the function whose code { dir } holds its code", fn.Pos, fn.Name, fn.Code.Image)
	}
	if fn.Code == nil || fn.Code.Dir == "" {
		return nil, fmt.Errorf("%s: function %q: nimbus build --image packages a code { dir }", fn.Pos, fn.Name)
	}
	return fn, nil
}
