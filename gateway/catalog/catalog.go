package catalog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"

	"github.com/nimbus-fn/nimbus/specs"
)

// Latest is the mutable, unpublished version.
const Latest = "$LATEST"

// Errors a lookup or a resolution returns.
var (
	// ErrFunctionNotFound: no function of that name.
	ErrFunctionNotFound = errors.New("function not found")
	// ErrQualifierNotFound: the function exists but the version or alias does not.
	ErrQualifierNotFound = errors.New("qualifier not found")
)

// Function is one deployed function as the gateway sees it.
type Function struct {
	Name string
	// Versions maps "$LATEST" and published version numbers to their spec.
	// A published version's spec is immutable.
	Versions map[string]*specs.Function
	// Aliases maps alias names to their definition (from $LATEST's spec in
	// local mode, from the catalog store in a cluster).
	Aliases map[string]*specs.Alias
}

// Latest returns the $LATEST spec (nil if the function has none).
func (f *Function) Latest() *specs.Function { return f.Versions[Latest] }

// URL returns the function URL config, or nil when the function has no URL.
func (f *Function) URL() *specs.URLConfig {
	if l := f.Latest(); l != nil {
		return l.URL
	}
	return nil
}

// ReservedConcurrency is the function's reserved concurrency (nil: unreserved).
// Reserved concurrency is a function-level setting: $LATEST's value applies.
func (f *Function) ReservedConcurrency() *int {
	if l := f.Latest(); l != nil {
		return l.ReservedConcurrency
	}
	return nil
}

// VersionNames returns the function's versions, $LATEST first, then numbers ascending.
func (f *Function) VersionNames() []string {
	out := make([]string, 0, len(f.Versions))
	for v := range f.Versions {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i], out[j]) })
	return out
}

func versionLess(a, b string) bool {
	if a == Latest || b == Latest {
		return a == Latest && b != Latest
	}
	na, ea := strconv.Atoi(a)
	nb, eb := strconv.Atoi(b)
	if ea == nil && eb == nil {
		return na < nb
	}
	return a < b
}

var versionNumber = regexp.MustCompile(`^[0-9]+$`)

// Resolution is a qualifier resolved to the version that runs.
type Resolution struct {
	// Qualifier as asked ("" means $LATEST, unqualified).
	Qualifier string
	// Version that runs ("$LATEST" or a number).
	Version string
	// Spec of that version.
	Spec *specs.Function
}

// Resolve turns a qualifier ("", "$LATEST", a version number or an alias)
// into the version to run. An alias with routing picks its additional version
// with the configured weight; pick returns a number in [0,1) (nil means
// math/rand).
func (f *Function) Resolve(qualifier string, pick func() float64) (*Resolution, error) {
	version := qualifier
	if qualifier == "" {
		version = Latest
	} else if qualifier != Latest && !versionNumber.MatchString(qualifier) {
		a, ok := f.Aliases[qualifier]
		if !ok {
			return nil, fmt.Errorf("alias %s of function %s: %w", qualifier, f.Name, ErrQualifierNotFound)
		}
		version = pickVersion(a, pick)
	}
	spec, ok := f.Versions[version]
	if !ok {
		return nil, fmt.Errorf("version %s of function %s: %w", version, f.Name, ErrQualifierNotFound)
	}
	return &Resolution{Qualifier: qualifier, Version: version, Spec: spec}, nil
}

// pickVersion applies an alias's weighted routing: each additional version
// gets its weight, the primary version the rest.
func pickVersion(a *specs.Alias, pick func() float64) string {
	if len(a.Routing) == 0 {
		return a.Version
	}
	if pick == nil {
		pick = rand.Float64
	}
	x := pick()
	keys := make([]string, 0, len(a.Routing))
	for k := range a.Routing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	acc := 0.0
	for _, k := range keys {
		acc += a.Routing[k]
		if x < acc {
			return k
		}
	}
	return a.Version
}

// Snapshot is an immutable set of functions, swapped as a whole when the
// source changes.
type Snapshot struct {
	functions map[string]*Function
	// ReservedTotal is the sum of all functions' reserved concurrency.
	ReservedTotal int
}

// NewSnapshot indexes functions by name and sums their reserved concurrency.
func NewSnapshot(fns []*Function) *Snapshot {
	s := &Snapshot{functions: make(map[string]*Function, len(fns))}
	for _, f := range fns {
		s.functions[f.Name] = f
		if r := f.ReservedConcurrency(); r != nil {
			s.ReservedTotal += *r
		}
	}
	return s
}

// Function returns one function or ErrFunctionNotFound.
func (s *Snapshot) Function(name string) (*Function, error) {
	if f, ok := s.functions[name]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("function %s: %w", name, ErrFunctionNotFound)
}

// Functions returns all functions sorted by name.
func (s *Snapshot) Functions() []*Function {
	out := make([]*Function, 0, len(s.functions))
	for _, f := range s.functions {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FromFile builds $LATEST-only functions from a spec file set (local mode:
// the directory is $LATEST and nothing is published, so every alias runs
// $LATEST — `fn:live` works in `nimbus dev` as it will after deploy, and
// X-Amz-Executed-Version says $LATEST).
func FromFile(f *specs.File) []*Function {
	out := make([]*Function, 0, len(f.Functions))
	for _, s := range f.Functions {
		fn := &Function{
			Name:     s.Name,
			Versions: map[string]*specs.Function{Latest: s},
			Aliases:  map[string]*specs.Alias{},
		}
		for _, a := range s.Aliases {
			fn.Aliases[a.Name] = &specs.Alias{Name: a.Name, Description: a.Description, Version: Latest}
		}
		out = append(out, fn)
	}
	return out
}
