package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TaskRoot is where the code layer puts the function's code (Lambda's
// LAMBDA_TASK_ROOT).
const TaskRoot = "/var/task"

// Options say what to build.
type Options struct {
	// CodeDir is the function's built code directory. Required.
	CodeDir string
	// Runtime is the function's runtime ("provided.al2023", "python3.12",
	// "nodejs22.x", …). Required.
	Runtime string
	// Handler is the handler for python and node ("app.handler"); the
	// image's CMD.
	Handler string
	// Base is the base image; nil means an empty image, allowed only for
	// provided runtimes.
	Base v1.Image
}

// ErrNeedsBase: a python or node function needs a base image with its
// interpreter.
var ErrNeedsBase = errors.New("needs a base image")

// Build returns the function's image: Base plus the code layer, configured
// by Lambda's conventions (see the package doc).
func Build(opts Options) (v1.Image, error) {
	provided := strings.HasPrefix(opts.Runtime, "provided")
	switch {
	case opts.CodeDir == "":
		return nil, errors.New("code directory is required")
	case opts.Runtime == "":
		return nil, errors.New("runtime is required")
	case !provided && opts.Base == nil:
		return nil, fmt.Errorf("runtime %s %w that carries the interpreter and a runtime interface client, such as public.ecr.aws/lambda/%s (pass --base)", opts.Runtime, ErrNeedsBase, baseHint(opts.Runtime))
	case !provided && opts.Handler == "":
		return nil, fmt.Errorf("runtime %s needs a handler (the image's CMD)", opts.Runtime)
	}
	if provided {
		if st, err := os.Stat(filepath.Join(opts.CodeDir, "bootstrap")); err != nil || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("runtime %s: %s has no executable bootstrap for the entrypoint", opts.Runtime, opts.CodeDir)
		}
	}
	layerBytes, err := codeLayer(opts.CodeDir)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("code layer: %w", err)
	}
	base := opts.Base
	if base == nil {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: layerMediaType(base),
		History:   v1.History{CreatedBy: "nimbus build --image", Comment: "function code at " + TaskRoot},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the code layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	cf = cf.DeepCopy()
	if cf.OS == "" {
		cf.OS, cf.Architecture = "linux", "amd64"
	}
	cfg := cf.Config
	cfg.WorkingDir = TaskRoot
	cfg.Env = setEnv(cfg.Env, "LAMBDA_TASK_ROOT", TaskRoot)
	if provided {
		cfg.Entrypoint = []string{TaskRoot + "/bootstrap"}
		cfg.Cmd = nil
	} else {
		cfg.Cmd = []string{opts.Handler}
	}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// layerMediaType is the code layer's media type: OCI unless the base is a
// Docker schema 2 image (a manifest mixes no media type families).
func layerMediaType(base v1.Image) types.MediaType {
	if mt, err := base.MediaType(); err == nil && mt == types.DockerManifestSchema2 {
		return types.DockerLayer
	}
	return types.OCILayer
}

func baseHint(runtime string) string {
	if v, ok := strings.CutPrefix(runtime, "python"); ok {
		return "python:" + v
	}
	if v, ok := strings.CutPrefix(runtime, "nodejs"); ok {
		return "nodejs:" + strings.TrimSuffix(v, ".x")
	}
	return runtime
}

func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, key+"=") {
			out = append(out, e)
		}
	}
	return append(out, key+"="+value)
}

// codeLayer is the uncompressed tar of dir under var/task, reproducible.
func codeLayer(dir string) ([]byte, error) {
	type entry struct {
		rel  string
		mode fs.FileMode
	}
	var entries []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode().IsDir(), info.Mode().IsRegular():
		default:
			return fmt.Errorf("%s is not a regular file or directory (symlinks and special files are not packaged)", p)
		}
		entries = append(entries, entry{filepath.ToSlash(rel), info.Mode()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the code directory: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].rel < entries[j].rel })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirHeader := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, Format: tar.FormatPAX})
	}
	for _, d := range []string{"var", "var/task"} {
		if err := dirHeader(d); err != nil {
			return nil, err
		}
	}
	for _, e := range entries {
		name := "var/task/" + e.rel
		if e.mode.IsDir() {
			if err := dirHeader(name); err != nil {
				return nil, err
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.rel)))
		if err != nil {
			return nil, fmt.Errorf("reading the code directory: %w", err)
		}
		mode := int64(0o644)
		if e.mode&0o111 != 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
