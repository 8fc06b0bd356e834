// Package benchtest holds the set-up the gateway benchmarks share: a real
// aws-lambda-go function (internal/testfn: echo, or any other by name, e.g.
// stamp for the event-source benchmark) in a real instance
// (driver/instance) with every environment warm, and the fixed catalog and
// discovery source a gateway server needs to route to it.
//
// Test support for bench/** only: it may import anything; production
// packages must not import it.
package benchtest
