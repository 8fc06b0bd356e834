package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/api"
	"github.com/nimbus-fn/nimbus/gateway/versions"
	"github.com/nimbus-fn/nimbus/specs"
)

// The version commands (publish, versions, alias, layer) work on one of
// three stores, chosen in this order:
//
//  1. --nomad: Nomad Variables and jobs, edited directly;
//  2. --state-dir: the local store nimbus dev reads;
//  3. --endpoint: the gateway's Lambda management API;
//  4. NIMBUS_STATE_DIR: the local store;
//  5. NIMBUS_ENDPOINT: the management API;
//  6. otherwise the local store in ./.nimbus/state.
//
// Flags beat the environment, and a state dir beats an endpoint at the same
// level, so scripts that set both variables keep the local store.

// apiClient returns the management client when the command goes through
// the gateway, nil when it works on a store itself. It refuses flag
// combinations where a flag would do nothing.
func (f *stateFlags) apiClient(env *cliEnv) (*mgmtClient, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	ep := ""
	switch {
	case f.cluster:
		if set["endpoint"] && !f.endpointWithNomad {
			return nil, fmt.Errorf("--endpoint does nothing with --nomad here: give one of them")
		}
		return nil, nil
	case set["state-dir"]:
		if set["endpoint"] {
			return nil, fmt.Errorf("--state-dir and --endpoint name different version stores: give one of them")
		}
		return nil, nil
	case set["endpoint"]:
		ep = f.endpoint
	case env.getenv(envStateDir) != "":
		return nil, nil
	default:
		ep = env.getenv("NIMBUS_ENDPOINT")
	}
	if ep == "" {
		return nil, nil
	}
	if set["namespace"] {
		return nil, fmt.Errorf("--namespace is a Nomad namespace (with --nomad); through the gateway's API the gateway chooses it")
	}
	return newMgmtClient(env, ep)
}

// hexSHA turns Lambda's base64 CodeSha256 into the hex the CLI prints.
func hexSHA(b64 string) string {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return b64
	}
	return hex.EncodeToString(b)
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// parseLambdaTime reads Lambda's timestamps (LastModified, CreatedDate).
func parseLambdaTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// pages calls a list operation until its NextMarker runs out; each page's
// items are appended by decode.
func (c *mgmtClient) pages(ctx context.Context, path string, decode func([]byte) (string, error)) error {
	marker := ""
	for {
		p := path + "?MaxItems=50"
		if marker != "" {
			p += "&Marker=" + url.QueryEscape(marker)
		}
		var raw json.RawMessage
		if err := c.call(ctx, http.MethodGet, p, nil, &raw); err != nil {
			return err
		}
		next, err := decode(raw)
		if err != nil {
			return fmt.Errorf("decoding the gateway's answer: %w", err)
		}
		if next == "" {
			return nil
		}
		marker = next
	}
}

// versionOut is the part of a version's FunctionConfiguration the CLI reads.
type versionOut struct {
	Version      string
	CodeSha256   string
	Description  string
	LastModified string
}

// listVersions is ListVersionsByFunction without $LATEST.
func (c *mgmtClient) listVersions(ctx context.Context, fn string) ([]*versions.Version, error) {
	var out []*versions.Version
	err := c.pages(ctx, fnPath(fn)+"/versions", func(b []byte) (string, error) {
		var page struct {
			Versions   []versionOut
			NextMarker string
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return "", err
		}
		for _, v := range page.Versions {
			n, err := strconv.Atoi(v.Version)
			if err != nil {
				continue // $LATEST
			}
			out = append(out, &versions.Version{Function: fn, Number: n, CodeSHA256: hexSHA(v.CodeSha256),
				Description: v.Description, Created: parseLambdaTime(v.LastModified)})
		}
		return page.NextMarker, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ListVersionsByFunction: %w", err)
	}
	return out, nil
}

// aliasOut is an AliasConfiguration.
type aliasOut struct {
	Name            string
	FunctionVersion string
	Description     string
	RoutingConfig   *struct{ AdditionalVersionWeights map[string]float64 }
}

func (a *aliasOut) alias() *specs.Alias {
	s := &specs.Alias{Name: a.Name, Version: a.FunctionVersion, Description: a.Description}
	if a.RoutingConfig != nil && len(a.RoutingConfig.AdditionalVersionWeights) > 0 {
		s.Routing = a.RoutingConfig.AdditionalVersionWeights
	}
	return s
}

func (c *mgmtClient) listAliases(ctx context.Context, fn string) ([]*specs.Alias, error) {
	var out []*specs.Alias
	err := c.pages(ctx, fnPath(fn)+"/aliases", func(b []byte) (string, error) {
		var page struct {
			Aliases    []aliasOut
			NextMarker string
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return "", err
		}
		for i := range page.Aliases {
			out = append(out, page.Aliases[i].alias())
		}
		return page.NextMarker, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ListAliases: %w", err)
	}
	return out, nil
}

func aliasPath(fn, alias string) string { return fnPath(fn) + "/aliases/" + url.PathEscape(alias) }

// setAlias is CreateAlias, or UpdateAlias of an alias that exists: the
// alias becomes exactly a (its description and routing replaced, as the
// local store's SetAlias does).
func (c *mgmtClient) setAlias(ctx context.Context, fn string, a *specs.Alias) error {
	routing := a.Routing
	if routing == nil {
		routing = map[string]float64{}
	}
	body := map[string]any{"FunctionVersion": a.Version, "Description": a.Description,
		"RoutingConfig": map[string]any{"AdditionalVersionWeights": routing}}
	err := c.call(ctx, http.MethodGet, aliasPath(fn, a.Name), nil, nil)
	switch {
	case isCode(err, api.CodeResourceNotFound):
		body["Name"] = a.Name
		if err := c.call(ctx, http.MethodPost, fnPath(fn)+"/aliases", body, nil); err != nil {
			return fmt.Errorf("CreateAlias: %w", err)
		}
	case err != nil:
		return fmt.Errorf("GetAlias: %w", err)
	default:
		if err := c.call(ctx, http.MethodPut, aliasPath(fn, a.Name), body, nil); err != nil {
			return fmt.Errorf("UpdateAlias: %w", err)
		}
	}
	return nil
}

// publishAPI is nimbus publish through the gateway: PublishVersion of the
// function's $LATEST as the gateway has it, then the aliases $LATEST's
// spec declares.
func publishAPI(ctx context.Context, env *cliEnv, c *mgmtClient, fn, desc string) error {
	before, err := c.listVersions(ctx, fn)
	if err != nil {
		return err
	}
	var v versionOut
	if err := c.call(ctx, http.MethodPost, fnPath(fn)+"/versions", map[string]any{"Description": desc}, &v); err != nil {
		if isCode(err, api.CodeInvalidParameterValue) {
			return fmt.Errorf("PublishVersion: %w (the gateway publishes its own $LATEST; to build and publish this directory "+
				"into nimbus dev's local store, pass --state-dir)", err)
		}
		return fmt.Errorf("PublishVersion: %w", err)
	}
	sum := hexSHA(v.CodeSha256)
	if slices.ContainsFunc(before, func(b *versions.Version) bool { return b.Name() == v.Version }) {
		fmt.Fprintf(env.stdout, "%s: $LATEST is unchanged since version %s (code sha256:%s)\n", fn, v.Version, sum)
	} else {
		fmt.Fprintf(env.stdout, "published %s version %s (code sha256:%s)\n", fn, v.Version, sum)
	}
	var cur api.FunctionSpec
	if err := c.call(ctx, http.MethodGet, api.SpecPathPrefix+url.PathEscape(fn)+"/spec", nil, &cur); err != nil {
		return fmt.Errorf("GetFunctionSpec (for the aliases $LATEST declares): %w", err)
	}
	var spec specs.Function
	if err := json.Unmarshal(cur.Spec, &spec); err != nil {
		return fmt.Errorf("decoding $LATEST's spec: %w", err)
	}
	for _, a := range spec.Aliases {
		err := c.setAlias(ctx, fn, a)
		switch {
		case isCode(err, api.CodeResourceNotFound):
			fmt.Fprintf(env.stderr, "alias %s of %s: %v; not set until that version is published\n", a.Name, fn, err)
		case err != nil:
			return fmt.Errorf("alias %s declared in the spec: %w", a.Name, err)
		default:
			fmt.Fprintf(env.stdout, "alias %s -> %s\n", a.Name, describeAlias(a))
		}
	}
	return nil
}

// layerVersionOut is the part of a layer version the CLI reads.
type layerVersionOut struct {
	Version            int
	Description        string
	CreatedDate        string
	CompatibleRuntimes []string
	Content            *struct {
		CodeSha256 string
		CodeSize   int64
	}
}

// listLayerVersions is ListLayerVersions with each version's content
// (GetLayerVersion), oldest first.
func (c *mgmtClient) listLayerVersions(ctx context.Context, name string) ([]*versions.LayerVersion, error) {
	base := layerVersionsPath(name)
	list, err := c.layerVersionPages(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]*versions.LayerVersion, 0, len(list))
	for _, lv := range list {
		var full layerVersionOut
		if err := c.call(ctx, http.MethodGet, base+"/"+strconv.Itoa(lv.Version), nil, &full); err != nil {
			return nil, fmt.Errorf("GetLayerVersion %d: %w", lv.Version, err)
		}
		v := &versions.LayerVersion{Layer: name, Number: lv.Version, Description: lv.Description,
			CompatibleRuntimes: lv.CompatibleRuntimes, Created: parseLambdaTime(lv.CreatedDate)}
		if full.Content != nil {
			v.CodeSHA256, v.Size = hexSHA(full.Content.CodeSha256), full.Content.CodeSize
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *versions.LayerVersion) int { return a.Number - b.Number })
	return out, nil
}

func layerVersionsPath(name string) string {
	return "/2018-10-31/layers/" + url.PathEscape(name) + "/versions"
}

// layerVersionPages is ListLayerVersions (no content).
func (c *mgmtClient) layerVersionPages(ctx context.Context, name string) ([]layerVersionOut, error) {
	var list []layerVersionOut
	err := c.pages(ctx, layerVersionsPath(name), func(b []byte) (string, error) {
		var page struct {
			LayerVersions []layerVersionOut
			NextMarker    string
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return "", err
		}
		list = append(list, page.LayerVersions...)
		return page.NextMarker, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ListLayerVersions: %w", err)
	}
	return list, nil
}

// publishLayerAPI is PublishLayerVersion of a layer block's zipped code.
// Lambda makes a new version on every call, so the CLI stays idempotent
// itself: when the newest version has the same code, description and
// runtimes it publishes nothing.
func publishLayerAPI(ctx context.Context, env *cliEnv, c *mgmtClient, l *specs.Layer, data []byte, sum string, unzipped int64) error {
	before, err := c.layerVersionPages(ctx, l.Name)
	if err != nil {
		return err
	}
	if len(before) > 0 {
		newest := slices.MaxFunc(before, func(a, b layerVersionOut) int { return a.Version - b.Version })
		var full layerVersionOut
		if err := c.call(ctx, http.MethodGet, layerVersionsPath(l.Name)+"/"+strconv.Itoa(newest.Version), nil, &full); err != nil {
			return fmt.Errorf("GetLayerVersion %d: %w", newest.Version, err)
		}
		if full.Content != nil && hexSHA(full.Content.CodeSha256) == sum && full.Description == l.Description &&
			slices.Equal(full.CompatibleRuntimes, l.CompatibleRuntimes) {
			fmt.Fprintf(env.stdout, "layer %s is unchanged since version %d (sha256:%s)\n", l.Name, full.Version, sum)
			return nil
		}
	}
	var out layerVersionOut
	if err := c.call(ctx, http.MethodPost, layerVersionsPath(l.Name), map[string]any{
		"Content": map[string]any{"ZipFile": data}, "Description": l.Description, "CompatibleRuntimes": l.CompatibleRuntimes,
	}, &out); err != nil {
		return fmt.Errorf("PublishLayerVersion: %w", err)
	}
	fmt.Fprintf(env.stdout, "published layer %s version %d (sha256:%s, %.1f MB unzipped)\n", l.Name, out.Version, sum, mb(unzipped))
	return nil
}
