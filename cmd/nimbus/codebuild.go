package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/nimbus-fn/nimbus/bundle/build"
	"github.com/nimbus-fn/nimbus/specs"
)

// functionCodeDir is fn's code { dir }, absolute ("" when its code is a zip
// or a URL).
func functionCodeDir(fn *specs.Function) (string, error) {
	if fn.Code == nil || fn.Code.Dir == "" {
		return "", nil
	}
	dir := fn.Code.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(fn.Dir, dir)
	}
	return filepath.Abs(dir)
}

// buildFunction runs fn's build on the code in dir (its build block, else
// the runtime's default; see bundle/build) and returns the directory to
// package or run. A failure names the function, the spec position of its
// build block (or of the function, for a default build) and carries the
// command's output. log, when set, gets one line saying what ran.
func buildFunction(ctx context.Context, fn *specs.Function, dir string, opts build.Options, log io.Writer) (build.Result, error) {
	var custom *build.Custom
	pos, what := fn.Pos, "default build for runtime "+fn.Runtime
	if b := fn.Build; b != nil {
		custom = &build.Custom{Command: b.Command, Output: b.Output, Skip: b.Skip}
		pos, what = b.Pos, "build"
	}
	res, err := build.Run(ctx, fn.Runtime, dir, custom, opts)
	if err != nil {
		return res, fmt.Errorf("%s: function %q: %s: %w", pos, fn.Name, what, err)
	}
	if log != nil && res.Step != "" {
		state := "built"
		if res.Cached {
			state = "reused the build"
		}
		fmt.Fprintf(log, "function %s: %s `%s` -> %s\n", fn.Name, state, res.Step, res.Dir)
	}
	return res, nil
}
