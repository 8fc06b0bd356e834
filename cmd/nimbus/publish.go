package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/bundle/build"
	"github.com/nimbus-fn/nimbus/gateway/artifacts"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/jobs"
	"github.com/nimbus-fn/nimbus/jobs/submit"
	"github.com/nimbus-fn/nimbus/specs"
)

// Lambda's package limits, enforced when publishing.
const (
	// maxZippedBytes is the largest bundle one upload takes (zipped).
	maxZippedBytes = 50 << 20
	// maxUnzippedBytes bounds a function's code and all its layers unzipped.
	maxUnzippedBytes = 250 << 20
)

func init() {
	register("publish", command{
		summary: "publish $LATEST of a function as an immutable numbered version",
		run:     runPublish,
	})
}

func runPublish(ctx context.Context, env *cliEnv, args []string) error {
	fs, sf := newStoreFlagsWith(env, "publish", "FUNCTION [spec file or dir]",
		"the gateway serving layer bundles when $LATEST's job does not say. Through the API, publish snapshots "+
			"$LATEST as the gateway has it (deploy first: nimbus deploy --endpoint), not this directory")
	desc := fs.String("description", "", "description of the version")
	secretFile := fs.String("secret-key-file", "", "with --nomad: the cluster key invoke secrets derive from (env "+envSecretKey+")")
	pos, err := positional(fs, args, 1, 2)
	if err != nil {
		return err
	}
	fn := pos[0]
	if c, err := sf.apiClient(env); err != nil {
		return err
	} else if c != nil {
		switch {
		case len(pos) == 2:
			return fmt.Errorf("through the gateway's API publish snapshots the gateway's $LATEST of %s, not specs at %s: "+
				"deploy them first (nimbus deploy --endpoint), or pass --state-dir to publish them into the local store", fn, pos[1])
		case *secretFile != "":
			return fmt.Errorf("--secret-key-file is for --nomad: through the API the gateway derives invoke secrets itself")
		}
		return publishAPI(ctx, env, c, fn, *desc)
	}
	st, err := sf.open(env)
	if err != nil {
		return err
	}
	var v *versions.Version
	var created bool
	var spec *specs.Function
	if st.nomad != nil {
		gw := sf.endpoint
		if gw == "" {
			gw = env.getenv("NIMBUS_ENDPOINT")
		}
		v, created, spec, err = publishCluster(ctx, env, st, fn, *desc, *secretFile, gw)
	} else {
		path := "."
		if len(pos) == 2 {
			path = pos[1]
		}
		v, created, spec, err = publishLocal(ctx, env, st, sf.dir, fn, path, *desc)
	}
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(env.stdout, "published %s version %d (code sha256:%s)\n", fn, v.Number, v.CodeSHA256)
	} else {
		fmt.Fprintf(env.stdout, "%s: $LATEST is unchanged since version %d (code sha256:%s)\n", fn, v.Number, v.CodeSHA256)
	}
	return applySpecAliases(ctx, env, st.store, fn, spec.Aliases)
}

// applySpecAliases sets the aliases a spec declares whose versions exist;
// the others wait for a later publish.
func applySpecAliases(ctx context.Context, env *cliEnv, store *versions.Store, fn string, aliases []*specs.Alias) error {
	for _, a := range aliases {
		err := store.SetAlias(ctx, fn, a)
		switch {
		case errors.Is(err, versions.ErrNotFound):
			fmt.Fprintf(env.stderr, "alias %s of %s: %v; not set until that version is published\n", a.Name, fn, err)
		case err != nil:
			return fmt.Errorf("alias %s declared in the spec: %w", a.Name, err)
		default:
			fmt.Fprintf(env.stdout, "alias %s -> %s\n", a.Name, describeAlias(a))
		}
	}
	return nil
}

func describeAlias(a *specs.Alias) string {
	s := a.Version
	for v, w := range a.Routing {
		s += fmt.Sprintf(" (%g%% to %s)", w*100, v)
	}
	return s
}

// packCode zips code from a spec's dir or zip and returns the bytes, their
// sha256 and the unzipped size, within Lambda's limits.
func packCode(code *specs.Code, specDir, what string) ([]byte, string, int64, error) {
	if code == nil || (code.Dir == "" && code.Zip == "") {
		return nil, "", 0, fmt.Errorf("%s: local publishing needs code { dir } or code { zip }", what)
	}
	src := code.Dir
	if src == "" {
		src = code.Zip
	}
	if !filepath.IsAbs(src) {
		src = filepath.Join(specDir, src)
	}
	var data []byte
	if code.Dir != "" {
		var buf bytes.Buffer
		if _, err := bundle.Zip(src, &buf); err != nil {
			return nil, "", 0, fmt.Errorf("%s: packaging %s: %w", what, src, err)
		}
		data = buf.Bytes()
	} else {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, "", 0, fmt.Errorf("%s: %w", what, err)
		}
		data = b
	}
	if len(data) > maxZippedBytes {
		return nil, "", 0, fmt.Errorf("%s: the zipped bundle is %.1f MB, more than the %d MB an upload may hold", what, mb(int64(len(data))), maxZippedBytes>>20)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, "", 0, fmt.Errorf("%s: %s is not a readable zip: %w", what, src, err)
	}
	var unzipped int64
	for _, f := range zr.File {
		unzipped += int64(f.UncompressedSize64)
	}
	if unzipped > maxUnzippedBytes {
		return nil, "", 0, fmt.Errorf("%s: unzips to %.1f MB, more than Lambda's %d MB for code and layers", what, mb(unzipped), maxUnzippedBytes>>20)
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:]), unzipped, nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// saveLocal keeps a bundle in the state dir and unpacks it once (zip-slip
// safe, bounded) into unpacked/<sha256>, the directory dev mode runs.
func saveLocal(local *versions.Local, stateDir, sum string, data []byte) (string, error) {
	dst := local.UnpackedDir(sum)
	if _, err := os.Stat(dst); err == nil {
		return filepath.Abs(dst)
	}
	bdir := filepath.Join(stateDir, "bundles")
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", bdir, err)
	}
	zipPath := filepath.Join(bdir, sum+".zip")
	if err := os.WriteFile(zipPath, data, 0o644); err != nil {
		return "", fmt.Errorf("saving bundle: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".extract-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := bundle.Extract(zipPath, tmp, bundle.Limits{MaxUnzippedBytes: maxUnzippedBytes}); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(dst); serr != nil {
			return "", fmt.Errorf("unpacking bundle: %w", err)
		}
	}
	return filepath.Abs(dst)
}

// pinLayers resolves a spec's layer references to exact versions and
// checks the unzipped total against Lambda's limit.
func pinLayers(ctx context.Context, store *versions.Store, fn *specs.Function, codeUnzipped int64) ([]*versions.LayerVersion, []string, error) {
	lvs, err := store.ResolveLayers(ctx, fn.Runtime, fn.Layers)
	if err != nil {
		return nil, nil, fmt.Errorf("function %s layers: %w", fn.Name, err)
	}
	total := codeUnzipped
	pinned := make([]string, len(lvs))
	for i, lv := range lvs {
		total += lv.Size
		pinned[i] = lv.Layer + ":" + strconv.Itoa(lv.Number)
	}
	if total > maxUnzippedBytes {
		return nil, nil, fmt.Errorf("function %s: code and %d layers unzip to %.1f MB, more than Lambda's %d MB", fn.Name, len(lvs), mb(total), maxUnzippedBytes>>20)
	}
	return lvs, pinned, nil
}

// loadSpecs loads and validates the specs at path, printing diagnostics.
func loadSpecs(env *cliEnv, path string) (*specs.File, error) {
	file, diags := specs.Load(path, &specs.Options{Env: env.getenv})
	if len(diags) > 0 {
		fmt.Fprint(env.stderr, specs.FormatDiagnostics(diags, nil))
	}
	if diags.HasErrors() || file == nil {
		return nil, errReported
	}
	return file, nil
}

// artifactClient uploads to a gateway's artifact store, signing with the
// same keys and region as the Lambda client (lambdaClient).
func artifactClient(env *cliEnv, endpoint string) *artifacts.Client {
	get := func(k, def string) string {
		if v := env.getenv(k); v != "" {
			return v
		}
		return def
	}
	region := get("AWS_REGION", get("AWS_DEFAULT_REGION", "us-east-1"))
	creds := aws.Credentials{
		AccessKeyID:     get("AWS_ACCESS_KEY_ID", "nimbus-dev"),
		SecretAccessKey: get("AWS_SECRET_ACCESS_KEY", "nimbus-dev"),
		SessionToken:    env.getenv("AWS_SESSION_TOKEN"),
	}
	return &artifacts.Client{
		BaseURL: endpoint,
		Sign: func(ctx context.Context, r *http.Request, payload string) error {
			return v4.NewSigner().SignHTTP(ctx, creds, r, payload, "lambda", region, time.Now())
		},
	}
}

// publishLocal snapshots the function as the specs at path declare it.
func publishLocal(ctx context.Context, env *cliEnv, st *state, stateDir, fn, path, desc string) (*versions.Version, bool, *specs.Function, error) {
	file, err := loadSpecs(env, path)
	if err != nil {
		return nil, false, nil, err
	}
	spec := file.Function(fn)
	if spec == nil {
		return nil, false, nil, fmt.Errorf("%s: no function %q", path, fn)
	}
	code := spec.Code
	if dir, err := functionCodeDir(spec); err != nil {
		return nil, false, nil, err
	} else if dir != "" {
		// The version holds what deploy would package, the build's output,
		// built for this machine: local versions run under nimbus dev.
		cache, err := makeOwnedTempDir("", buildTempPrefix)
		if err != nil {
			return nil, false, nil, fmt.Errorf("creating a build directory: %w", err)
		}
		defer os.RemoveAll(cache)
		res, err := buildFunction(ctx, spec, dir, build.Options{CacheDir: cache, GOOS: runtime.GOOS}, env.stderr)
		if err != nil {
			return nil, false, nil, err
		}
		code = &specs.Code{Dir: res.Dir}
	}
	data, sum, unzipped, err := packCode(code, spec.Dir, "function "+fn+" code")
	if err != nil {
		return nil, false, nil, err
	}
	_, pinned, err := pinLayers(ctx, st.store, spec, unzipped)
	if err != nil {
		return nil, false, nil, err
	}
	dir, err := saveLocal(st.local, stateDir, sum, data)
	if err != nil {
		return nil, false, nil, err
	}
	snap := *spec
	snap.Code = &specs.Code{Dir: dir, Checksum: "sha256:" + sum}
	snap.Build = nil // the version's code is built already
	snap.Layers = pinned
	v, created, err := st.store.Publish(ctx, fn, versions.Snapshot{Spec: &snap, CodeSHA256: sum, Description: desc})
	return v, created, spec, err
}

// publishCluster snapshots the deployed $LATEST job (its canonical spec and
// code checksum in job meta) and registers the version's own job.
func publishCluster(ctx context.Context, env *cliEnv, st *state, fn, desc, secretFile, endpoint string) (*versions.Version, bool, *specs.Function, error) {
	key, err := secretKey(env, secretFile)
	if err != nil {
		return nil, false, nil, err
	}
	latestID := "nimbus-" + fn
	q := (&api.QueryOptions{Namespace: st.ns}).WithContext(ctx)
	latest, _, err := st.nomad.Jobs().Info(latestID, q)
	if err != nil {
		return nil, false, nil, fmt.Errorf("reading $LATEST job %s (deploy it first): %w", latestID, err)
	}
	spec, err := specs.Decode([]byte(latest.Meta[jobs.MetaSpec]))
	if err != nil {
		return nil, false, nil, fmt.Errorf("job %s meta %s: %w", latestID, jobs.MetaSpec, err)
	}
	sum := latest.Meta[jobs.MetaCodeSHA256]
	opts, err := optionsFromJob(latest, sum)
	if err != nil {
		return nil, false, nil, err
	}
	lvs, pinned, err := pinLayers(ctx, st.store, spec, 0)
	if err != nil {
		return nil, false, nil, err
	}
	if len(lvs) > 0 && opts.ArtifactBaseURL == "" {
		if endpoint == "" {
			return nil, false, nil, fmt.Errorf("function %s uses layers, which come from the artifact store: pass --endpoint (or NIMBUS_ENDPOINT) naming the gateway", fn)
		}
		opts.ArtifactBaseURL = strings.TrimRight(endpoint, "/") + strings.TrimRight(artifacts.Path, "/")
	}
	for _, lv := range lvs {
		opts.LayerArtifacts = append(opts.LayerArtifacts, jobs.Artifact{Source: opts.ArtifactBaseURL + "/" + lv.CodeSHA256 + ".zip", Checksum: "sha256:" + lv.CodeSHA256})
	}
	snap := *spec
	snap.Layers = pinned
	v, created, err := st.store.Publish(ctx, fn, versions.Snapshot{Spec: &snap, CodeSHA256: sum, Description: desc})
	if err != nil {
		return nil, false, nil, err
	}
	// The version's job is immutable: register it only when it is missing
	// (a publish whose registration failed is completed by the next one).
	id := versionJobID(fn, v.Number)
	if _, _, err := st.nomad.Jobs().Info(id, q); err == nil {
		return v, created, spec, nil
	}
	opts.Version = strconv.Itoa(v.Number)
	job, err := jobs.Compile(v.Spec, opts)
	if err != nil {
		return nil, false, nil, fmt.Errorf("compiling version %d: %w", v.Number, err)
	}
	secrets, err := jobs.InvokeVariable(job, key)
	if err != nil {
		return nil, false, nil, fmt.Errorf("version %d: %w", v.Number, err)
	}
	res, err := submit.New(st.nomad.Jobs(), st.nomad.Variables(), hclog.NewNullLogger()).Register(ctx, job, secrets)
	if err != nil {
		return nil, false, nil, fmt.Errorf("version %d recorded, registering its job: %w", v.Number, err)
	}
	fmt.Fprintf(env.stdout, "registered job %s (eval %s)\n", res.JobID, res.EvalID)
	return v, created, spec, nil
}

// optionsFromJob recovers the compile options $LATEST was deployed with:
// placement from the job, the artifact base URL and service provider from
// its task and service.
func optionsFromJob(job *api.Job, sum string) (jobs.Options, error) {
	opts := jobs.Options{Datacenters: job.Datacenters}
	if job.Region != nil {
		opts.Region = *job.Region
	}
	if job.Namespace != nil {
		opts.Namespace = *job.Namespace
	}
	if job.NodePool != nil {
		opts.NodePool = *job.NodePool
	}
	if sum != "" {
		opts.CodeChecksum = "sha256:" + sum
	}
	for _, g := range job.TaskGroups {
		for _, s := range g.Services {
			if s.Provider != "" {
				opts.ServiceProvider = s.Provider
			}
		}
		for _, t := range g.Tasks {
			if b := jobs.Bundles(t); len(b) > 0 && sum != "" && b[0].Checksum == "sha256:"+sum {
				if base, ok := strings.CutSuffix(b[0].Source, "/"+sum+".zip"); ok {
					opts.ArtifactBaseURL = base
				}
			}
		}
	}
	return opts, nil
}
