// Package config is the gateway's typed configuration: an HCL file (decoded
// with gohcl) overlaid by command-line flags, defaults filled in, and
// validation that runs before any listener opens.
//
// It imports from this module only the packages whose configuration blocks
// it embeds (gateway/queue, gateway/artifacts).
package config
