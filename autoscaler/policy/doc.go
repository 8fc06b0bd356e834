// Package policy is the contract between the job compiler, which writes the
// `scaling` block of a function's `provisioned` task group, and our Nomad
// Autoscaler plugins, which read it: the plugin and block names, the check
// query syntax, and the strategy config keys with their defaults.
//
// It is a leaf: it imports nothing from this module (and only the standard
// library), so that both sides can depend on it or copy its constants.
package policy
