// Package apmtest is test support for the nimbus APM plugin: a loopback
// HTTP server that exports the gateway's provisioned-concurrency gauges
// through a real client_golang registry, and an address nothing listens on.
//
// The metric and label names are spelled out here, not taken from package
// apm, so tests that scrape this server also check that apm reads what the
// gateway writes.
//
// It imports nothing from the module.
package apmtest
