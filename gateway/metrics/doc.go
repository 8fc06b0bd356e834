// Package metrics holds the gateway's Prometheus metrics: counters and
// histograms the API and router record into, and a collector that reads
// environment and in-flight gauges from the router at scrape time. The
// gauges nimbus_environments, nimbus_in_flight and
// nimbus_provisioned_utilization are a contract with the autoscaler's APM
// plugin: their names and labels do not change.
//
// It imports nothing from this module.
package metrics
