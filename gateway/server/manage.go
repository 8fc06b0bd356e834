package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// ManageDeps turn on the management API's writes.
type ManageDeps struct {
	// Functions and Versions are the stores (on the same backend as the
	// mappings). Required.
	Functions *functions.Store
	Versions  *versions.Store
	// UnpackDir says where dev mode unpacks a bundle: functions created
	// through the API run from there. Nil (a cluster): a function's code
	// is the artifact store's URL, under ArtifactBaseURL.
	UnpackDir func(sha256 string) string
	// ArtifactBaseURL is the artifact store's address as Nomad clients
	// reach it (cluster mode), ending in artifacts.Path.
	ArtifactBaseURL func() string
	// Declared reports where a function is declared outside the API.
	Declared func(name string) string
	// Applied is told about every write (the controller's Kick).
	Applied func()
	// Changed runs after every write, before the answer.
	Changed func(ctx context.Context)
	// Remove takes a deleted function's versions out of service.
	Remove func(ctx context.Context, name string, versions []string) error
	// Provisioned reports a version's ready provisioned environments
	// (api.Management.Provisioned); nil refuses provisioned configs.
	Provisioned func(ctx context.Context, function, version string) (ready int, err error)
	// ResolveImage pins image references for image functions
	// (api.Management.ResolveImage); nil refuses PackageType Image.
	ResolveImage func(ctx context.Context, ref string) (string, error)
}

// bundleCode is the gateway's api.CodeStore: bundles go to the artifact
// store (GetFunction's Code.Location serves them) and, in dev mode, are
// unpacked where instances run them.
type bundleCode struct {
	s *Server
	d *ManageDeps
}

var _ api.CodeStore = (*bundleCode)(nil)

// Put implements api.CodeStore.
func (c *bundleCode) Put(ctx context.Context, sum string, data []byte) (*specs.Code, error) {
	if c.s.artifacts == nil {
		return nil, errors.New("the artifact store is not open yet")
	}
	if err := c.s.artifacts.Check(sum, data); err != nil {
		if errors.Is(err, artifacts.ErrCorrupt) || errors.Is(err, artifacts.ErrUnsafeEntry) || errors.Is(err, artifacts.ErrTooLarge) {
			return nil, fmt.Errorf("%w: %v", api.ErrBadZip, err)
		}
		return nil, err
	}
	if _, _, err := c.s.artifacts.Put(ctx, sum, data); err != nil {
		return nil, err
	}
	code := &specs.Code{Checksum: "sha256:" + sum}
	if c.d.UnpackDir == nil {
		code.URL = c.d.ArtifactBaseURL() + sum + ".zip"
		return code, nil
	}
	dir, err := unpack(c.d.UnpackDir(sum), data)
	if err != nil {
		return nil, err
	}
	code.Dir = dir
	return code, nil
}

// unpack extracts a bundle once into dst (zip-slip safe and bounded by
// Lambda's unzipped limit), through a temporary sibling renamed into place.
func unpack(dst string, data []byte) (string, error) {
	if _, err := os.Stat(dst); err == nil {
		return filepath.Abs(dst)
	}
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(parent, ".extract-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	zipPath := filepath.Join(tmp, "bundle.zip")
	if err := os.WriteFile(zipPath, data, 0o600); err != nil {
		return "", err
	}
	root := filepath.Join(tmp, "root")
	if err := bundle.Extract(zipPath, root, bundle.Limits{MaxUnzippedBytes: api.MaxUnzippedBytes}); err != nil {
		if errors.Is(err, bundle.ErrTooLarge) || errors.Is(err, bundle.ErrUnsafePath) {
			return "", fmt.Errorf("%w: %v", api.ErrBadZip, err)
		}
		return "", err
	}
	if err := os.Rename(root, dst); err != nil {
		if _, serr := os.Stat(dst); serr != nil {
			return "", fmt.Errorf("unpacking bundle: %w", err)
		}
	}
	return filepath.Abs(dst)
}
