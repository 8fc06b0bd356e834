package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Errors a pull or a resolve wraps; ErrorType maps them to the names Lambda
// gives an image function's failed state.
var (
	// ErrInvalidReference: the reference does not parse.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrNotFound: the registry has no such repository, tag or digest.
	ErrNotFound = errors.New("image not found")
	// ErrAccessDenied: the registry refused the credentials (or their absence).
	ErrAccessDenied = errors.New("image access denied")
	// ErrInvalidImage: the image is unusable — a layer whose content does not
	// match its digest, a layer that is not a tar (or escapes its root), an
	// unsupported media type or platform.
	ErrInvalidImage = errors.New("invalid image")
	// ErrUnavailable: the registry could not be reached or failed.
	ErrUnavailable = errors.New("registry unavailable")
)

// Lambda's names for image failures (a function's StateReasonCode, and the
// errorType an invocation of such a function fails with).
const (
	ReasonImageDeleted      = "ImageDeleted"
	ReasonImageAccessDenied = "ImageAccessDenied"
	ReasonInvalidImage      = "InvalidImage"
)

// Reason is Lambda's name for err when the image itself is at fault:
// ImageDeleted for a missing repository, tag or digest, ImageAccessDenied
// for refused credentials, InvalidImage for a reference that does not
// parse or an unusable image. It is "" for errors that say nothing about
// the image (a registry that cannot be reached, a cancelled pull, an
// unreadable credentials file): those must not fail a function.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return ReasonImageDeleted
	case errors.Is(err, ErrAccessDenied):
		return ReasonImageAccessDenied
	case errors.Is(err, ErrInvalidImage), errors.Is(err, ErrInvalidReference):
		return ReasonInvalidImage
	}
	return ""
}

// ErrorType names err as Lambda does for an invocation that cannot run:
// Reason, else InvalidImage.
func ErrorType(err error) string {
	if r := Reason(err); r != "" {
		return r
	}
	return ReasonInvalidImage
}

// MaxLayers is the most layers an image may have: its root is its layers
// stacked with overlayfs, which takes at most 500 lower layers (the
// kernel's OVL_MAX_STACK; driver/sandbox.MaxRootLayers). A pull of an image
// with more is refused as ErrInvalidImage before any layer is fetched.
const MaxLayers = 500

// ImageConfig is the part of an image's config that starts it. User is
// reported, not applied: as on Lambda, every function runs as its
// environment's own unprivileged user whatever the image says.
type ImageConfig struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
}

// Image is a pulled image whose layers are unpacked in a Store.
type Image struct {
	// Ref is the digest-pinned reference it was pulled by (repo@sha256:…).
	Ref string
	// Digest is the manifest digest ("sha256:…").
	Digest string
	// Layers are the unpacked layer directories, bottom first. They are
	// read-only and in overlayfs form (see the package doc).
	Layers []string
	// Config is the image's start configuration.
	Config ImageConfig
	// Size is the bytes the layers take on disk.
	Size int64

	keys []string // the layers' cache keys

	mu   sync.Mutex
	pins []*os.File // nil once released
}

// Command is the argv an image function starts with under Lambda's
// ImageConfig rules: a non-empty entrypoint override replaces the image's
// ENTRYPOINT and a non-empty command override replaces its CMD, each on its
// own; the argv is the entrypoint followed by the command.
func Command(cfg ImageConfig, entrypoint, command []string) []string {
	ep, cmd := cfg.Entrypoint, cfg.Cmd
	if len(entrypoint) > 0 {
		ep = entrypoint
	}
	if len(command) > 0 {
		cmd = command
	}
	out := make([]string, 0, len(ep)+len(cmd))
	out = append(out, ep...)
	return append(out, cmd...)
}

// Resolve returns the digest-pinned form of ref (registry/repo@sha256:…)
// after asking the registry for it: a tag is resolved with a HEAD request
// (a GET where the registry does not answer HEAD), and a digest reference
// is checked the same way, so an image deleted after it was pushed is
// found when a function is deployed, not at its first invoke. ref must be
// spelled out (registry, repository and tag or digest: what the compiler
// pins in jobs), else ErrInvalidReference.
func Resolve(ctx context.Context, ref string, auth Auth) (string, error) {
	r, err := ParseReference(ref, auth)
	if err != nil {
		return "", err
	}
	opts, err := remoteOptions(ctx, r, auth)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(r, opts...)
	if err != nil {
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusMethodNotAllowed {
			return "", classify(ref, err)
		}
		got, gerr := remote.Get(r, opts...)
		if gerr != nil {
			return "", classify(ref, gerr)
		}
		desc = &got.Descriptor
	}
	if d, ok := r.(name.Digest); ok && d.DigestStr() != desc.Digest.String() {
		return "", fmt.Errorf("%w: %s: the registry answered digest %s", ErrInvalidImage, ref, desc.Digest)
	}
	return r.Context().Name() + "@" + desc.Digest.String(), nil
}

// ParseReference parses a fully spelled-out reference (no defaulted
// registry or tag) with the scheme auth allows for its registry: plain
// HTTP for loopback and insecure registries.
func ParseReference(ref string, auth Auth) (name.Reference, error) {
	return auth.parse(ref, true)
}

func remoteOptions(ctx context.Context, r name.Reference, auth Auth) ([]remote.Option, error) {
	a, err := auth.authenticator(r.Context().RegistryStr())
	if err != nil {
		return nil, err
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(a)}, nil
}

// classify wraps a registry error in the package's sentinel for it.
func classify(ref string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s: %v", ErrNotFound, ref, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %s: %v", ErrAccessDenied, ref, err)
		}
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%w: %s: %v", ErrNotFound, ref, err)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%w: %s: %v", ErrAccessDenied, ref, err)
			}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, ref, err)
}
