// Package images is the user-facing side of image functions (Lambda's
// PackageType Image): Resolver pins an image reference to its manifest
// digest at deploy time and checks that the registry still holds it, for
// the CLI (nimbus deploy, render, plan), the management API
// (CreateFunction and UpdateFunctionCode with ImageUri) and the appliers
// that move a function into service. The registry work (Resolve, the
// docker-style credentials, plain HTTP for loopback and insecure
// registries) is driver/oci's, the same code the driver pulls with; this
// package adds Lambda's reason codes (functions.WithReason) to its errors:
// ImageDeleted for an unknown repository, tag or digest, ImageAccessDenied
// for refused credentials, InvalidImage for a reference that does not parse
// or a digest the registry contradicts; an unreachable registry carries
// none.
//
// It also feeds pull failures after a function is Active back into the
// function's State (Failed, with ImageDeleted, ImageAccessDenied or
// InvalidImage) while $LATEST serves that image: PullFailed for a launcher
// that runs instances itself (nimbus dev, at launch), Watch for every
// invocation's answer, which names the failure when the instance's pull
// failed (invokeapi.HeaderImageFailure; the cluster path, where instances
// run in Nomad tasks and the gateway hears of them only so). A registry
// that cannot be reached changes nothing; the next successful update makes
// the function Active again.
//
// It may import gateway/functions (for the reason codes and the store),
// gateway/catalog, gateway/router, driver/oci, driver/invokeapi and
// go-containerregistry.
package images
