// Package runtimes ships Nimbus's managed runtimes for Python (python3.x) and
// Node.js (nodejsNN.x): our own Lambda Runtime API clients ("bootstraps"),
// embedded in the binary, written to disk by Install and started with the
// argv Command returns. The bootstraps use only the interpreters' standard
// libraries (python3 ≥ 3.8, node ≥ 18) and behave as Lambda's runtime
// interface clients do: handler strings, the context object, error JSON,
// init errors and log formats. Node handlers wrapped in the runtime's
// awslambda.streamifyResponse stream their response (Runtime API response
// mode "streaming"); Python, as on Lambda, has no streaming API.
//
// Detect reports the interpreters on PATH for the driver's fingerprint.
//
// It imports only the standard library; driver/** may import it.
package runtimes
