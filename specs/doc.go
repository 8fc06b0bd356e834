// Package specs is the HCL function-spec language: the canonical model
// (model.go), Parse (HCL → model with file:line:col diagnostics), Validate
// (Lambda's limits and cross references), Format, the canonical JSON
// encoding (Encode/Decode) used in job meta and the catalog, and EncodeHCL
// (model → spec file, for nimbus export).
//
// A spec set is one file (ParseFile, or Load on a file) or every "*.hcl"
// file directly inside a directory (Load on a directory; subdirectories are
// not read). The files of a set share `variable` and `locals` blocks and one
// namespace of function and layer names. Expressions may call a stdlib set
// of functions (see functions in eval.go) plus file() and fileexists()
// relative to the spec's directory and env() through Options.Env.
//
// Parse fills every default in and sorts name-keyed blocks (functions,
// layers, secrets, event sources, aliases, schedules) by name, so equal
// specs have byte-equal canonical JSON. Code paths stay as written,
// relative to Function.Dir / Layer.Dir.
//
// It reads spec files and nothing else: no network, no Nomad. It imports no
// other package of this module.
package specs
