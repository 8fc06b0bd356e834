package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/specs"
)

func init() {
	register("export", command{
		summary: "write a deployed function (one made through the API, too) as a spec and its code",
		run:     runExport,
	})
}

const (
	// exportSpecFile and exportCodeDir are what export writes inside DIR.
	exportSpecFile = "nimbus.hcl"
	exportCodeDir  = "code"
	// maxExportBundle bounds the zip export downloads: Lambda's limit on
	// unzipped code, which no zip of a valid bundle exceeds.
	maxExportBundle = bundle.DefaultMaxUnzippedBytes
)

func runExport(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "export", "FUNCTION\n\n"+
		"Writes DIR/"+exportSpecFile+" with the function's spec and unpacks its code into DIR/"+exportCodeDir+".\n"+
		"The spec's code is then code { dir = \""+exportCodeDir+"\" } with build { skip = true }: the code is\n"+
		"the bundle the gateway runs, already built.\n")
	endpoint := fs.String("endpoint", endpointFlagDefault(env), "gateway URL (env NIMBUS_ENDPOINT)")
	qualifier := fs.String("qualifier", "", "version or alias to export (default $LATEST)")
	out := fs.String("out", "", "directory to write (default ./FUNCTION)")
	force := fs.Bool("force", false, "write into a non-empty DIR: replaces DIR/"+exportSpecFile+" and DIR/"+exportCodeDir)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2}
	}
	name := fs.Arg(0)
	if !functions.ValidName(name) {
		return fmt.Errorf("%q is not a function name (letters, digits, hyphens and underscores; give a version or alias with --qualifier)", name)
	}
	dir := *out
	if dir == "" {
		dir = name
	}
	// Refuse before asking the gateway anything.
	if err := checkExportDir(dir, *force); err != nil {
		return err
	}

	u := strings.TrimRight(*endpoint, "/") + api.SpecPathPrefix + url.PathEscape(name) + "/spec"
	if *qualifier != "" {
		u += "?Qualifier=" + url.QueryEscape(*qualifier)
	}
	var got api.FunctionSpec
	if err := getSigned(ctx, env, u, &got); err != nil {
		return fmt.Errorf("reading the spec of %s: %w", name, err)
	}
	fn, err := specs.Decode(got.Spec)
	if err != nil {
		return fmt.Errorf("the gateway's spec of %s: %w", name, err)
	}
	hasCode := got.CodeSha256 != ""
	var zipPath string
	if hasCode {
		if got.CodeLocation == "" {
			return fmt.Errorf("the gateway gave %s's code sha256 but no location to download it from", name)
		}
		tmp, err := os.MkdirTemp("", "nimbus-export-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		zipPath = filepath.Join(tmp, "code.zip")
		if err := downloadVerified(ctx, got.CodeLocation, got.CodeSha256, zipPath); err != nil {
			return fmt.Errorf("downloading the code of %s: %w", name, err)
		}
	}

	// The gateway's code block names where it keeps the bundle; the
	// exported spec takes the code from the directory next to it.
	fn.Code = &specs.Code{Dir: exportCodeDir}
	fn.Build = nil
	if hasCode {
		fn.Build = &specs.Build{Skip: true}
	}
	src, err := specs.EncodeHCL(&specs.File{Functions: []*specs.Function{fn}})
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# Function %q, version %s, exported by nimbus export.\n", fn.Name, got.Version)
	if hasCode {
		header += "# code/ is the bundle the gateway ran (sha256 " + got.CodeSha256 + "), so it is not built again.\n"
	} else {
		header += "# The gateway keeps no bundle of this function: put its code in " + exportCodeDir + "/.\n"
	}
	src = specs.Format(append([]byte(header+"\n"), src...))

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	codeDir := filepath.Join(dir, exportCodeDir)
	if hasCode {
		if err := replaceWithZip(zipPath, codeDir); err != nil {
			return err
		}
	}
	specPath := filepath.Join(dir, exportSpecFile)
	if err := os.WriteFile(specPath, src, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "wrote %s (function %s, version %s)\n", specPath, fn.Name, got.Version)
	if hasCode {
		fmt.Fprintf(env.stdout, "wrote %s%c (code, sha256 %s)\n", codeDir, filepath.Separator, got.CodeSha256)
	} else {
		fmt.Fprintf(env.stdout, "no code: the gateway keeps no bundle of %s; supply its code in %s%c before running it\n", fn.Name, codeDir, filepath.Separator)
	}
	// The spec may name layers or destination functions that are not
	// exported with it; say so rather than leave a file that fails later.
	if f, diags := specs.Load(specPath, nil); f == nil {
		fmt.Fprintf(env.stderr, "warning: %s does not load on its own (it refers to what was not exported; declare it next to it):\n%s",
			specPath, specs.FormatDiagnostics(diags, nil))
	}
	return nil
}

// checkExportDir refuses a DIR that is a file, or a directory that holds
// anything, unless force is set.
func checkExportDir(dir string, force bool) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 && !force {
		return fmt.Errorf("%s is not empty; export into an empty or new directory (--out), or pass --force to replace %s and %s in it",
			dir, exportSpecFile, exportCodeDir)
	}
	return nil
}

// downloadVerified GETs u into dest and checks that its sha256 is sum (hex).
// No credentials go with it: the location may be any host.
func downloadVerified(ctx context.Context, u, sum, dest string) error {
	want, err := hex.DecodeString(sum)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("code sha256 %q is not a sha256 in hex", sum)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s answered %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, maxExportBundle+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return err
	case n > maxExportBundle:
		return fmt.Errorf("%s is larger than %d bytes", u, maxExportBundle)
	}
	if got := h.Sum(nil); hex.EncodeToString(got) != hex.EncodeToString(want) {
		return fmt.Errorf("%s has sha256 %x, not %s as the gateway said", u, got, strings.ToLower(sum))
	}
	return nil
}

// replaceWithZip unpacks zipPath into a fresh directory beside dest and
// then puts it in dest's place, so a failed extraction leaves dest as it was.
func replaceWithZip(zipPath, dest string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".nimbus-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := bundle.Extract(zipPath, tmp, bundle.Limits{}); err != nil {
		return err
	}
	if err := os.RemoveAll(dest); err != nil {
		return err
	}
	return os.Rename(tmp, dest)
}
