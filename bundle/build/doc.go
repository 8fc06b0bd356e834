// Package build turns a function's code directory into the directory that
// is packaged (nimbus deploy, render, plan and publish) or run (nimbus dev,
// nimbus local invoke): the output of the spec's build command, of a
// default build for the runtime, or the code directory itself.
//
// Defaults, when the spec has no build block:
//
//   - provided* runtimes whose code directory holds Go sources (go.mod or
//     *.go at its top) and no bootstrap at least as new as every Go source:
//     `go build -trimpath -buildvcs=false -tags lambda.norpc -o bootstrap .`
//     with CGO_ENABLED=0 and GOOS set (linux for packaging), into a
//     directory of its own under Options.CacheDir. That directory holds the
//     bootstrap alone, as `sam build` leaves it; files the function reads
//     at run time belong in the binary (go:embed) or need a build block.
//   - nodejs* runtimes whose code directory holds package-lock.json (or
//     npm-shrinkwrap.json): the code directory is copied (without
//     node_modules and .git) under Options.CacheDir and `npm ci --omit=dev`
//     runs in the copy.
//
// Nothing is written into the code directory by a default build. A custom
// command (Custom) runs in the code directory, through `sh -c`, and its
// Output directory is what is packaged.
//
// It is a leaf: it imports only the standard library.
package build
