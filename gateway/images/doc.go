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
// It may import gateway/functions (for the reason codes), driver/oci and
// go-containerregistry.
package images
