package versions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/nimbus-fn/nimbus/specs"
)

// Errors the Store returns (besides the backend's ErrNotFound).
var (
	// ErrVersionInUse: an alias points at the version.
	ErrVersionInUse = errors.New("version in use by an alias")
	// ErrInvalid: a bad name, number, checksum or alias definition.
	ErrInvalid = errors.New("invalid request")
	// ErrExists: a create-only alias write found the alias there.
	ErrExists = errors.New("already exists")
	// ErrPrecondition: the alias's revision is not the one the caller named.
	ErrPrecondition = errors.New("revision id does not match")
)

// Limits Lambda applies and the store enforces.
const (
	// MaxLayers is the most layers one function may use.
	MaxLayers = 5
	// maxCASRetries bounds the retries of a contended publish.
	maxCASRetries = 20
)

// Prefix is where everything lives (Nomad Variables path prefix).
const Prefix = "nimbus/"

var (
	// pathRE is Nomad's rule for Variable paths, kept by every backend so
	// local and cluster stores accept the same names.
	pathRE   = regexp.MustCompile(`^[a-zA-Z0-9-_~/]{1,128}$`)
	nameRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	aliasRE  = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Version is one published function version.
type Version struct {
	Function    string          `json:"function"`
	Number      int             `json:"version"`
	Description string          `json:"description,omitempty"`
	CodeSHA256  string          `json:"code_sha256"`
	ConfigHash  string          `json:"config_sha256"`
	Spec        *specs.Function `json:"spec"`
	Created     time.Time       `json:"created"`
}

// Name is the version as a qualifier ("3").
func (v *Version) Name() string { return strconv.Itoa(v.Number) }

// Snapshot is what Publish freezes: $LATEST's spec and its code checksum.
type Snapshot struct {
	// Spec is $LATEST's canonical spec (copied; later edits do not reach it).
	Spec *specs.Function
	// CodeSHA256 is the code bundle's sha256 (hex).
	CodeSHA256 string
	// Description of the version (Lambda's PublishVersion Description).
	Description string
}

// LayerVersion is one published layer version.
type LayerVersion struct {
	Layer                   string    `json:"layer"`
	Number                  int       `json:"version"`
	Description             string    `json:"description,omitempty"`
	CodeSHA256              string    `json:"code_sha256"`
	Size                    int64     `json:"size"`
	CompatibleRuntimes      []string  `json:"compatible_runtimes,omitempty"`
	CompatibleArchitectures []string  `json:"compatible_architectures,omitempty"`
	LicenseInfo             string    `json:"license_info,omitempty"`
	Created                 time.Time `json:"created"`
	// Deleted is set once DeleteLayerVersion removed the version: it can
	// no longer be listed or newly used, but versions that pinned it keep
	// running (Lambda keeps a deleted layer version for its users).
	Deleted bool `json:"deleted,omitempty"`
}

// LayerSnapshot is what PublishLayer freezes.
type LayerSnapshot struct {
	CodeSHA256              string
	Size                    int64
	Description             string
	CompatibleRuntimes      []string
	CompatibleArchitectures []string
	LicenseInfo             string
	// Always publishes a new version even when the newest one is the same
	// (Lambda's PublishLayerVersion); without it an identical publish
	// returns the newest (the CLI's idempotent deploys).
	Always bool
}

// Store is the version, alias and layer store over a Backend.
type Store struct {
	b      Backend
	now    func() time.Time
	logger hclog.Logger
}

// New returns a Store on b.
func New(b Backend, logger hclog.Logger) *Store {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Store{b: b, now: time.Now, logger: logger.Named("versions")}
}

func fnPath(fn string) string        { return Prefix + "functions/" + fn }
func counterPath(base string) string { return base + "/counter" }
func versionPath(base string, n int) string {
	return base + "/versions/" + strconv.Itoa(n)
}
func aliasPath(fn, alias string) string { return fnPath(fn) + "/aliases/" + alias }
func layerPath(name string) string      { return Prefix + "layers/" + name }

// checkPath refuses paths a Nomad Variable cannot have (at most 128 of
// a-z A-Z 0-9 - _ ~ /).
func checkPath(p string) error {
	if !pathRE.MatchString(p) {
		return fmt.Errorf("store path %s is longer than the 128 characters a Nomad Variable path may have: %w", p, ErrInvalid)
	}
	return nil
}

func checkName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s name %q: want 1–64 of a-z A-Z 0-9 - _: %w", kind, name, ErrInvalid)
	}
	return nil
}

// ConfigHash is the sha256 of the version-relevant configuration: the
// canonical spec without code location and aliases (code is compared by
// its checksum; aliases are not part of a version).
func ConfigHash(s *specs.Function) (string, error) {
	cp := *s
	cp.Code = nil
	cp.Aliases = nil
	b, err := json.Marshal(&cp)
	if err != nil {
		return "", fmt.Errorf("encoding the spec: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// allocate runs the counter protocol: it returns the existing number when
// same reports the newest entry equal, else reserves the next number.
func (s *Store) allocate(ctx context.Context, base string, same func(Entry) bool) (n int, existing bool, err error) {
	for range maxCASRetries {
		c, err := s.b.Get(ctx, counterPath(base))
		var idx uint64
		next, latest := 1, 0
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return 0, false, err
		default:
			idx = c.Index
			if next, err = strconv.Atoi(c.Items["next"]); err != nil || next < 1 {
				return 0, false, fmt.Errorf("counter %s holds %q: %w", base, c.Items["next"], ErrInvalid)
			}
			latest, _ = strconv.Atoi(c.Items["latest"])
		}
		if latest > 0 {
			e, err := s.b.Get(ctx, versionPath(base, latest))
			switch {
			case err == nil && same(e):
				return latest, true, nil
			case err != nil && !errors.Is(err, ErrNotFound):
				return 0, false, err
			}
		}
		_, err = s.b.Put(ctx, counterPath(base), map[string]string{"next": strconv.Itoa(next + 1), "latest": strconv.Itoa(next)}, idx)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		return next, false, nil
	}
	return 0, false, fmt.Errorf("publishing under %s: counter still contended after %d attempts: %w", base, maxCASRetries, ErrConflict)
}

// Publish freezes snap as the next version of fn, or returns the newest
// version when it has the same code and configuration (created false).
func (s *Store) Publish(ctx context.Context, fn string, snap Snapshot) (*Version, bool, error) {
	if err := checkName("function", fn); err != nil {
		return nil, false, err
	}
	if snap.Spec == nil || !sha256RE.MatchString(snap.CodeSHA256) {
		return nil, false, fmt.Errorf("publishing %s: a spec and a code sha256 are required: %w", fn, ErrInvalid)
	}
	if len(snap.Spec.Layers) > MaxLayers {
		return nil, false, fmt.Errorf("publishing %s: %d layers, at most %d: %w", fn, len(snap.Spec.Layers), MaxLayers, ErrInvalid)
	}
	cfg, err := ConfigHash(snap.Spec)
	if err != nil {
		return nil, false, err
	}
	base := fnPath(fn)
	n, existing, err := s.allocate(ctx, base, func(e Entry) bool {
		return e.Items["code_sha256"] == snap.CodeSHA256 && e.Items["config_sha256"] == cfg
	})
	if err != nil {
		return nil, false, err
	}
	if existing {
		v, err := s.Version(ctx, fn, n)
		return v, false, err
	}
	spec, err := json.Marshal(snap.Spec)
	if err != nil {
		return nil, false, fmt.Errorf("encoding the spec: %w", err)
	}
	v := &Version{Function: fn, Number: n, Description: snap.Description, CodeSHA256: snap.CodeSHA256, ConfigHash: cfg, Created: s.now().UTC().Truncate(time.Second)}
	if _, err := s.b.Put(ctx, versionPath(base, n), map[string]string{
		"spec":          string(spec),
		"code_sha256":   v.CodeSHA256,
		"config_sha256": cfg,
		"description":   v.Description,
		"created":       v.Created.Format(time.RFC3339),
	}, 0); err != nil {
		return nil, false, fmt.Errorf("writing version %d of %s: %w", n, fn, err)
	}
	if err := json.Unmarshal(spec, &v.Spec); err != nil {
		return nil, false, err
	}
	s.logger.Info("version published", "function", fn, "version", n, "code_sha256", v.CodeSHA256)
	return v, true, nil
}

func decodeVersion(fn string, n int, e Entry) (*Version, error) {
	v := &Version{Function: fn, Number: n, Description: e.Items["description"], CodeSHA256: e.Items["code_sha256"], ConfigHash: e.Items["config_sha256"]}
	if err := json.Unmarshal([]byte(e.Items["spec"]), &v.Spec); err != nil {
		return nil, fmt.Errorf("version %d of %s: decoding its spec: %w", n, fn, err)
	}
	v.Created, _ = time.Parse(time.RFC3339, e.Items["created"])
	return v, nil
}

// Version returns one published version (ErrNotFound if absent).
func (s *Store) Version(ctx context.Context, fn string, n int) (*Version, error) {
	e, err := s.b.Get(ctx, versionPath(fnPath(fn), n))
	if err != nil {
		return nil, fmt.Errorf("version %d of %s: %w", n, fn, err)
	}
	return decodeVersion(fn, n, e)
}

// numbers lists the version numbers under base, ascending.
func (s *Store) numbers(ctx context.Context, base string) ([]int, error) {
	paths, err := s.b.List(ctx, base+"/versions/")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range paths {
		if n, err := strconv.Atoi(p[strings.LastIndex(p, "/")+1:]); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// Versions returns fn's published versions, oldest first.
func (s *Store) Versions(ctx context.Context, fn string) ([]*Version, error) {
	ns, err := s.numbers(ctx, fnPath(fn))
	if err != nil {
		return nil, err
	}
	out := make([]*Version, 0, len(ns))
	for _, n := range ns {
		v, err := s.Version(ctx, fn, n)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Functions lists the functions the store holds anything for.
func (s *Store) Functions(ctx context.Context) ([]string, error) {
	paths, err := s.b.List(ctx, Prefix+"functions/")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		name, _, _ := strings.Cut(strings.TrimPrefix(p, Prefix+"functions/"), "/")
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out, nil
}

// DeleteVersion removes a version no alias points at.
func (s *Store) DeleteVersion(ctx context.Context, fn string, n int) error {
	aliases, err := s.Aliases(ctx, fn)
	if err != nil {
		return err
	}
	name := strconv.Itoa(n)
	for _, a := range aliases {
		if a.Version == name {
			return fmt.Errorf("version %d of %s: alias %s points at it: %w", n, fn, a.Name, ErrVersionInUse)
		}
		if _, ok := a.Routing[name]; ok {
			return fmt.Errorf("version %d of %s: alias %s routes to it: %w", n, fn, a.Name, ErrVersionInUse)
		}
	}
	p := versionPath(fnPath(fn), n)
	e, err := s.b.Get(ctx, p)
	if err != nil {
		return fmt.Errorf("version %d of %s: %w", n, fn, err)
	}
	if err := s.b.Delete(ctx, p, e.Index); err != nil {
		return fmt.Errorf("deleting version %d of %s: %w", n, fn, err)
	}
	s.logger.Info("version deleted", "function", fn, "version", n)
	return nil
}

// ForgetVersions resets a function's version numbering once it has no
// versions left, so a function deleted and created again under the same
// name starts at version 1 as in Lambda. It is a no-op (nil) while any
// version remains, and a concurrent publish makes it fail with ErrConflict
// rather than reuse a number.
func (s *Store) ForgetVersions(ctx context.Context, fn string) error {
	if err := checkName("function", fn); err != nil {
		return err
	}
	base := fnPath(fn)
	ns, err := s.numbers(ctx, base)
	if err != nil {
		return err
	}
	if len(ns) > 0 {
		return nil
	}
	c, err := s.b.Get(ctx, counterPath(base))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.b.Delete(ctx, counterPath(base), c.Index); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("resetting the version counter of %s: %w", fn, err)
	}
	return nil
}

// CheckAlias validates an alias definition against Lambda's rules: a name
// that is not all digits, a published primary version, at most one
// additional version (different from the primary) with a weight in [0,1].
func CheckAlias(a *specs.Alias) error {
	if a == nil {
		return fmt.Errorf("alias is empty: %w", ErrInvalid)
	}
	if !aliasRE.MatchString(a.Name) || digitsRE.MatchString(a.Name) {
		return fmt.Errorf("alias name %q: want 1–128 of a-z A-Z 0-9 - _, not all digits: %w", a.Name, ErrInvalid)
	}
	if !digitsRE.MatchString(a.Version) || a.Version == "0" {
		return fmt.Errorf("alias %s: version %q must be a published version number (aliases cannot point at $LATEST or another alias): %w", a.Name, a.Version, ErrInvalid)
	}
	if len(a.Routing) > 1 {
		return fmt.Errorf("alias %s: %d additional versions, at most 1: %w", a.Name, len(a.Routing), ErrInvalid)
	}
	for v, w := range a.Routing {
		if !digitsRE.MatchString(v) || v == a.Version {
			return fmt.Errorf("alias %s: additional version %q must be another published version number: %w", a.Name, v, ErrInvalid)
		}
		if math.IsNaN(w) || w < 0 || w > 1 {
			return fmt.Errorf("alias %s: weight %v of version %s must be within [0,1]: %w", a.Name, w, v, ErrInvalid)
		}
	}
	return nil
}

// AliasEntry is an alias as stored: its definition and its revision,
// which changes on every write.
type AliasEntry struct {
	*specs.Alias
	RevisionID string
}

// AliasCondition is a precondition of WriteAlias.
type AliasCondition struct {
	// Create requires the alias to be absent (ErrExists otherwise).
	Create bool
	// Update requires the alias to exist (ErrNotFound otherwise).
	Update bool
	// RevisionID, when set, requires the alias to be at that revision
	// (ErrPrecondition otherwise).
	RevisionID string
}

// SetAlias creates or replaces an alias; its versions must exist.
func (s *Store) SetAlias(ctx context.Context, fn string, a *specs.Alias) error {
	_, err := s.WriteAlias(ctx, fn, a, AliasCondition{})
	return err
}

// WriteAlias writes an alias under cond, checked against the entry it
// replaces in the same check-and-set; the alias's versions must exist.
func (s *Store) WriteAlias(ctx context.Context, fn string, a *specs.Alias, cond AliasCondition) (*AliasEntry, error) {
	if err := checkName("function", fn); err != nil {
		return nil, err
	}
	if err := CheckAlias(a); err != nil {
		return nil, err
	}
	versions := []string{a.Version}
	for v := range a.Routing {
		versions = append(versions, v)
	}
	for _, v := range versions {
		n, _ := strconv.Atoi(v)
		if _, err := s.Version(ctx, fn, n); err != nil {
			return nil, fmt.Errorf("alias %s: %w", a.Name, err)
		}
	}
	routing := "{}"
	if len(a.Routing) > 0 {
		b, err := json.Marshal(a.Routing)
		if err != nil {
			return nil, err
		}
		routing = string(b)
	}
	p := aliasPath(fn, a.Name)
	if err := checkPath(p); err != nil {
		return nil, fmt.Errorf("alias %s: %w", a.Name, err)
	}
	for range maxCASRetries {
		var idx uint64
		e, err := s.b.Get(ctx, p)
		switch {
		case err == nil:
			idx = e.Index
			if cond.Create {
				return nil, fmt.Errorf("alias %s of %s: %w", a.Name, fn, ErrExists)
			}
			if cond.RevisionID != "" && cond.RevisionID != aliasRevision(e) {
				return nil, fmt.Errorf("alias %s of %s: %w", a.Name, fn, ErrPrecondition)
			}
		case !errors.Is(err, ErrNotFound):
			return nil, err
		case cond.Update || cond.RevisionID != "":
			return nil, fmt.Errorf("alias %s of %s: %w", a.Name, fn, ErrNotFound)
		}
		items := map[string]string{"version": a.Version, "routing": routing, "description": a.Description, "revision_id": uuid.NewString()}
		if _, err = s.b.Put(ctx, p, items, idx); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("writing alias %s of %s: %w", a.Name, fn, err)
		}
		s.logger.Info("alias set", "function", fn, "alias", a.Name, "version", a.Version, "routing", routing)
		out, err := decodeAlias(a.Name, Entry{Items: items})
		if err != nil {
			return nil, err
		}
		return &AliasEntry{Alias: out, RevisionID: items["revision_id"]}, nil
	}
	return nil, fmt.Errorf("alias %s of %s: still contended after %d attempts: %w", a.Name, fn, maxCASRetries, ErrConflict)
}

// aliasRevision is an entry's revision; an alias written before revisions
// were kept has its modify index as one (it changes on the next write).
func aliasRevision(e Entry) string {
	if r := e.Items["revision_id"]; r != "" {
		return r
	}
	return "index-" + strconv.FormatUint(e.Index, 10)
}

func decodeAlias(name string, e Entry) (*specs.Alias, error) {
	a := &specs.Alias{Name: name, Version: e.Items["version"], Description: e.Items["description"]}
	if r := e.Items["routing"]; r != "" && r != "{}" {
		if err := json.Unmarshal([]byte(r), &a.Routing); err != nil {
			return nil, fmt.Errorf("alias %s: decoding its routing: %w", name, err)
		}
	}
	return a, nil
}

// Alias returns one alias (ErrNotFound if absent).
func (s *Store) Alias(ctx context.Context, fn, name string) (*specs.Alias, error) {
	e, err := s.AliasEntry(ctx, fn, name)
	if err != nil {
		return nil, err
	}
	return e.Alias, nil
}

// AliasEntry returns one alias with its revision (ErrNotFound if absent).
func (s *Store) AliasEntry(ctx context.Context, fn, name string) (*AliasEntry, error) {
	e, err := s.b.Get(ctx, aliasPath(fn, name))
	if err != nil {
		return nil, fmt.Errorf("alias %s of %s: %w", name, fn, err)
	}
	a, err := decodeAlias(name, e)
	if err != nil {
		return nil, err
	}
	return &AliasEntry{Alias: a, RevisionID: aliasRevision(e)}, nil
}

// Aliases returns fn's aliases sorted by name.
func (s *Store) Aliases(ctx context.Context, fn string) ([]*specs.Alias, error) {
	es, err := s.AliasEntries(ctx, fn)
	if err != nil {
		return nil, err
	}
	out := make([]*specs.Alias, len(es))
	for i, e := range es {
		out[i] = e.Alias
	}
	return out, nil
}

// AliasEntries returns fn's aliases with their revisions, sorted by name.
func (s *Store) AliasEntries(ctx context.Context, fn string) ([]*AliasEntry, error) {
	paths, err := s.b.List(ctx, fnPath(fn)+"/aliases/")
	if err != nil {
		return nil, err
	}
	var out []*AliasEntry
	for _, p := range paths {
		a, err := s.AliasEntry(ctx, fn, p[strings.LastIndex(p, "/")+1:])
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// DeleteAlias removes an alias.
func (s *Store) DeleteAlias(ctx context.Context, fn, name string) error {
	p := aliasPath(fn, name)
	e, err := s.b.Get(ctx, p)
	if err != nil {
		return fmt.Errorf("alias %s of %s: %w", name, fn, err)
	}
	return s.b.Delete(ctx, p, e.Index)
}

// PublishLayer freezes a new layer version, or returns the newest one when
// its code, compatible runtimes and architectures, license and description
// are the same (created false).
func (s *Store) PublishLayer(ctx context.Context, name string, snap LayerSnapshot) (*LayerVersion, bool, error) {
	if err := checkName("layer", name); err != nil {
		return nil, false, err
	}
	if !sha256RE.MatchString(snap.CodeSHA256) || snap.Size < 0 {
		return nil, false, fmt.Errorf("layer %s: a code sha256 and size are required: %w", name, ErrInvalid)
	}
	runtimes, _ := json.Marshal(snap.CompatibleRuntimes)
	archs := ""
	if len(snap.CompatibleArchitectures) > 0 {
		b, _ := json.Marshal(snap.CompatibleArchitectures)
		archs = string(b)
	}
	base := layerPath(name)
	n, existing, err := s.allocate(ctx, base, func(e Entry) bool {
		return !snap.Always && e.Items["code_sha256"] == snap.CodeSHA256 && e.Items["runtimes"] == string(runtimes) &&
			e.Items["architectures"] == archs && e.Items["license"] == snap.LicenseInfo &&
			e.Items["description"] == snap.Description && e.Items["deleted"] == ""
	})
	if err != nil {
		return nil, false, err
	}
	if existing {
		lv, err := s.LayerVersion(ctx, name, n)
		return lv, false, err
	}
	lv := &LayerVersion{Layer: name, Number: n, Description: snap.Description, CodeSHA256: snap.CodeSHA256, Size: snap.Size,
		CompatibleRuntimes: snap.CompatibleRuntimes, CompatibleArchitectures: snap.CompatibleArchitectures,
		LicenseInfo: snap.LicenseInfo, Created: s.now().UTC().Truncate(time.Second)}
	items := map[string]string{
		"code_sha256": lv.CodeSHA256,
		"size":        strconv.FormatInt(lv.Size, 10),
		"runtimes":    string(runtimes),
		"description": lv.Description,
		"created":     lv.Created.Format(time.RFC3339),
	}
	if archs != "" {
		items["architectures"] = archs
	}
	if snap.LicenseInfo != "" {
		items["license"] = snap.LicenseInfo
	}
	if _, err := s.b.Put(ctx, versionPath(base, n), items, 0); err != nil {
		return nil, false, fmt.Errorf("writing version %d of layer %s: %w", n, name, err)
	}
	s.logger.Info("layer version published", "layer", name, "version", n, "code_sha256", lv.CodeSHA256)
	return lv, true, nil
}

// LayerVersion returns one layer version, deleted ones included (Deleted
// set); ErrNotFound if it never existed.
func (s *Store) LayerVersion(ctx context.Context, name string, n int) (*LayerVersion, error) {
	e, err := s.b.Get(ctx, versionPath(layerPath(name), n))
	if err != nil {
		return nil, fmt.Errorf("version %d of layer %s: %w", n, name, err)
	}
	lv := &LayerVersion{Layer: name, Number: n, Description: e.Items["description"], CodeSHA256: e.Items["code_sha256"],
		LicenseInfo: e.Items["license"], Deleted: e.Items["deleted"] != ""}
	lv.Size, _ = strconv.ParseInt(e.Items["size"], 10, 64)
	if r := e.Items["runtimes"]; r != "" && r != "null" {
		if err := json.Unmarshal([]byte(r), &lv.CompatibleRuntimes); err != nil {
			return nil, fmt.Errorf("layer %s version %d: decoding runtimes: %w", name, n, err)
		}
	}
	if r := e.Items["architectures"]; r != "" {
		if err := json.Unmarshal([]byte(r), &lv.CompatibleArchitectures); err != nil {
			return nil, fmt.Errorf("layer %s version %d: decoding architectures: %w", name, n, err)
		}
	}
	lv.Created, _ = time.Parse(time.RFC3339, e.Items["created"])
	return lv, nil
}

// LayerVersions returns a layer's versions not deleted, oldest first.
func (s *Store) LayerVersions(ctx context.Context, name string) ([]*LayerVersion, error) {
	ns, err := s.numbers(ctx, layerPath(name))
	if err != nil {
		return nil, err
	}
	var out []*LayerVersion
	for _, n := range ns {
		lv, err := s.LayerVersion(ctx, name, n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !lv.Deleted {
			out = append(out, lv)
		}
	}
	return out, nil
}

// Layers lists the names of the layers with at least one version stored
// (deleted ones included), sorted.
func (s *Store) Layers(ctx context.Context) ([]string, error) {
	paths, err := s.b.List(ctx, Prefix+"layers/")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		name, rest, _ := strings.Cut(strings.TrimPrefix(p, Prefix+"layers/"), "/")
		if strings.HasPrefix(rest, "versions/") && (len(out) == 0 || out[len(out)-1] != name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// DeleteLayerVersion marks a layer version deleted (deleting one that is
// absent or deleted already is not an error, as on Lambda). Its bundle
// stays referenced: versions that pinned it keep running.
func (s *Store) DeleteLayerVersion(ctx context.Context, name string, n int) error {
	p := versionPath(layerPath(name), n)
	for range maxCASRetries {
		e, err := s.b.Get(ctx, p)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if e.Items["deleted"] != "" {
			return nil
		}
		items := maps.Clone(e.Items)
		items["deleted"] = s.now().UTC().Format(time.RFC3339)
		if _, err := s.b.Put(ctx, p, items, e.Index); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			return fmt.Errorf("deleting version %d of layer %s: %w", n, name, err)
		}
		s.logger.Info("layer version deleted", "layer", name, "version", n)
		return nil
	}
	return fmt.Errorf("layer %s version %d: still contended after %d attempts: %w", name, n, maxCASRetries, ErrConflict)
}

// ResolveLayers turns a function's layer references ("name" = newest
// version, "name:n") into layer versions, in order, at most MaxLayers, and
// checks the runtime against each layer's compatible runtimes.
func (s *Store) ResolveLayers(ctx context.Context, runtime string, refs []string) ([]*LayerVersion, error) {
	if len(refs) > MaxLayers {
		return nil, fmt.Errorf("%d layers, at most %d per function: %w", len(refs), MaxLayers, ErrInvalid)
	}
	out := make([]*LayerVersion, 0, len(refs))
	for _, ref := range refs {
		name, num, pinned := strings.Cut(ref, ":")
		var lv *LayerVersion
		if pinned {
			n, err := strconv.Atoi(num)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("layer reference %q: version must be a number: %w", ref, ErrInvalid)
			}
			if lv, err = s.LayerVersion(ctx, name, n); err != nil {
				return nil, err
			}
		} else {
			all, err := s.LayerVersions(ctx, name)
			if err != nil {
				return nil, err
			}
			if len(all) == 0 {
				return nil, fmt.Errorf("layer %s has no published version (nimbus layer publish): %w", name, ErrNotFound)
			}
			lv = all[len(all)-1]
		}
		if len(lv.CompatibleRuntimes) > 0 && runtime != "" && !compatible(runtime, lv.CompatibleRuntimes) {
			return nil, fmt.Errorf("layer %s:%d is for %s, not %s: %w", lv.Layer, lv.Number, strings.Join(lv.CompatibleRuntimes, ", "), runtime, ErrInvalid)
		}
		out = append(out, lv)
	}
	return out, nil
}

// compatible matches a runtime against a layer's list; a family entry
// ("python3", "nodejs", "provided") covers its versions.
func compatible(runtime string, list []string) bool {
	for _, r := range list {
		if r == runtime || strings.HasPrefix(runtime, r) {
			return true
		}
	}
	return false
}

// References returns every code sha256 a published version or layer
// version names (artifacts.Referencer).
func (s *Store) References(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	for _, kind := range []string{"functions/", "layers/"} {
		paths, err := s.b.List(ctx, Prefix+kind)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			if !strings.Contains(p, "/versions/") {
				continue
			}
			e, err := s.b.Get(ctx, p)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if d := e.Items["code_sha256"]; d != "" {
				out[d] = true
			}
		}
	}
	return out, nil
}
