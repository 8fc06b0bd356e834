// Package nomadtest starts a real Nomad agent on loopback for tests: free
// ports for HTTP, RPC and serf, an agent config built from Options (plugin
// directory and extra HCL such as plugin, client or consul blocks), a wait
// for a leader (and, on request, a ready client node), and a graceful stop
// on test cleanup with the agent's log printed when the test failed.
//
// By default the agent runs `nomad agent -dev`. Options.Persistent runs a
// single-node server and client instead, whose state survives Stop and
// Start, for tests that restart or crash the agent.
//
// The binary comes from NOMAD_BINARY; when it is unset Start skips the test
// with the caller's message. Nothing is built.
//
// It is test support only: production packages must not import it. It may
// import anything.
package nomadtest
