// Package gatewaytest holds test doubles for the gateway's packages: an
// in-process instance that serves driver/invokeapi's server side (for router
// and API tests that must not depend on the real instance), a settable
// discovery source, a recording scaler and a test logger (Logger); and the
// contract suites every adapter must pass (CatalogContract,
// CapacityContract), run here against the local implementations and meant
// for the cluster ones (gateway/nomad, gateway/consul) too. End-to-end
// tests use the real instance through driver/local instead.
//
// It may import gateway/** and driver/invokeapi.
package gatewaytest
