// Package invokeapi is the wire contract of an instance's invoke endpoint: the
// HTTP API gateways (and `nimbus local invoke`) call to run one invocation in
// one of the instance's execution environments. It holds the paths, headers,
// error codes and a client. The server side lives in driver/instance and uses
// the same constants and helpers.
//
// It is a leaf: it imports only the standard library.
package invokeapi
