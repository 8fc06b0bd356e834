// Package images is the user-facing side of image functions (Lambda's
// PackageType Image): Resolver pins an image reference to its manifest
// digest at deploy time and checks that the registry still holds it, for
// the CLI (nimbus deploy, render, plan), the management API
// (CreateFunction and UpdateFunctionCode with ImageUri) and the appliers
// that move a function into service. Pulling, verifying and unpacking an
// image for an environment is the driver's (driver/oci), not this
// package's.
//
// Resolve always asks the registry, for a digest reference too (a HEAD on
// the manifest), so an image deleted after it was pushed is found at
// deploy, not at the first invoke. Its errors carry Lambda's reason codes
// (functions.WithReason): ImageDeleted for an unknown repository, tag or
// digest, ImageAccessDenied for refused credentials, InvalidImage for a
// reference that does not parse; an unreachable registry carries none.
//
// Credentials come from a docker-style config ($DOCKER_CONFIG/config.json,
// else ~/.docker/config.json: its "auths" entries; credential helpers are
// refused with an error naming them, not skipped), or from
// Options.Keychain.
// Loopback registries are reached over plain HTTP; others over HTTPS unless
// listed in Options.Insecure.
//
// It may import gateway/functions (for the reason codes), specs and
// go-containerregistry.
package images
