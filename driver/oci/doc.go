// Package oci pulls container images for image functions (Lambda's
// PackageType Image) and keeps their layers in a content-addressed,
// read-only cache on the client.
//
// Resolve pins a reference to its manifest digest, asking the registry
// every time (a digest reference too), so a deleted image is found when a
// function is deployed; the gateway's resolver (gateway/images) and the
// CLI use it, and the compiler pins its answer in the job. Reason names a
// failure as Lambda's StateReasonCode does (ImageDeleted,
// ImageAccessDenied, InvalidImage). A Store pulls an image by reference over
// the OCI distribution protocol, verifies every layer's compressed digest
// while it streams (and its uncompressed diffID against the image config),
// and unpacks each layer once into its own directory keyed by the layer's
// digest; images and versions that share a layer share its directory. An environment's root is
// the image's layer directories stacked with overlayfs (driver/sandbox), so
// layers are unpacked in overlayfs form: a whiteout (.wh.<name>) becomes a
// 0/0 character device and an opaque directory marker (.wh..wh..opq) the
// trusted.overlay.opaque xattr. Creating those needs CAP_MKNOD and
// CAP_SYS_ADMIN, which the driver has and which running image functions
// needs anyway (they only run isolated). Paths that would leave the layer
// (.., absolute or escaping symlinks followed by a later entry) are
// refused; hard links must name an entry of the same layer.
//
// The cache is bounded: layers an image in use holds (Pull pins them until
// Release) are never evicted; when the cache is over its size, the least
// recently used unpinned layers go. An image larger than the cache still
// runs, and its layers go once it is released.
//
// Registry credentials come from Auth, the one reader of them for the
// driver, the CLI and the gateway: per-registry username/password or a
// token (the driver's registry_auth), or a docker-style config.json (the
// driver's registry_auth_file; DockerConfig for the user's own, which may
// be missing); otherwise anonymous. Credential helpers are refused by name,
// not skipped. Plain HTTP is used only for loopback registries and those
// listed as insecure.
//
// It may import the standard library, go-containerregistry and
// klauspost/compress; nothing from the module (it is a leaf of driver/**).
package oci
