package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nimbus-fn/nimbus/bundle"
	"github.com/nimbus-fn/nimbus/bundle/build"
	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/specs"
)

// nomadOnlyFlags shape jobs nimbus deploy registers in Nomad itself; with
// --endpoint the gateway compiles the jobs, so they would do nothing.
var nomadOnlyFlags = []string{"version", "region", "namespace", "node-pool", "datacenter", "service-provider",
	"artifact-base-url", "bundle-dir", "secret-key-file", "rolling-updates", "connect"}

// refuseNomadOnlyFlags names the job flags set together with --endpoint.
func refuseNomadOnlyFlags(fs *flag.FlagSet) error {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		for _, n := range nomadOnlyFlags {
			if f.Name == n {
				set = append(set, "--"+n)
			}
		}
	})
	if len(set) > 0 {
		return fmt.Errorf("%s shape the jobs nimbus deploy registers in Nomad itself; with --endpoint the gateway compiles them "+
			"(say placement in the spec's placement block)", strings.Join(set, ", "))
	}
	return nil
}

// mgmtClient calls a gateway's Lambda management API, signed with SigV4
// as the SDK signs it.
type mgmtClient struct {
	base   string
	creds  aws.Credentials
	region string
	http   *http.Client
}

func newMgmtClient(env *cliEnv, endpoint string) (*mgmtClient, error) {
	lc := lambdaClient(env, endpoint)
	creds, err := lc.Options().Credentials.Retrieve(context.Background())
	if err != nil {
		return nil, fmt.Errorf("reading credentials: %w", err)
	}
	return &mgmtClient{base: strings.TrimRight(endpoint, "/"), creds: creds, region: lc.Options().Region, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// apiError is a Lambda error answer.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func isCode(err error, code string) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Code == code
}

// call sends body (JSON-encoded unless nil) and decodes the answer into out.
func (c *mgmtClient) call(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = b
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(payload)
	if err := v4.NewSigner().SignHTTP(ctx, c.creds, req, hex.EncodeToString(sum[:]), "lambda", c.region, time.Now()); err != nil {
		return fmt.Errorf("signing request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("asking the gateway: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the gateway's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode, Code: resp.Header.Get("X-Amzn-Errortype")}
		var m struct{ Message string }
		_ = json.Unmarshal(b, &m)
		e.Message = m.Message
		if e.Code == "" {
			e.Code = resp.Status
		}
		return e
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding the gateway's answer: %w", err)
		}
	}
	return nil
}

// fnConfig is the part of FunctionConfiguration deploy reads.
type fnConfig struct {
	CodeSha256                 string
	RevisionId                 string //nolint:revive // Lambda's name
	State                      string
	StateReason                string
	LastUpdateStatus           string
	LastUpdateStatusReason     string
	LastUpdateStatusReasonCode string
}

func fnPath(name string) string { return "/2015-03-31/functions/" + url.PathEscape(name) }

// deployThroughAPI is nimbus deploy --endpoint: every function of the specs
// at path is built and packaged here, then created or updated through the
// gateway's management API (one model: the gateway stores it and compiles
// its jobs). Nothing is sent until every function has built.
func deployThroughAPI(ctx context.Context, env *cliEnv, endpoint, path string, f *jobFlags) error {
	vars, err := flagVars(f)
	if err != nil {
		return err
	}
	file, diags := specs.Load(path, &specs.Options{Vars: vars, Env: env.getenv})
	if len(diags) > 0 {
		fmt.Fprint(env.stderr, specs.FormatDiagnostics(diags, nil))
	}
	if diags.HasErrors() || file == nil {
		return errReported
	}
	fns, err := selectFunctions(file, path, f.function)
	if err != nil {
		return err
	}
	cache, err := makeOwnedTempDir("", buildTempPrefix)
	if err != nil {
		return fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(cache)
	type pkg struct {
		fn   *specs.Function
		zip  []byte
		spec json.RawMessage
	}
	var pkgs []pkg
	for _, fn := range fns {
		z, err := packageForAPI(ctx, env, fn, build.Options{CacheDir: cache})
		if err != nil {
			return err
		}
		raw, err := specs.Encode(fn)
		if err != nil {
			return err
		}
		pkgs = append(pkgs, pkg{fn, z, raw})
	}
	c, err := newMgmtClient(env, endpoint)
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		if err := c.deployOne(ctx, env, p.fn, p.zip, p.spec); err != nil {
			return fmt.Errorf("%s: function %q: %w", p.fn.Pos, p.fn.Name, err)
		}
	}
	return nil
}

// packageForAPI builds fn's code dir (or reads its zip) into the zip the
// API takes.
func packageForAPI(ctx context.Context, env *cliEnv, fn *specs.Function, opts build.Options) ([]byte, error) {
	where := fmt.Sprintf("%s: function %q", fn.Pos, fn.Name)
	switch {
	case fn.Code == nil:
		return nil, fmt.Errorf("%s: no code", where)
	case fn.IsImage():
		return nil, nil // the gateway resolves and pins the image
	case fn.Code.URL != "":
		return nil, fmt.Errorf("%s: code { url } cannot go through --endpoint: the gateway stores the code it is sent; give code { dir } or code { zip }", where)
	case fn.Code.Zip != "":
		p := fn.Code.Zip
		if !filepath.IsAbs(p) {
			p = filepath.Join(fn.Dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: code: %w", where, err)
		}
		return b, nil
	}
	dir, err := functionCodeDir(fn)
	if err != nil {
		return nil, fmt.Errorf("%s: code: %w", where, err)
	}
	res, err := buildFunction(ctx, fn, dir, opts, env.stderr)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := bundle.Zip(res.Dir, &buf); err != nil {
		return nil, fmt.Errorf("%s: packaging %s: %w", where, res.Dir, err)
	}
	if buf.Len() > api.MaxZippedBytes {
		return nil, fmt.Errorf("%s: the zipped bundle is %.1f MB, more than the %d MB an upload may hold", where, mb(int64(buf.Len())), api.MaxZippedBytes>>20)
	}
	return buf.Bytes(), nil
}

// deployOne creates the function, or updates its code and configuration
// where they differ, and waits for the gateway to put it in service.
func (c *mgmtClient) deployOne(ctx context.Context, env *cliEnv, fn *specs.Function, zip []byte, spec json.RawMessage) error {
	sum := sha256.Sum256(zip)
	codeSHA := base64.StdEncoding.EncodeToString(sum[:])
	create := map[string]any{"FunctionName": fn.Name, "Code": map[string]any{"ZipFile": zip}, "Nimbus": map[string]any{"Spec": spec}}
	updateCode := map[string]any{"ZipFile": zip}
	if fn.IsImage() {
		create["PackageType"], create["Code"] = "Image", map[string]any{"ImageUri": fn.Code.Image}
		updateCode = map[string]any{"ImageUri": fn.Code.Image}
		codeSHA = fn.Code.Image
	}
	var got struct {
		Configuration fnConfig
		Code          struct{ ImageUri, ResolvedImageUri string } //nolint:revive // Lambda's names
	}
	err := c.call(ctx, http.MethodGet, fnPath(fn.Name), nil, &got)
	if isCode(err, api.CodeResourceNotFound) {
		var cfg fnConfig
		if err := c.call(ctx, http.MethodPost, "/2015-03-31/functions", create, &cfg); err != nil {
			return fmt.Errorf("CreateFunction: %w", err)
		}
		if err := c.waitInService(ctx, fn.Name); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "created function %s (code %s)\n", fn.Name, codeSHA)
		return nil
	}
	if err != nil {
		return fmt.Errorf("GetFunction: %w", err)
	}
	changed := false
	codeChanged := got.Configuration.CodeSha256 != codeSHA
	if fn.IsImage() {
		// A tag may have moved: the gateway resolves it again. A digest
		// that is already pinned is unchanged.
		codeChanged = !specs.ImageDigestRE.MatchString(fn.Code.Image) || got.Code.ImageUri != fn.Code.Image
	}
	if codeChanged {
		if err := c.call(ctx, http.MethodPut, fnPath(fn.Name)+"/code", updateCode, nil); err != nil {
			return fmt.Errorf("UpdateFunctionCode: %w", err)
		}
		if err := c.waitInService(ctx, fn.Name); err != nil {
			return err
		}
		changed = true
	}
	var cur api.FunctionSpec
	if err := c.call(ctx, http.MethodGet, api.SpecPathPrefix+url.PathEscape(fn.Name)+"/spec", nil, &cur); err != nil {
		return fmt.Errorf("GetFunctionSpec: %w", err)
	}
	same, err := sameConfiguration(cur.Spec, spec)
	if err != nil {
		return err
	}
	if !same {
		if err := c.call(ctx, http.MethodPut, fnPath(fn.Name)+"/configuration", map[string]any{"Nimbus": map[string]any{"Spec": spec}}, nil); err != nil {
			return fmt.Errorf("UpdateFunctionConfiguration: %w", err)
		}
		if err := c.waitInService(ctx, fn.Name); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		fmt.Fprintf(env.stdout, "updated function %s (code %s)\n", fn.Name, codeSHA)
	} else {
		fmt.Fprintf(env.stdout, "function %s unchanged\n", fn.Name)
	}
	return nil
}

// sameConfiguration compares two specs' configuration (code aside: the
// gateway's says where it stored the bundle, the local one where it was
// built from).
func sameConfiguration(a, b json.RawMessage) (bool, error) {
	norm := func(raw json.RawMessage) ([]byte, error) {
		var fn specs.Function
		if err := json.Unmarshal(raw, &fn); err != nil {
			return nil, fmt.Errorf("decoding a spec: %w", err)
		}
		fn.Code = nil
		return specs.Encode(&fn)
	}
	x, err := norm(a)
	if err != nil {
		return false, err
	}
	y, err := norm(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}

// deployWait bounds how long deploy waits for a function to be in service.
const deployWait = 5 * time.Minute

// waitInService polls GetFunction until the function is Active with no
// update in progress; a Failed state or update is an error with its reason.
func (c *mgmtClient) waitInService(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, deployWait)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var got struct{ Configuration fnConfig }
		if err := c.call(ctx, http.MethodGet, fnPath(name), nil, &got); err != nil {
			return fmt.Errorf("GetFunction: %w", err)
		}
		cfg := got.Configuration
		switch {
		case cfg.State == "Failed":
			return fmt.Errorf("the gateway could not put it in service: %s", cfg.StateReason)
		case cfg.LastUpdateStatus == "Failed":
			return fmt.Errorf("the update failed (the previous configuration keeps serving): %s", cfg.LastUpdateStatusReason)
		case cfg.State == "Active" && cfg.LastUpdateStatus != "InProgress":
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still %s / %s after %s", cfg.State, cfg.LastUpdateStatus, deployWait)
		case <-tick.C:
		}
	}
}
