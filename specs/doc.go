// Package specs is the HCL function-spec language: the canonical model
// (model.go), Parse (HCL → model with file:line:col diagnostics), Validate
// (Lambda's limits and cross references), Format and the canonical JSON
// encoding (Encode/Decode) used in job meta and the catalog.
//
// It reads spec files and nothing else: no network, no Nomad. It imports no
// other package of this module.
package specs
