package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/specs"
)

// This file is the container-image half of the management API: Lambda's
// PackageType Image, Code.ImageUri and ImageConfig.

// Lambda's package types.
const (
	packageZip   = "Zip"
	packageImage = "Image"
)

// msgImageNoRuntime is Lambda's answer to Runtime, Handler or Layers on an
// image function.
const msgImageNoRuntime = "Please don't provide Handler or Runtime or Layer when the intended function PackageType is Image."

// imageConfig is Lambda's ImageConfig (requests) and the ImageConfig of
// ImageConfigResponse (answers).
type imageConfig struct {
	EntryPoint       []string `json:"EntryPoint,omitempty"`
	Command          []string `json:"Command,omitempty"`
	WorkingDirectory string   `json:"WorkingDirectory,omitempty"`
}

// spec is the spec's image_config for c; nil when c overrides nothing (an
// empty ImageConfig clears the overrides, as in Lambda).
func (c *imageConfig) spec() *specs.ImageConfig {
	if len(c.EntryPoint) == 0 && len(c.Command) == 0 && c.WorkingDirectory == "" {
		return nil
	}
	return &specs.ImageConfig{Entrypoint: c.EntryPoint, Command: c.Command, WorkingDirectory: c.WorkingDirectory}
}

// imageConfigResponse is Lambda's ImageConfigResponse.
type imageConfigResponse struct {
	ImageConfig *imageConfig `json:"ImageConfig,omitempty"`
}

// describeImage fills the image fields of a configuration from spec.
func describeImage(c *functionConfiguration, spec *specs.Function) {
	if !spec.IsImage() {
		return
	}
	c.PackageType = packageImage
	c.Runtime, c.Handler = "", ""
	if ic := spec.ImageConfig; ic != nil {
		c.ImageConfigResponse = &imageConfigResponse{ImageConfig: &imageConfig{
			EntryPoint: ic.Entrypoint, Command: ic.Command, WorkingDirectory: ic.WorkingDirectory,
		}}
	}
}

// resolveImage pins uri to its digest through the registry: the code of an
// image function and its CodeSha256 (the manifest digest, hex).
func (a *API) resolveImage(ctx context.Context, uri string) (*specs.Code, string, *apiError) {
	if a.opts.Manage.ResolveImage == nil {
		return nil, "", invalidParam("PackageType Image is not supported by this gateway: it has no image resolver configured")
	}
	pinned, err := a.opts.Manage.ResolveImage(ctx, uri)
	if err != nil {
		switch functions.ReasonCode(err) {
		case functions.ReasonImageDeleted:
			return nil, "", invalidParam("Source image " + uri + " does not exist. Provide a valid source image. (" + err.Error() + ")")
		case functions.ReasonImageAccessDenied:
			return nil, "", invalidParam("Nimbus does not have permission to access the image " + uri + ": the registry refused its credentials (" + err.Error() + ")")
		case functions.ReasonInvalidImage:
			return nil, "", invalidParam("Source image " + uri + " is not valid. Provide a valid source image. (" + err.Error() + ")")
		}
		return nil, "", serviceErr("resolving image "+uri, err)
	}
	_, digest, ok := strings.Cut(pinned, "@sha256:")
	if !ok || !specs.ImageDigestRE.MatchString(pinned) {
		return nil, "", serviceErr("resolving image "+uri, errString("the resolver answered "+pinned+", not a digest reference"))
	}
	return &specs.Code{Image: uri, ResolvedImage: pinned}, digest, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// updateImage is UpdateFunctionCode with ImageUri: the new image is
// resolved now and pinned in $LATEST (curSpec is the function's current
// $LATEST; cur is nil on a dry run of a function no API call wrote).
func (a *API) updateImage(c *manageCall, cur *functions.Function, curSpec *specs.Function, uri, revision string, publish, dryRun bool) (int, any, *apiError) {
	ctx := c.r.Context()
	if curSpec == nil {
		return 0, nil, a.functionNotFound(c.ref.Name, "")
	}
	probe := *curSpec
	probe.Code = &specs.Code{Image: uri}
	if _, e := canonicalize(&probe); e != nil {
		return 0, nil, e
	}
	code, sum, e := a.resolveImage(ctx, uri)
	if e != nil {
		return 0, nil, e
	}
	if dryRun {
		probe.Code = code
		return http.StatusOK, a.describe(ctx, c.ref.Name, catalog.Latest, &probe, cur), nil
	}
	f, e := a.updateStored(ctx, c.ref.Name, revision, true, func(f *functions.Function) *apiError {
		if !f.Spec.IsImage() {
			return invalidParam("Please don't provide ImageUri when updating a function with packageType Zip.")
		}
		f.Spec.Code = code
		f.CodeSHA256, f.CodeSize = sum, 0
		return nil
	})
	if e != nil {
		return 0, nil, e
	}
	if publish {
		v, e := a.publishStored(ctx, f, "", "")
		if e != nil {
			return 0, nil, e
		}
		return http.StatusOK, a.versionConfiguration(ctx, f, v), nil
	}
	return http.StatusOK, a.describe(ctx, f.Name, catalog.Latest, f.Spec, f), nil
}
