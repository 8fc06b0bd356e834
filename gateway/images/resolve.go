package images

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/functions"
)

// Resolver pins image references to digests with driver/oci's Resolve
// and names its failures with Lambda's reason codes.
type Resolver struct {
	auth oci.Auth
}

// NewResolver returns a Resolver reaching registries with auth (usually
// oci.DockerConfig of the process's environment, plus insecure registries).
func NewResolver(auth oci.Auth) *Resolver {
	return &Resolver{auth: auth}
}

// Parse parses ref as the resolver will reach it (plain HTTP for loopback
// and insecure registries); a reference that does not parse is
// InvalidImage.
func (r *Resolver) Parse(ref string) (name.Reference, error) {
	pr, err := oci.ParseReference(ref, r.auth)
	return pr, withReason(err)
}

// RemoteOptions are the go-containerregistry options that reach a
// registry with the resolver's credentials (nimbus build --push and --base
// use them).
func (r *Resolver) RemoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(r.auth)}
}

// Resolve returns ref pinned to its manifest digest,
// "registry/repo@sha256:<hex>", after asking the registry for it (a digest
// reference too).
func (r *Resolver) Resolve(ctx context.Context, ref string) (string, error) {
	pinned, err := oci.Resolve(ctx, ref, r.auth)
	return pinned, withReason(err)
}

// withReason carries err's Lambda reason code (oci.Reason) for the
// controller and the API; a failure that is not the image's carries none.
func withReason(err error) error {
	if err == nil {
		return nil
	}
	if code := oci.Reason(err); code != "" {
		return functions.WithReason(code, err)
	}
	return err
}
