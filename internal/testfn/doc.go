// Package testfn builds the real aws-lambda-go functions under
// internal/testfn/<name> for tests and benchmarks, once per test process,
// into a directory laid out as Lambda's task root (an executable named
// "bootstrap").
//
// It is test support only: production packages must not import it.
package testfn
