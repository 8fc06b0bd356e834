package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/nimbus-fn/nimbus/driver/oci"
	"github.com/nimbus-fn/nimbus/gateway/functions"
)

// Options configure a Resolver. The zero value uses the docker-style
// config and reaches only loopback registries over plain HTTP.
type Options struct {
	// Keychain supplies registry credentials. Default: DockerConfig(env)
	// with the process environment.
	Keychain authn.Keychain
	// Insecure lists registry hosts (host or host:port) reached over plain
	// HTTP besides loopback ones.
	Insecure []string
	// Transport is the HTTP transport. Default: http.DefaultTransport.
	Transport http.RoundTripper
}

// Resolver pins image references to digests.
type Resolver struct {
	opts Options
}

// NewResolver returns a Resolver with opts.
func NewResolver(opts Options) *Resolver {
	if opts.Keychain == nil {
		opts.Keychain = DockerConfig(os.Getenv)
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	return &Resolver{opts: opts}
}

// Parse parses ref as the resolver will reach it (plain HTTP for loopback
// and insecure registries).
func (r *Resolver) Parse(ref string) (name.Reference, error) {
	pr, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, functions.WithReason(functions.ReasonInvalidImage, fmt.Errorf("image reference %q: %w", ref, err))
	}
	if r.insecure(pr.Context().RegistryStr()) {
		pr, err = name.ParseReference(ref, name.StrictValidation, name.Insecure)
		if err != nil {
			return nil, functions.WithReason(functions.ReasonInvalidImage, fmt.Errorf("image reference %q: %w", ref, err))
		}
	}
	return pr, nil
}

// RemoteOptions are the go-containerregistry options that reach ref's
// registry with the resolver's credentials (nimbus build --push uses them).
func (r *Resolver) RemoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(r.opts.Keychain), remote.WithTransport(r.opts.Transport)}
}

func (r *Resolver) insecure(registry string) bool {
	return oci.PlainHTTP(registry, r.opts.Insecure)
}

// Resolve returns ref pinned to its manifest digest,
// "registry/repo@sha256:<hex>", after asking the registry for it.
func (r *Resolver) Resolve(ctx context.Context, ref string) (string, error) {
	pr, err := r.Parse(ref)
	if err != nil {
		return "", err
	}
	opts := r.RemoteOptions(ctx)
	desc, err := remote.Head(pr, opts...)
	if err != nil {
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusMethodNotAllowed {
			return "", classify(ref, err)
		}
		got, gerr := remote.Get(pr, opts...)
		if gerr != nil {
			return "", classify(ref, gerr)
		}
		desc = &got.Descriptor
	}
	if d, ok := pr.(name.Digest); ok && d.DigestStr() != desc.Digest.String() {
		return "", functions.WithReason(functions.ReasonInvalidImage, fmt.Errorf("image %s: the registry answered digest %s", ref, desc.Digest))
	}
	return pr.Context().Name() + "@" + desc.Digest.String(), nil
}

// classify names a registry error with Lambda's reason code.
func classify(ref string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return functions.WithReason(functions.ReasonImageDeleted, fmt.Errorf("image %s not found: %w", ref, err))
		case http.StatusUnauthorized, http.StatusForbidden:
			return functions.WithReason(functions.ReasonImageAccessDenied, fmt.Errorf("image %s: access denied: %w", ref, err))
		}
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
				return functions.WithReason(functions.ReasonImageDeleted, fmt.Errorf("image %s not found: %w", ref, err))
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return functions.WithReason(functions.ReasonImageAccessDenied, fmt.Errorf("image %s: access denied: %w", ref, err))
			}
		}
	}
	return fmt.Errorf("resolving image %s: %w", ref, err)
}
