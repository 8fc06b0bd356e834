// Package taskconfig is the contract between the job compiler (which writes a
// Nomad task's `config {}` block) and the task driver (which reads it).
//
// It is a leaf: it imports only the standard library, and both sides use
// these types so that the block's field names exist in exactly one place.
package taskconfig
